"""Topic creation outlasts a broker that just stopped, and fails at once on a refusal."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import NodeNotReadyError, TopicAuthorizationFailedError

from stream import topic_admin
from stream.errors import ServiceError


async def test_a_broker_away_is_retried_with_a_fresh_client(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    async def once(*_: Any) -> list[str]:
        calls.append(1)
        if len(calls) == 1:
            raise ServiceError("cannot create topics") from NodeNotReadyError("node 2 not ready")
        return ["t"]

    async def no_sleep(_: float) -> None:
        return None

    monkeypatch.setattr(topic_admin, "_create_topics_once", once)
    monkeypatch.setattr(topic_admin.asyncio, "sleep", no_sleep)
    assert await topic_admin.create_topics("127.0.0.1:9", {"t": (1, {})}) == ["t"]
    assert len(calls) == 2


async def test_a_refusal_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    async def once(*_: Any) -> list[str]:
        calls.append(1)
        raise ServiceError("cannot create topics") from TopicAuthorizationFailedError("t")

    monkeypatch.setattr(topic_admin, "_create_topics_once", once)
    with pytest.raises(ServiceError):
        await topic_admin.create_topics("127.0.0.1:9", {"t": (1, {})})
    assert len(calls) == 1
