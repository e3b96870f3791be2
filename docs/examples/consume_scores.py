"""A downstream consumer of kpistream's score topics: prints each operator's F and queue's SL.

    python docs/examples/consume_scores.py --bootstrap 127.0.0.1:9092 [--group my-app] [--prefix P]

Both topics are compacted: reading from the beginning gives the latest record of every key and
period first, then every update as it happens. Values are JSON (schemas/json/operator-score and
queue-kpis). Without --group it reads from the beginning each time; with one, it resumes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

from aiokafka import AIOKafkaConsumer


def show(topic: str, value: dict[str, object]) -> str:
    if topic.endswith("kpi.operator-scores"):
        share = value["fund_share"]
        return (
            f"{value['period_key']:<18} operator {value['operator_id']:<10} F={value['f']:.3f} "
            f"share={'-' if share is None else f'{share:.1%}'} ({value['strategy']})"
        )
    kpis = value["kpis"]
    assert isinstance(kpis, dict)
    sl = kpis["sl"]
    text = "-" if sl is None else f"{sl:.1%}"
    return f"{value['period_key']:<18} {value['scope']:<6} {value['queue']:<10} SL={text}"


async def main(bootstrap: str, group: str | None, prefix: str, period: str | None) -> None:
    topics = [f"{prefix}kpi.operator-scores", f"{prefix}kpi.queue-kpis"]
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=group is not None,
    )
    await consumer.start()
    try:
        async for msg in consumer:
            value = json.loads(msg.value)
            if period is None or value["period"] == period:
                print(show(msg.topic, value), flush=True)
    finally:
        await consumer.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka host:port")
    p.add_argument("--group", help="consumer group (resume where it stopped)")
    p.add_argument("--prefix", default="", help="topic prefix (KPISTREAM_TOPIC_PREFIX)")
    p.add_argument("--period", choices=("rolling", "day", "month"), help="only this kind of period")
    a = p.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(a.bootstrap, a.group, a.prefix, a.period))
