"""A Faust transport whose consumer hands fetched messages to the conductor without a task each.

Faust's `Consumer._drain_messages` runs every fetched message through
`wait_first(callback(message), suspend_flow.wait())`: four futures and an `asyncio.wait` per
message, so it can deliver only about 9,000 messages a second however little the agents do
(measured: a bare agent that only decodes JSON, docs/benchmarks.md). The `wait_first` is there
so that a rebalance (`suspend_flow`) can interrupt a delivery that is *blocked*: on flow control,
a full producer buffer, a full stream queue, or the conductor's lock.

`FastConsumer` checks those conditions first. When none holds, the conductor's callback cannot
suspend (asyncio runs one thing at a time and nothing in it awaits anything that is not done), so
it is awaited inline; otherwise the message takes Faust's own path, with the same cancellation
as before. Offsets, gaps, commits and acks are untouched: the loop is Faust's, line for line,
except for that one call.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service


class FastConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with an inline fast path for deliveries that cannot block."""

    def _can_deliver_inline(self, tp: Any) -> bool:
        app = self.app
        if self.suspend_flow.is_set() or not app.flow_control.is_active():
            return False
        conductor: Any = app.topics
        if conductor._tp_to_callback_lock.locked():
            return False
        buffer = app.producer.buffer
        if buffer.max_messages and buffer.size > buffer.max_messages:
            return False
        return all(not chan.queue.full() for chan in conductor._tp_index.get(tp, ()))

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised end to end
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        can_inline = self._can_deliver_inline
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            if can_inline(tp):
                                await callback(message)
                            else:
                                await self.wait_first(callback(message), self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class FastTransport(faust_aiokafka.Transport):
    """The aiokafka transport with `FastConsumer`."""

    Consumer = FastConsumer
