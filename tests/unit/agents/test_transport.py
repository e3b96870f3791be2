"""FastConsumer's fast path is taken only when the conductor's callback cannot block."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from agents.transport import FastConsumer


def consumer(**overrides: Any) -> Any:
    state = {
        "suspended": False,
        "flow_active": True,
        "locked": False,
        "buffer_size": 0,
        "queue_full": False,
    }
    state.update(overrides)
    lock = asyncio.Lock()
    if state["locked"]:
        lock._locked = True  # type: ignore[attr-defined]
    queue = SimpleNamespace(full=lambda: state["queue_full"])
    app = SimpleNamespace(
        flow_control=SimpleNamespace(is_active=lambda: state["flow_active"]),
        topics=SimpleNamespace(_tp_to_callback_lock=lock, _tp_index={"tp": [SimpleNamespace(queue=queue)]}),
        producer=SimpleNamespace(buffer=SimpleNamespace(max_messages=100, size=state["buffer_size"])),
    )
    return SimpleNamespace(app=app, suspend_flow=SimpleNamespace(is_set=lambda: state["suspended"]))


def test_inline_when_nothing_can_block() -> None:
    assert FastConsumer._can_deliver_inline(consumer(), "tp")


@pytest.mark.parametrize(
    "blocked",
    [
        {"suspended": True},  # a rebalance asked the consumer to stop
        {"flow_active": False},  # flow control suspended
        {"locked": True},  # the conductor is rebuilding its callbacks
        {"buffer_size": 101},  # the producer buffer must ebb first
        {"queue_full": True},  # an agent's queue is full: put() would wait
    ],
)
def test_faust_path_when_the_delivery_could_block(blocked: dict[str, Any]) -> None:
    assert not FastConsumer._can_deliver_inline(consumer(**blocked), "tp")
