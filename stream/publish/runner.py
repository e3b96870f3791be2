"""One sink's queue and task: writes batches, retries with backoff, resyncs after a failure or a loss."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable

from stream.config import mask_secrets
from stream.metrics import Metrics
from stream.sinks.base import Batch, LossCheckedSink, Retraction, Sink

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class SinkRunner:
    """One sink's queue and task: writes batches, retries with backoff, resyncs after a failure.

    A sink that can tell it lost data (`LossCheckedSink`, e.g. Redis restarted empty) is asked every
    `check_every_s` while the runner is idle; a loss, or a failed check, makes the next write the
    complete state, as a failed write does.

    Retractions (periods that left retention) are not part of the complete state: those of a batch
    that failed or was dropped are carried into the next batch written, so a compacted topic still
    gets its tombstones.

    The task never ends but by cancellation: a write that hangs past its budget counts as a failed
    write (the sink is closed, so its client reconnects), and an error while building a batch is
    logged and retried. The budget is `write_timeout_s` plus one second per
    `min_records_per_s` records: a complete write of a large centre is slow, not hung, and a flat
    limit it cannot meet resent it in full forever. A sink task that died silently once left the
    score topics empty while Redis and the API were right (CHANGELOG).
    """

    def __init__(
        self,
        sink: Sink,
        build_full: Callable[[], Batch],
        metrics: Metrics,
        *,
        queue_size: int,
        backoff_initial_s: float,
        backoff_max_s: float,
        sleep: Sleep,
        check_every_s: float = 5.0,
        write_timeout_s: float = 60.0,
        min_records_per_s: float = 1_000.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.build_full = build_full
        self.metrics = metrics
        self.queue: asyncio.Queue[Batch] = asyncio.Queue(maxsize=queue_size)
        self.needs_full = False
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.sleep = sleep
        self.check_every_s = check_every_s
        self.write_timeout_s = write_timeout_s
        self.min_records_per_s = min_records_per_s
        self.monotonic = monotonic
        self._checked_at = monotonic()
        self.errors = 0
        self.busy = False
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.carried: list[Retraction] = []  # retractions of batches failed or dropped

    def offer(self, batch: Batch) -> None:
        """Queue a batch without waiting; when the queue is full, write the complete state instead."""
        if self.needs_full:
            self.carried.extend(batch.retractions)
            self.wakeup.set()
            return
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:
            log.warning("sink %s is behind: dropping its queue, writing the complete state", self.sink.name)
            self.carried.extend(batch.retractions)
            self.needs_full = True
        self.wakeup.set()

    def drop_queued(self) -> int:
        """Drop every batch not yet written (a rebalance made them stale); return how many."""
        dropped = 0
        while not self.queue.empty():
            self.carried.extend(self.queue.get_nowait().retractions)
            dropped += 1
        return dropped

    def _with_carried(self, batch: Batch) -> Batch:
        """`batch` with the retractions carried over first (a copy: batches are shared by sinks)."""
        if not self.carried:
            return batch
        carried, self.carried = self.carried, []
        return dataclasses.replace(batch, retractions=list(dict.fromkeys([*carried, *batch.retractions])))

    async def check_loss(self) -> bool:
        """Ask the sink whether its store lost data; a loss or a failed check asks for a full write."""
        self._checked_at = self.monotonic()
        if not isinstance(self.sink, LossCheckedSink):
            return False
        try:
            lost = await self.sink.lost_data()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("sink %s check failed: %s", self.sink.name, mask_secrets(str(exc)))
            lost = True
        if lost and not self.needs_full:
            log.warning("sink %s lost data (restarted, flushed or failed over): rewriting it", self.sink.name)
            self.needs_full = True
            self.wakeup.set()
        return lost

    def _check_due_in(self) -> float | None:
        """Seconds until the next loss check (<= 0: due); None for a sink without one."""
        if not isinstance(self.sink, LossCheckedSink):
            return None
        return self._checked_at + self.check_every_s - self.monotonic()

    async def _next(self) -> Batch:
        while True:
            due_in = self._check_due_in()
            if due_in is not None and due_in <= 0:  # also under load: a loss is never left unseen
                await self.check_loss()
                continue
            if self.needs_full:
                self.needs_full = False
                self.drop_queued()
                return self._with_carried(self.build_full())
            if not self.queue.empty():
                return self._with_carried(self.queue.get_nowait())
            self.wakeup.clear()
            if due_in is None:
                await self.wakeup.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), due_in)

    async def run(self) -> None:
        delay = self.backoff_initial_s
        while True:
            batch: Batch | None = None
            try:
                batch = await self._next()
                self.busy = True
                await self._write(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if batch is not None:
                    self.carried = [*batch.retractions, *self.carried]
                self.errors += 1
                self.metrics.sink_errors_total.labels(self.sink.name).inc()
                if batch is None:  # building the batch failed: a bug, never a reason to stop writing
                    log.exception("sink %s: building a batch failed (retry in %.1fs)", self.sink.name, delay)
                else:
                    log.warning(
                        "sink %s failed (retry in %.1fs): %s", self.sink.name, delay, mask_secrets(str(exc))
                    )
                self.needs_full = True
                self.busy = False
                await self.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            self.busy = False
            if delay != self.backoff_initial_s:
                log.info("sink %s recovered: wrote the complete state", self.sink.name)
            delay = self.backoff_initial_s

    def write_budget_s(self, batch: Batch) -> float:
        """How long a write of `batch` may take before it counts as hung."""
        return self.write_timeout_s + len(batch) / self.min_records_per_s

    async def _write(self, batch: Batch) -> None:
        """`sink.write`, bounded: a hung write is closed (its client reconnects) and raised as a failure."""
        budget = self.write_budget_s(batch)
        try:
            async with asyncio.timeout(budget):  # no task: a quick write never yields
                await self.sink.write(batch)
        except TimeoutError:
            with contextlib.suppress(Exception):
                await self.sink.close()
            raise TimeoutError(
                f"write of {len(batch)} records took over {budget:.0f}s: closed, resending"
            ) from None

    async def idle(self) -> None:
        """Wait until everything offered so far is written (tests, shutdown); not while failing."""
        while self.busy or self.needs_full or not self.queue.empty():
            await asyncio.sleep(0.005)
