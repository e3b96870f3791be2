"""Properties of the pure core over random small event sets (hypothesis).

(a) the report does not depend on arrival order;
(b) an event delivered twice (same event_id, another offset) changes nothing;
(c) stage 1 replay: the same (event, source, offset) re-emits exactly the same deltas, and re-applying
    deltas to an AggregateStore changes nothing;
(d) counts are never negative and offered = answered + abandoned + lost (and per operator
    presented = answered + lost, since "lost += 1 if o did not answer it");
(e) call and e-mail counts agree with a small oracle written from CONTRACT.md section 2.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core import events as ev
from stream.core.aggregate import AggregateStore, AggState
from stream.core.config import DAY_MS, HOUR_MS, KpiConfig
from stream.core.contributions import KIND_OF_STREAM
from stream.core.counts import add_into
from stream.core.engine import Engine
from stream.core.entity import EntityState, apply_event, contributions_of
from stream.core.events import Event
from stream.core.scoring import DEFAULT
from stream.core.stage1 import state_key

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BASE = (datetime(2026, 1, 15, 23, 0, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
CFG = KpiConfig()
OPS = ["A", "B", "C"]
CALL_QUEUE = {"c0": "qa", "c1": "qb", "c2": "qa"}
MAIL_QUEUE = {"m0": "mq", "m1": "mq"}

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Times: within two hours around midnight (crossing a day), in whole seconds plus a few ms near thresholds.
short_ts = st.builds(
    lambda s, extra: BASE + s * 1000 + extra,
    st.integers(0, 2 * 3600),
    st.sampled_from([0, 0, 0, 1, 999]),
)
# Dispositions: half-day steps over 10 days, so the 7-day window is hit exactly sometimes.
long_ts = st.builds(
    lambda h, extra: BASE + h * 12 * HOUR_MS + extra,
    st.integers(0, 20),
    st.sampled_from([0, 0, 1, -1]),
)
ops = st.sampled_from(OPS)


def _call(draw: Any) -> dict[str, Any]:
    cid = draw(st.sampled_from(sorted(CALL_QUEUE)))
    t = draw(
        st.sampled_from(
            [ev.CALL_OFFERED] * 3
            + [ev.CALL_RINGING, ev.CALL_MISSED] * 2
            + [
                ev.CALL_ANSWERED,
                ev.CALL_ABANDONED,
                ev.CALL_LOST,
                ev.CALL_ENDED,
            ]
        )
    )
    kw: dict[str, Any] = {"call_id": cid}
    if t == ev.CALL_OFFERED:
        kw["queue"] = CALL_QUEUE[cid]
    elif t in (ev.CALL_RINGING, ev.CALL_MISSED, ev.CALL_ANSWERED, ev.CALL_ENDED):
        kw["operator_id"] = draw(ops)
    elif t == ev.CALL_ABANDONED:
        kw["operator_id"] = draw(st.one_of(st.none(), ops))
    else:
        kw["reason"] = "timeout"
    return {"type": t, "ts": draw(short_ts), **kw}


def _chat(draw: Any) -> dict[str, Any]:
    hid = draw(st.sampled_from(["h0", "h1"]))
    t = draw(st.sampled_from([ev.CHAT_STARTED, ev.CHAT_ASSIGNED] + [ev.CHAT_MESSAGE] * 5 + [ev.CHAT_ENDED]))
    kw: dict[str, Any] = {"chat_id": hid}
    if t == ev.CHAT_STARTED:
        kw["queue"] = "chat"
    elif t == ev.CHAT_ASSIGNED:
        kw["operator_id"] = draw(ops)
    elif t == ev.CHAT_MESSAGE:
        if draw(st.booleans()):
            kw["sender"] = "customer"
        else:
            kw["sender"] = "operator"
            kw["operator_id"] = draw(ops)
    return {"type": t, "ts": draw(short_ts), **kw}


def _email(draw: Any) -> dict[str, Any]:
    mid = draw(st.sampled_from(sorted(MAIL_QUEUE)))
    if draw(st.booleans()):
        return {"type": ev.EMAIL_RECEIVED, "ts": draw(short_ts), "email_id": mid, "queue": MAIL_QUEUE[mid]}
    return {"type": ev.EMAIL_REPLIED, "ts": draw(short_ts), "email_id": mid, "operator_id": draw(ops)}


def _disposition(draw: Any) -> dict[str, Any]:
    case = draw(st.sampled_from([None, "K0", "K1"]))
    customer = draw(st.sampled_from(["U0", "U1"] if case is None else [None, "U0", "U1"]))
    return {
        "type": ev.CONTACT_DISPOSITION,
        "ts": draw(long_ts),
        "channel": draw(st.sampled_from(list(ev.CHANNELS))),
        "operator_id": draw(ops),
        "resolved": draw(st.booleans()),
        "case_id": case,
        "customer_id": customer,
    }


def _business(draw: Any) -> dict[str, Any]:
    t = draw(st.sampled_from([ev.BUSINESS_ORDERS, ev.BUSINESS_COST, ev.STAFF_HEADCOUNT, ev.STAFF_LEFT]))
    ts = draw(long_ts)
    if t == ev.BUSINESS_ORDERS:
        return {"type": t, "ts": ts, "date": "2026-01-16", "count": draw(st.integers(0, 9)), "amount": "12.5"}
    if t == ev.BUSINESS_COST:
        return {"type": t, "ts": ts, "date": "2026-01-16", "amount": "7.25"}
    if t == ev.STAFF_HEADCOUNT:
        return {"type": t, "ts": ts, "count": draw(st.integers(1, 20))}
    return {"type": t, "ts": ts, "operator_id": draw(ops)}


@st.composite
def event_sets(draw: Any, max_size: int = 30) -> list[Event]:
    kinds = st.sampled_from([_call] * 4 + [_chat] * 3 + [_email] * 2 + [_disposition] * 2 + [_business])
    n = draw(st.integers(1, max_size))
    out = []
    for i in range(n):
        d = draw(kinds)(draw)
        if d["type"] == ev.CHAT_MESSAGE:
            d["message_id"] = f"msg{i}"
        if d["type"] == ev.CONTACT_DISPOSITION:
            d["contact_id"] = f"ct{i}"
        out.append(Event(event_id=f"e{i}", **d))
    return out


def report(events: list[Event]) -> dict[str, Any]:
    eng = Engine(CFG)
    eng.process_all(events)
    assert eng.too_late == 0
    return eng.report(DEFAULT)


# --------------------------------------------------------------------------- (a) order


@SETTINGS
@given(data=st.data(), events=event_sets())
def test_report_is_independent_of_arrival_order(data: st.DataObject, events: list[Event]) -> None:
    shuffled = data.draw(st.permutations(events))
    assert report(shuffled) == report(events)


# --------------------------------------------------------------------------- (b) duplicates


@SETTINGS
@given(data=st.data(), events=event_sets())
def test_duplicate_deliveries_change_nothing(data: st.DataObject, events: list[Event]) -> None:
    dups = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(events) - 1), st.integers(0, len(events))), min_size=1, max_size=8
        )
    )
    delivered = list(events)
    for idx, pos in dups:
        delivered.insert(min(pos, len(delivered)), events[idx])
    assert report(delivered) == report(events)


# --------------------------------------------------------------------------- (c) stage 1 replay


def _stage1(
    events: list[Event],
) -> tuple[dict[tuple[str, str], EntityState], list[tuple[int, Event, list[Any]]]]:
    states: dict[tuple[str, str], EntityState] = {}
    emitted: list[tuple[int, Event, list[Any]]] = []
    for i, e in enumerate(events):
        kind = KIND_OF_STREAM.get(e.stream)
        if kind is None:
            continue
        key = (kind, state_key(e))
        st_, deltas = apply_event(states.get(key), kind, e, "src:0", i, CFG)
        states[key] = st_
        emitted.append((i, e, deltas))
    return states, emitted


def _snapshot(table: dict[str, AggState]) -> dict[str, Any]:
    return {k: v.to_json() for k, v in table.items()}


@SETTINGS
@given(data=st.data(), events=event_sets(), rolling=st.booleans())
def test_stage1_replay_re_emits_the_same_deltas_and_aggregates_absorb_them(
    data: st.DataObject, events: list[Event], rolling: bool
) -> None:
    states, emitted = _stage1(events)
    if not emitted:
        return
    # Replay some positions (after everything else was processed): exactly the same deltas again.
    picks = data.draw(st.lists(st.integers(0, len(emitted) - 1), min_size=1, max_size=6))
    replays = []
    for p in picks:
        i, e, deltas = emitted[p]
        kind = KIND_OF_STREAM[e.stream]
        key = (kind, state_key(e))
        again_state, again = apply_event(states[key], kind, e, "src:0", i, CFG)
        assert again == deltas
        states[key] = again_state
        replays.extend(again)
        # The same event_id from another position is a duplicate: nothing at all.
        _, dup = apply_event(states[key], kind, e, "src:0", 10_000 + i, CFG)
        assert dup == []

    # The deltas telescope to the entities' final contributions.
    total: dict[tuple[str, str, int], dict[str, int]] = defaultdict(dict)
    for _, _, deltas in emitted:
        for d in deltas:
            add_into(total[(d.scope, d.scope_id, d.ts)], d.counts)
    final: dict[tuple[str, str, int], dict[str, int]] = defaultdict(dict)
    for s in states.values():
        for k, c in contributions_of(s, CFG).items():
            add_into(final[k], c)
    assert {k: v for k, v in total.items() if v} == {k: v for k, v in final.items() if v}

    table: dict[str, AggState] = {}
    store = AggregateStore(table, CFG, rolling=rolling)
    store.observe(max(e.ts for e in events))
    for _, _, deltas in emitted:
        for d in deltas:
            store.apply(d)
    once = _snapshot(table)
    for d in replays:
        assert store.apply(d) == []
    for _, _, deltas in emitted:
        for d in deltas:
            assert store.apply(d) == []
    assert _snapshot(table) == once


# --------------------------------------------------------------------------- (d) invariants

NON_NEG_OP = ("presented", "answered", "sl_answered", "abandoned", "lost", "responses", "fast", "replied")


@SETTINGS
@given(events=event_sets())
def test_counts_are_consistent(events: list[Event]) -> None:
    rep = report(events)
    months: dict[str, dict[tuple[str, str], dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for pk, p in rep["periods"].items():
        rows = [("center", "", p["center"])] + [("queue", q, r) for q, r in p["queues"].items()]
        for scope, sid, row in rows:
            c = row["counts"]
            assert all(v >= 0 for v in c.values()), (pk, scope, sid, c)
            assert c["offered"] == c["answered"] + c["abandoned"] + c["lost"], (pk, scope, sid, c)
            assert c["sl_answered"] <= c["answered"]
            assert c["fast"] <= c["responses"]
            assert c["on_time"] <= c["replied"]
            assert c["fcr_resolved"] <= c["fcr_contacts"]
        for op, row in p["operators"].items():
            c = row["counts"]
            assert all(v >= 0 for v in c.values()), (pk, op, c)
            assert c["presented"] == c["answered"] + c["lost"], (pk, op, c)
            assert c["sl_answered"] <= c["answered"]
            assert c["abandoned"] <= c["lost"]
            assert c["fast"] <= c["responses"]
            assert c["on_time"] <= c["replied"]
            assert c["fcr_resolved"] <= c["fcr_contacts"]
            assert any(c.values()), (pk, op)  # only operators with activity are listed
            for v in row["kpis"].values():
                assert v is None or 0.0 <= v <= 1.0
        shares = [r["fund_share"] for r in p["operators"].values()]
        if shares and any(s is not None for s in shares):
            assert all(s is not None for s in shares)
            assert abs(sum(shares) - 1.0) < 1e-9, pk
        # A month's counts are the sum of its days' counts.
        if pk.startswith("day:"):
            bucket = months[f"month:{pk[4:11]}"]
            for scope, sid, row in (
                [("center", "", p["center"])]
                + [("queue", q, r) for q, r in p["queues"].items()]
                + [("op", o, r) for o, r in p["operators"].items()]
            ):
                add_into(bucket[(scope, sid)], row["counts"])
    for mk, bucket in months.items():
        p = rep["periods"][mk]
        got: dict[tuple[str, str], dict[str, int]] = {("center", ""): p["center"]["counts"]}
        got.update({("queue", q): r["counts"] for q, r in p["queues"].items()})
        got.update({("op", o): r["counts"] for o, r in p["operators"].items()})
        for key in set(bucket) | set(got):
            want = {k: v for k, v in bucket.get(key, {}).items() if v}
            have = {k: v for k, v in got.get(key, {}).items() if v}
            assert have == want, (mk, key)


# --------------------------------------------------------------------------- (e) oracle


def _utc_day(ts: int) -> str:
    return "day:" + (_EPOCH + timedelta(milliseconds=ts)).strftime("%Y-%m-%d")


@SETTINGS
@given(events=event_sets(max_size=40))
def test_call_and_email_counts_match_an_oracle_of_the_contract(events: list[Event]) -> None:
    """Centre/queue call counts and e-mail counts per day, straight from the contract's words."""
    uniq = {e.event_id: e for e in events}.values()
    want: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_call: dict[str, list[Event]] = defaultdict(list)
    by_mail: dict[str, list[Event]] = defaultdict(list)
    for e in uniq:
        if e.stream == "telephony":
            by_call[e.call_id or ""].append(e)
        elif e.stream == "email":
            by_mail[e.email_id or ""].append(e)
    for es in by_call.values():
        offers = [e for e in es if e.type == ev.CALL_OFFERED]
        outcomes = [e for e in es if e.type in (ev.CALL_ANSWERED, ev.CALL_ABANDONED, ev.CALL_LOST)]
        if not offers or not outcomes:
            continue  # not counted (an orphan, or still waiting)
        first_ts = min(e.ts for e in outcomes)
        firsts = {e.type for e in outcomes if e.ts == first_ts}
        if len(firsts) > 1:
            return  # a tie of different outcomes at the same millisecond: the contract does not say
        outcome = firsts.pop()
        wait = first_ts - min(e.ts for e in offers)
        for scope in ("center", offers[0].queue or ""):
            c = want[(_utc_day(first_ts), scope)]
            c["offered"] += 1
            if outcome == ev.CALL_ANSWERED:
                c["answered"] += 1
                c["sl_answered"] += int(wait <= 20_000)
            elif outcome == ev.CALL_ABANDONED:
                c["abandoned"] += 1
            else:
                c["lost"] += 1
    for es in by_mail.values():
        recv = [e for e in es if e.type == ev.EMAIL_RECEIVED]
        reps = [e for e in es if e.type == ev.EMAIL_REPLIED]
        if not recv or not reps:
            continue
        first = min(e.ts for e in reps)
        for scope in ("center", recv[0].queue or ""):
            c = want[(_utc_day(first), scope)]
            c["replied"] += 1
            c["on_time"] += int(first - min(e.ts for e in recv) <= 180_000)

    rep = report(events)
    fields = ("offered", "answered", "sl_answered", "abandoned", "lost", "replied", "on_time")
    got: dict[tuple[str, str], dict[str, int]] = {}
    for pk, p in rep["periods"].items():
        if not pk.startswith("day:"):
            continue
        got[(pk, "center")] = {f: p["center"]["counts"][f] for f in fields}
        for q, r in p["queues"].items():
            got[(pk, q)] = {f: r["counts"][f] for f in fields}
    for key in set(want) | set(got):
        w = {f: want.get(key, {}).get(f, 0) for f in fields}
        g = got.get(key, dict.fromkeys(fields, 0))
        assert g == w, key


def test_generated_sets_cover_day_boundaries() -> None:
    """Sanity check of the generator's time range: it spans midnight and the FCR window."""
    assert _utc_day(BASE) == "day:2026-01-15"
    assert _utc_day(BASE + 2 * HOUR_MS) == "day:2026-01-16"
    assert BASE + 20 * 12 * HOUR_MS - BASE > 7 * DAY_MS


def _fcr_oracle(events: list[Event]) -> dict[tuple[str, str], dict[str, int]] | None:
    """FCR per (day, operator or centre), from the contract's words; None when a same-ms tie makes it moot."""
    by_case: dict[str, list[Event]] = defaultdict(list)
    for e in {e.event_id: e for e in events}.values():
        if e.type == ev.CONTACT_DISPOSITION:
            by_case[f"case:{e.case_id}" if e.case_id is not None else f"customer:{e.customer_id}"].append(e)
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for ds in by_case.values():
        ds.sort(key=lambda e: e.ts)
        if len({e.ts for e in ds}) != len(ds):
            return None
        first: Event | None = None
        repeated = False

        def close(first: Event | None, repeated: bool) -> None:
            if first is None:
                return
            for who in ("center", f"op:{first.operator_id}"):
                c = out[(_utc_day(first.ts), who)]
                c["fcr_contacts"] += 1
                c["fcr_resolved"] += int(bool(first.resolved) and not repeated)

        for d in ds:
            if first is not None and d.ts - first.ts <= 7 * DAY_MS:
                repeated = True  # a repeat: counts for nothing else
                continue
            close(first, repeated)
            first, repeated = d, False  # the first disposition, or one after the window: a new case
        close(first, repeated)
    return out


def _fac_oracle(events: list[Event]) -> dict[tuple[str, str], dict[str, int]] | None:
    """FAC per (day, operator or centre), from the contract's words; None on a same-ms tie in a chat."""
    by_chat: dict[str, list[Event]] = defaultdict(list)
    for e in {e.event_id: e for e in events}.values():
        if e.stream == "chat":
            by_chat[e.chat_id or ""].append(e)
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for es in by_chat.values():
        es.sort(key=lambda e: e.ts)
        if len({e.ts for e in es}) != len(es):
            return None
        opened: int | None = None
        assignee: str | None = None
        for e in es:
            if e.type == ev.CHAT_ASSIGNED:
                assignee = e.operator_id
            elif e.type == ev.CHAT_MESSAGE and e.sender == "customer":
                if opened is None:
                    opened = e.ts
            elif e.type == ev.CHAT_MESSAGE and opened is not None:
                for who in ("center", f"op:{e.operator_id}"):
                    c = out[(_utc_day(e.ts), who)]
                    c["responses"] += 1
                    c["fast"] += int(e.ts - opened <= 15_000)
                opened = None
            elif e.type == ev.CHAT_ENDED:
                if opened is not None:
                    for who in ("center", *([f"op:{assignee}"] if assignee else [])):
                        out[(_utc_day(e.ts), who)]["responses"] += 1
                # ASSUMPTION (contract silent): nothing after the chat's end counts.
                break
    return out


@SETTINGS
@given(events=event_sets(max_size=40))
def test_fcr_and_fac_counts_match_an_oracle_of_the_contract(events: list[Event]) -> None:
    rep = report(events)
    for oracle, fields in (
        (_fcr_oracle, ("fcr_contacts", "fcr_resolved")),
        (_fac_oracle, ("responses", "fast")),
    ):
        want = oracle(events)
        if want is None:
            continue
        got: dict[tuple[str, str], dict[str, int]] = {}
        for pk, p in rep["periods"].items():
            if pk.startswith("day:"):
                got[(pk, "center")] = {f: p["center"]["counts"][f] for f in fields}
                for op, r in p["operators"].items():
                    got[(pk, f"op:{op}")] = {f: r["counts"][f] for f in fields}
        for key in set(want) | set(got):
            w = {f: want.get(key, {}).get(f, 0) for f in fields}
            g = got.get(key, dict.fromkeys(fields, 0))
            assert g == w, (key, oracle.__name__)
