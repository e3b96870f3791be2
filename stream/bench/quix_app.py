"""The Quix Streams baseline: the call KPIs of the telephony topic, per queue and day, as a Quix user
would write them (run as a subprocess by `kpistream bench`).

Stage 1 is a stateful function over `events.telephony` (RocksDB state keyed by call_id: the offered
queue and time, the first outcome); when a call has both it emits its counts, which `group_by`
repartitions by `queue|day` to stage 2, a stateful sum (RocksDB state keyed by queue and day).
Same thresholds as kpistream's defaults (service level 20 s, no short abandons).

    python -m stream.bench.quix_app --broker H:P --topic T --group G --state-dir D --expect N

Prints one JSON line: first and last processing time (time.time()), the time the app stopped
(after its final checkpoint), events, deltas, aggregates applied.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

OUTCOMES = ("call.answered", "call.abandoned", "call.lost")


def ts_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def call_counts(st: dict[str, Any], sl_ms: int, short_ms: int) -> dict[str, int]:
    """One call's counts from its offered time and first outcome (kpistream's definitions)."""
    wait = max(0, st["out_ts"] - st["o_ts"])
    kind = st["out"]
    if kind == "call.abandoned" and wait < short_ms:
        return {"short_abandoned": 1}
    within = wait <= sl_ms
    if kind == "call.answered":
        c = {"offered": 1, "answered": 1, "sl_answered": int(within)}
    elif kind == "call.abandoned":
        c = {"offered": 1, "abandoned": 1, "abandoned_in_sl": int(within)}
    else:
        c = {"offered": 1, "lost": 1}
    return {k: v for k, v in c.items() if v}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stream.bench.quix_app")
    p.add_argument("--broker", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--expect", type=int, required=True, help="messages on the topic")
    p.add_argument("--sl-ms", type=int, default=20_000)
    p.add_argument("--short-ms", type=int, default=0)
    p.add_argument("--timeout", type=float, default=600.0)
    args = p.parse_args(argv)

    from quixstreams import Application

    app = Application(
        broker_address=args.broker,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    topic = app.topic(args.topic, value_deserializer="json", key_deserializer="str")
    sdf = app.dataframe(topic=topic)
    stats: dict[str, Any] = {"first": None, "last": None, "events": 0, "deltas": 0, "applied": 0}
    started = time.time()

    def stage1(value: dict[str, Any], state: Any) -> list[dict[str, Any]]:
        if stats["first"] is None:
            stats["first"] = time.time()
        stats["events"] += 1
        st: dict[str, Any] = state.get("call") or {}
        etype = value.get("type")
        changed = False
        if etype == "call.offered" and "o_ts" not in st:
            st["o_ts"], st["q"] = ts_ms(value["ts"]), value["queue"]
            changed = True
        elif etype in OUTCOMES and "out" not in st:
            st["out"], st["out_ts"] = etype, ts_ms(value["ts"])
            changed = True
        out: list[dict[str, Any]] = []
        if changed and "o_ts" in st and "out" in st and not st.get("done"):
            st["done"] = True
            day = datetime.fromtimestamp(st["out_ts"] / 1000, tz=UTC).date().isoformat()
            out.append({"k": f"{st['q']}|{day}", "c": call_counts(st, args.sl_ms, args.short_ms)})
            stats["deltas"] += 1
        if changed:
            state.set("call", st)
        return out

    def stage2(value: dict[str, Any], state: Any) -> dict[str, Any]:
        counts: dict[str, int] = state.get("counts") or {}
        for k, v in value["c"].items():
            counts[k] = counts.get(k, 0) + v
        state.set("counts", counts)
        stats["applied"] += 1
        if stats["events"] >= args.expect and stats["applied"] >= stats["deltas"]:
            stats["last"] = time.time()
            app.stop()
        elif time.time() - started > args.timeout:
            app.stop()
        return counts

    sdf = sdf.apply(stage1, stateful=True, expand=True)
    sdf = sdf.group_by(lambda v: v["k"], name="queue-day")
    sdf = sdf.apply(stage2, stateful=True)
    app.run()  # returns after the final checkpoint: state flushed to RocksDB, offsets committed
    stats["stopped"] = time.time()
    print(json.dumps(stats), flush=True)
    return 0 if stats["last"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
