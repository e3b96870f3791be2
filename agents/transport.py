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
as before. The loop is `faust_compat.drain_messages` (agents/faust_compat.py, with every other
use of Faust's private API): Faust's, but for that delivery and two rules its docstring states,
a message delivered only in the consumer generation it was fetched in while the flow is on, and
only from a fetch taken after this generation's seek to the committed offsets (a fetch the seek
may have overlapped is dropped and the partitions sought again). Gaps, commits and acks are
Faust's.
"""

from __future__ import annotations

from faust.transport.drivers import aiokafka as faust_aiokafka

from agents import faust_compat


class FastConsumer(faust_compat.InlineDeliveryConsumer):
    """Faust's aiokafka consumer with an inline fast path for deliveries that cannot block."""


class FastTransport(faust_aiokafka.Transport):
    """The aiokafka transport with `FastConsumer`, and a producer that keeps its topics' leaders.

    (`TopicTrackingProducer`: without it a commit could wait 20 minutes for a batch whose
    partition leader aiokafka had forgotten, agents/faust_compat.py.)
    """

    Consumer = FastConsumer
    Producer = faust_compat.TopicTrackingProducer
