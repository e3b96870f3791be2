"""Publishing: aggregates to batches of output records, written by one task per sink.

See stream/publish/publisher.py for the flow; the parts are one module each.
"""

from stream.core.keys import BUSINESS_KEY
from stream.publish.batch_builder import BatchBuilder, BuildScope
from stream.publish.change_filter import ChangeFilter, content_digest
from stream.publish.key_index import KeyIndex
from stream.publish.publisher import Publisher
from stream.publish.reader import AggReader, MappingReader, slid_copy
from stream.publish.runner import SinkRunner
from stream.publish.score_cache import SHARES_EVERY_FLUSH_UP_TO, ScoreCache

__all__ = [
    "BUSINESS_KEY",
    "SHARES_EVERY_FLUSH_UP_TO",
    "AggReader",
    "BatchBuilder",
    "BuildScope",
    "ChangeFilter",
    "KeyIndex",
    "MappingReader",
    "Publisher",
    "ScoreCache",
    "SinkRunner",
    "content_digest",
    "slid_copy",
]
