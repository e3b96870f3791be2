"""Faust codecs for the core's state objects: tables keep Python objects, changelogs keep JSON."""

from __future__ import annotations

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


TEXT = "kpi_text"
BYTES = "kpi_bytes"
ALERT = "kpi_alert"
ENTITY = "kpi_entity"
AGG = "kpi_agg"
BUSINESS = "kpi_business"


def register_codecs(cfg: KpiConfig) -> None:
    """Register (or re-register with a new config) the codecs by name."""
    codecs.register(TEXT, _Text())
    codecs.register(BYTES, _Bytes())
    codecs.register(ENTITY, _Entity(cfg))
    codecs.register(AGG, _Agg())
    codecs.register(BUSINESS, _Business())
    codecs.register(ALERT, _Alert())
