"""The Redis key layout of CONTRACT.md section 5, in one place: a typed key per hash, set and channel.

The sink writes with `encode()`, the wallboard and the bench read back with `decode()`; nothing else
spells a `kpi:` key. Ids may contain ':' (and anything else): a key is decoded from its ends, the
fixed prefix on the left and the period key on the right, whose forms (`rolling`, `day:YYYY-MM-DD`,
`month:YYYY-MM`) never end another period key, so the id between them is exactly what was encoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from stream.config import KEY_PREFIX_CHARS
from stream.core.keys import CENTER_ID

PREFIX = "kpi:"
UPDATES_CHANNEL = "kpi:updates"  # pub/sub channel: one JSON message per change written
ACTIVE_ALERTS = "kpi:alerts:active"  # hash alert_id -> JSON of the firing alert
WRITER_PREFIX = "kpi:writer:"  # + a worker's run id: the marker of its last complete write

#: A period key as the sink writes it (day and month of the configured zone, or rolling).
PERIOD_KEY = r"rolling|day:\d{4}-\d{2}-\d{2}|month:\d{4}-\d{2}"
_PERIOD_SUFFIX = re.compile(rf":(?P<pk>{PERIOD_KEY})$")
_PERIOD_ONLY = re.compile(rf"^(?:{PERIOD_KEY})$")


def is_period_key(text: str) -> bool:
    """True for `rolling`, `day:YYYY-MM-DD` and `month:YYYY-MM` (what the Redis keys end with)."""
    return _PERIOD_ONLY.match(text) is not None


def _check_period(period_key: str) -> str:
    if not is_period_key(period_key):
        raise ValueError(f"not a period key: {period_key!r}")
    return period_key


def _id_and_period(key: str, prefix: str) -> tuple[str, str] | None:
    """`{prefix}{id}:{period_key}` -> (id, period_key); None when the key is not of that form."""
    if not key.startswith(prefix):
        return None
    m = _PERIOD_SUFFIX.search(key, len(prefix))
    if m is None or m.start() == len(prefix):
        return None
    return key[len(prefix) : m.start()], m["pk"]


def _check_id(sid: str, what: str) -> str:
    if not sid:
        raise ValueError(f"a {what} key needs a non-empty id")
    return sid


def _period_only(key: str, prefix: str) -> str | None:
    if not key.startswith(prefix):
        return None
    pk = key[len(prefix) :]
    return pk if is_period_key(pk) else None


def _id_only(key: str, prefix: str) -> str | None:
    """`{prefix}{id}` -> id; None when the key has another prefix or an empty id."""
    if not key.startswith(prefix) or len(key) == len(prefix):
        return None
    return key[len(prefix) :]


def period_key_of(key: str) -> str | None:
    """The day or month period key a `kpi:` key ends with (None for rolling and period-less keys)."""
    m = _PERIOD_SUFFIX.search(key)
    if m is None or m["pk"] == "rolling":
        return None
    return m["pk"]


@dataclass(frozen=True, slots=True, order=True)
class OperatorKey:
    """`kpi:op:{operator_id}:{period_key}`: hash of one operator's KPIs, counts, F and share."""

    operator_id: str
    period_key: str
    PREFIX: ClassVar[str] = "kpi:op:"
    SCAN: ClassVar[str] = "kpi:op:*"

    def encode(self) -> str:
        return f"{self.PREFIX}{_check_id(self.operator_id, 'operator')}:{_check_period(self.period_key)}"

    @classmethod
    def decode(cls, key: str) -> OperatorKey | None:
        parts = _id_and_period(key, cls.PREFIX)
        return None if parts is None else cls(*parts)


@dataclass(frozen=True, slots=True, order=True)
class QueueKey:
    """`kpi:queue:{queue}:{period_key}`: hash of one queue's KPIs and counts."""

    queue: str
    period_key: str
    PREFIX: ClassVar[str] = "kpi:queue:"
    SCAN: ClassVar[str] = "kpi:queue:*"

    def encode(self) -> str:
        return f"{self.PREFIX}{_check_id(self.queue, 'queue')}:{_check_period(self.period_key)}"

    @classmethod
    def decode(cls, key: str) -> QueueKey | None:
        parts = _id_and_period(key, cls.PREFIX)
        return None if parts is None else cls(*parts)


@dataclass(frozen=True, slots=True, order=True)
class _PeriodOnlyKey:
    """`{PREFIX}{period_key}`: a key of one period and nothing else (the subclasses set PREFIX, SCAN)."""

    period_key: str
    PREFIX: ClassVar[str]
    SCAN: ClassVar[str]

    def encode(self) -> str:
        return f"{self.PREFIX}{_check_period(self.period_key)}"

    @classmethod
    def decode(cls, key: str) -> Self | None:
        pk = _period_only(key, cls.PREFIX)
        return None if pk is None else cls(pk)


@dataclass(frozen=True, slots=True, order=True)
class CenterKey(_PeriodOnlyKey):
    """`kpi:center:{period_key}`: hash of the centre's KPIs and counts."""

    PREFIX: ClassVar[str] = "kpi:center:"
    SCAN: ClassVar[str] = "kpi:center:*"


@dataclass(frozen=True, slots=True, order=True)
class LeaderboardKey(_PeriodOnlyKey):
    """`kpi:leaderboard:{period_key}`: sorted set, operator_id scored by F."""

    PREFIX: ClassVar[str] = "kpi:leaderboard:"
    SCAN: ClassVar[str] = "kpi:leaderboard:*"


@dataclass(frozen=True, slots=True, order=True)
class ScorecardKey(_PeriodOnlyKey):
    """`kpi:scorecard:{period_key}`: hash of the balanced scorecard (`dimension.figure` fields)."""

    PREFIX: ClassVar[str] = "kpi:scorecard:"
    SCAN: ClassVar[str] = "kpi:scorecard:*"


@dataclass(frozen=True, slots=True, order=True)
class LiveQueueKey:
    """`kpi:live:queue:{queue}`: hash of one queue's live state (waiting, agents, longest wait)."""

    queue: str
    PREFIX: ClassVar[str] = "kpi:live:queue:"
    SCAN: ClassVar[str] = "kpi:live:queue:*"

    def encode(self) -> str:
        return f"{self.PREFIX}{_check_id(self.queue, 'live queue')}"

    @classmethod
    def decode(cls, key: str) -> LiveQueueKey | None:
        sid = _id_only(key, cls.PREFIX)
        return None if sid is None else cls(sid)


@dataclass(frozen=True, slots=True, order=True)
class WriterKey:
    """`kpi:writer:{run_id}`: written first in every complete write of one worker run.

    Its absence (or a new Redis `run_id`) tells that worker that Redis lost what it wrote.
    """

    run_id: str
    PREFIX: ClassVar[str] = WRITER_PREFIX

    def encode(self) -> str:
        return f"{self.PREFIX}{_check_id(self.run_id, 'writer')}"

    @classmethod
    def decode(cls, key: str) -> WriterKey | None:
        sid = _id_only(key, cls.PREFIX)
        return None if sid is None else cls(sid)


RedisKey = OperatorKey | QueueKey | CenterKey | LeaderboardKey | ScorecardKey | LiveQueueKey | WriterKey
_KINDS: tuple[type[RedisKey], ...] = (
    OperatorKey,
    QueueKey,
    CenterKey,
    LeaderboardKey,
    ScorecardKey,
    LiveQueueKey,
    WriterKey,
)


def decode_key(key: str) -> RedisKey | None:
    """Any key of the layout (not the alert hash or the channel); None for a foreign key."""
    for kind in _KINDS:
        decoded = kind.decode(key)
        if decoded is not None:
            return decoded
    return None


def queue_or_center_key(queue: str | None, period_key: str) -> QueueKey | CenterKey:
    """The hash of a queue's record, or the centre's (`queue` None or `_center`)."""
    if queue is None or queue == CENTER_ID:
        return CenterKey(period_key)
    return QueueKey(queue, period_key)


@dataclass(frozen=True, slots=True)
class Keyspace:
    """The keys of one kpistream deployment in a shared Redis: `prefix` before every key of the layout.

    One Redis can serve several centres, each with its own prefix (`redis_key_prefix`, e.g.
    `centre-a:`): every hash, set, marker, the alert hash and the updates channel get it, and a
    SCAN of one keyspace never matches another's keys. The empty prefix is the layout as it was.
    """

    prefix: str = ""

    def __post_init__(self) -> None:
        if not KEY_PREFIX_CHARS.match(self.prefix):
            raise ValueError(f"a Redis key prefix may use letters, digits and _.:{{}}- only: {self.prefix!r}")

    def key(self, key: RedisKey) -> str:
        """The Redis key of `key` in this keyspace."""
        return f"{self.prefix}{key.encode()}"

    def scan(self, pattern: str) -> str:
        """A SCAN MATCH pattern of the layout (`OperatorKey.SCAN`), restricted to this keyspace."""
        return f"{self.prefix}{pattern}"

    def strip(self, key: str) -> str | None:
        """The layout key of a Redis key of this keyspace; None for a key outside it."""
        return key[len(self.prefix) :] if key.startswith(self.prefix) else None

    def decode(self, key: str) -> RedisKey | None:
        """`decode_key` of a Redis key of this keyspace; None for a foreign key."""
        bare = self.strip(key)
        return None if bare is None else decode_key(bare)

    @property
    def updates_channel(self) -> str:
        return f"{self.prefix}{UPDATES_CHANNEL}"

    @property
    def active_alerts(self) -> str:
        return f"{self.prefix}{ACTIVE_ALERTS}"


#: Today's keys, unprefixed (the default of every reader and writer).
DEFAULT_KEYSPACE = Keyspace()
