"""After a rebalance, nothing of a partition is delivered before it was sought to its committed offset.

Faust resumes the flow during table recovery (the changelogs are read through it) and resumes the
stream partitions just before it seeks them to their committed offsets. A fetch taken in between
reads on from where the previous generation stopped, which can be past messages nobody processed
(the rest of a fetch dropped at the rebalance). Seen in the three-worker fault test: contact:0@69
processed before 64..68, whose deltas stage 2's high-water mark then dropped (fcr_contacts 109,
report 114); in another run the commit passed such a hole and it was never read. The consumer is a
stand-in with Faust's attributes; Faust's own loop runs against it too, to show the reordering.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from types import SimpleNamespace as NS
from typing import Any

from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP as FaustTP

from agents import faust_compat

TP = FaustTP("events.contact", 0)
COMMITTED = 64


class Reassigned:
    """Generation 2 is current and the flow is on; the first fetch reads on from a stale position
    (69..71), and the seek to the committed offset (64) happens during the second getmany."""

    def __init__(self, seek_during_fetch: bool = False, seek_after_read: bool = False) -> None:
        self.app = NS(
            consumer_generation_id=2,
            topics=NS(acks_enabled_for=lambda topic: True),
            should_stop=False,
        )
        self.transport = NS(app=self.app)
        self._stopped = asyncio.Event()
        # Faust pops a revoked partition's read offset: None until the seek
        self._read_offset: defaultdict[Any, int | None] = defaultdict(lambda: None)
        self._commit_every = None
        self._n_acked = 0
        self.should_stop = False
        self.flow_active = True
        self.suspend_flow = asyncio.Event()
        self.diag = NS(set_flag=lambda f: None, unset_flag=lambda f: None)
        self.log = NS(info=lambda *a: None, exception=lambda *a: None, dev=lambda *a: None)
        self.consumer_stopped_errors: tuple[type[BaseException], ...] = ()
        self.delivered: list[int] = []
        self.gaps: list[tuple[int, int]] = []
        self.mark = faust_compat.SeekMark()
        self.mark.count, self.mark.generation = 2, 1  # generation 1 was sought, 2 not yet
        self.position = 69  # where the previous generation stopped reading
        self.seek_during_fetch = seek_during_fetch
        self.seek_after_read = seek_after_read
        self.fetches = 0
        self.seeks = 0
        self.recovery_seek: asyncio.Future[None] | None = None

    async def sleep(self, s: float) -> None:
        await asyncio.sleep(0)

    async def _seek(self) -> None:
        self.seeks += 1
        self.position = COMMITTED
        self._read_offset[TP] = COMMITTED

    async def _slow_seek(self) -> None:
        await self._seek()
        await asyncio.sleep(0.01)

    async def perform_seek(self) -> None:
        await faust_compat.seek_marked(self, self._seek, self.mark)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        self.fetches += 1
        await asyncio.sleep(0.004)  # a fetch waits for the broker
        if self.fetches > 20 or 73 in self.delivered:
            self._stopped.set()
            return
        if self.fetches == 1 and self.seek_after_read:
            # the consumer thread has read 69..71; the recovery's whole seek runs before the
            # first message reaches the drain loop
            start, self.position = self.position, 72
            await self.perform_seek()
            for offset in range(start, 72):
                yield TP, NS(offset=offset, topic=TP.topic, generation_id=self.app.consumer_generation_id)
            return
        if self.fetches == 2:
            if self.seek_during_fetch:  # the recovery's seek is under way; it has moved the position
                self.recovery_seek = asyncio.ensure_future(
                    faust_compat.seek_marked(self, self._slow_seek, self.mark)
                )
                await asyncio.sleep(0)
            else:
                await self.perform_seek()
        start = self.position
        end = 72 if self.fetches == 1 else start + 10
        self.position = end
        for offset in range(start, end):
            message = NS(offset=offset, topic=TP.topic, generation_id=self.app.consumer_generation_id)
            yield TP, message

    async def callback(self, message: Any) -> None:
        self.delivered.append(message.offset)

    async def commit(self) -> bool:
        return True

    def assignment(self) -> set[Any]:
        return {TP}

    async def seek(self, tp: Any, offset: int) -> None:
        self.position = offset
        self._read_offset[tp] = offset or None

    async def _add_gap(self, tp: Any, start: int, end: int) -> None:
        self.gaps.append((start, end))

    async def wait_first(self, *coros: Any) -> None:
        for extra in coros[1:]:
            if asyncio.iscoroutine(extra):
                extra.close()
        await coros[0]


async def test_ours_delivers_from_the_committed_offset_in_order() -> None:
    c = Reassigned()
    await faust_compat.drain_messages(c, c, lambda tp: True, c.mark)
    assert c.delivered == list(range(COMMITTED, 74))
    assert c.gaps == []


async def test_a_fetch_taken_while_the_seek_is_under_way_is_read_again() -> None:
    c = Reassigned(seek_during_fetch=True)
    await faust_compat.drain_messages(c, c, lambda tp: True, c.mark)
    assert c.seeks >= 2  # the recovery's, and again for a fetch that may have read past it
    assert c.delivered == list(range(COMMITTED, 74))


async def test_faust_processes_the_stale_messages_first() -> None:
    c = Reassigned()
    await FaustConsumer._drain_messages(c, c)  # type: ignore[arg-type]
    assert c.delivered[:3] == [69, 70, 71]  # before 64..68: their deltas fall under the high-water mark


async def test_a_seek_between_the_threads_read_and_the_first_message_is_not_missed() -> None:
    """Faust's getmany reads on the consumer thread: a seek can run whole before its first yield.
    The messages it read (69..71, from before the seek) are dropped and read again in order."""
    c = Reassigned(seek_after_read=True)
    c.mark.generation = 2  # generation 2 was sought before: only the new seek can tell the fetch
    await faust_compat.drain_messages(c, c, lambda tp: True, c.mark)
    assert c.delivered[0] == COMMITTED and c.delivered == sorted(c.delivered)
    assert c.delivered == list(range(COMMITTED, 74))


class NeverCommitted(Reassigned):
    """A partition with no committed offset: aiokafka's seek to the committed offsets leaves it
    where the last fetch stopped."""

    async def _seek(self) -> None:
        self.seeks += 1


async def test_a_dropped_fetch_of_a_partition_never_committed_is_read_again_from_its_start() -> None:
    c = NeverCommitted(seek_after_read=True)
    c.mark.generation = 2
    await faust_compat.drain_messages(c, c, lambda tp: True, c.mark)
    # 69..71 dropped, then everything from the start, in order
    assert c.delivered == list(range(len(c.delivered))) and len(c.delivered) >= 74
