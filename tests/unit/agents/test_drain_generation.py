"""A rebalance that completes while the drain loop awaits must not move the read offset.

Faust's loop awaits between taking a message and delivering it (a commit every
`broker_commit_every` acks). If a rebalance completes during that commit, the partition was
sought back to its committed offset and its read offset reset; Faust then delivers the old
message and sets the read offset to its offset, so the re-read messages below it are dropped as
"already read" and never processed. The consumer here is a stand-in with Faust's attributes;
Faust's own loop runs against it too, to show the loss this guards against.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace as NS
from typing import Any

from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP as FaustTP

from agents import faust_compat

TP = FaustTP("events.telephony", 0)


class Rebalancer:
    """Fetches come from a script; the first commit completes a rebalance (generation 2, seek to 50)."""

    def __init__(self, commit_every: int = 3) -> None:
        self.app = NS(
            consumer_generation_id=1,
            topics=NS(acks_enabled_for=lambda topic: True),
            should_stop=False,
        )
        self.transport = NS(app=self.app)
        self._stopped = asyncio.Event()
        self._read_offset: dict[Any, int | None] = {TP: 99}
        self._commit_every = commit_every
        self._n_acked = 0
        self.should_stop = False
        self.flow_active = True
        self.suspend_flow = asyncio.Event()
        self.diag = NS(set_flag=lambda f: None, unset_flag=lambda f: None)
        self.log = NS(info=lambda *a: None, exception=lambda *a: None, dev=lambda *a: None)
        self.consumer_stopped_errors: tuple[type[BaseException], ...] = ()
        self.delivered: list[tuple[int, int]] = []
        self.fetches = [list(range(100, 106)), list(range(50, 110))]
        self.rebalanced = False
        self.mark = faust_compat.SeekMark()
        self.mark.count, self.mark.generation = 2, 1  # generation 1 was sought

    async def sleep(self, s: float) -> None:
        await asyncio.sleep(0)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        if not self.fetches:
            self._stopped.set()
            return
        generation = self.app.consumer_generation_id
        for offset in self.fetches.pop(0):
            if self.app.consumer_generation_id != generation:
                break  # as Faust's getmany: a new generation cancels the rest of the fetch
            generation_id = self.app.consumer_generation_id
            yield TP, NS(offset=offset, topic=TP.topic, key=b"", value=b"", generation_id=generation_id)

    async def callback(self, message: Any) -> None:
        self.delivered.append((message.offset, message.generation_id))
        self._n_acked += 1

    async def commit(self) -> bool:
        if not self.rebalanced:  # the whole rebalance happens during this await
            self.rebalanced = True
            self.app.consumer_generation_id = 2
            self._read_offset[TP] = 50  # perform_seek: back to the committed offset
            self.mark.count, self.mark.generation = 4, 2
        return True

    async def _add_gap(self, tp: Any, start: int, end: int) -> None:
        pass

    async def wait_first(self, *coros: Any) -> None:
        for extra in coros[1:]:
            if asyncio.iscoroutine(extra):
                extra.close()
        await coros[0]


def offsets_of_generation(c: Rebalancer, generation: int) -> list[int]:
    return [o for o, g in c.delivered if g == generation]


async def test_ours_delivers_every_message_re_read_after_the_rebalance() -> None:
    c = Rebalancer()
    await faust_compat.drain_messages(c, c, lambda tp: True, c.mark)
    assert offsets_of_generation(c, 1) == [100, 101, 102]
    assert offsets_of_generation(c, 2) == list(range(50, 110))


async def test_faust_drops_them_the_same_rebalance() -> None:
    c = Rebalancer()
    await FaustConsumer._drain_messages(c, c)  # type: ignore[arg-type]
    assert offsets_of_generation(c, 1) == [100, 101, 102, 103]  # 103 delivered after the rebalance
    assert offsets_of_generation(c, 2)[0] == 103  # 50..102 dropped as already read
