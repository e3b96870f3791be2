"""Faust codecs for the core's state objects: tables keep Python objects, changelogs keep JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faust.serializers import codecs

from stream.core.aggregate import AggState
from stream.core.alerts import AlertState
from stream.core.config import KpiConfig
from stream.core.entity import EntityState
from stream.core.scorecard import BusinessState


class _Text(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return obj.encode() if isinstance(obj, str) else bytes(obj)

    def _loads(self, s: bytes) -> Any:
        return s.decode()


class _Bytes(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return bytes(obj)

    def _loads(self, s: bytes) -> Any:
        return bytes(s)


class _Entity(codecs.Codec):
    def __init__(self, cfg: KpiConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def _dumps(self, obj: Any) -> bytes:
        return bytes(obj.to_bytes())

    def _loads(self, s: bytes) -> Any:
        return EntityState.from_bytes(s, self.cfg)


class _Agg(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return bytes(obj.to_bytes())

    def _loads(self, s: bytes) -> Any:
        return AggState.from_bytes(s)


class _Business(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return bytes(obj.to_bytes())

    def _loads(self, s: bytes) -> Any:
        return BusinessState.from_bytes(s)


class _Alert(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return bytes(obj.to_bytes())

    def _loads(self, s: bytes) -> Any:
        return AlertState.from_bytes(s)


@dataclass(frozen=True, slots=True)
class TableCodecs:
    """The codec instances of one pipeline's tables: passed to each table, never registered globally.

    The entity codec recomputes contributions with the pipeline's KpiConfig, so two pipelines of
    one process (tests) each decode with their own.
    """

    text: codecs.Codec
    raw: codecs.Codec
    entity: codecs.Codec
    agg: codecs.Codec
    business: codecs.Codec
    alert: codecs.Codec

    @classmethod
    def of(cls, cfg: KpiConfig) -> TableCodecs:
        return cls(_Text(), _Bytes(), _Entity(cfg), _Agg(), _Business(), _Alert())
