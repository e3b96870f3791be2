"""The PBX importers (stream/importers): Asterisk queue_log and a CSV of calls to contract events.

Fixtures (tests/data/queue_log.sample, tests/data/calls.csv) were written from the formats'
documentation (docs.asterisk.org "Queue Logs"; app_queue.c for the units). Every test checks that
each emitted JSON line is a valid contract event (`parse_event`), and the KPI tests run the events
through `Engine` and compare per-queue and per-operator counts with the outcomes stated by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.parse import parse_event
from stream.cli import main
from stream.core.config import KpiConfig
from stream.core.engine import Engine
from stream.core.events import Event
from stream.core.scoring import DEFAULT
from stream.importers import ImportResult, Skipped, calls_csv, queue_log, to_jsonl

DATA = Path(__file__).resolve().parents[2] / "data"
QUEUE_LOG = DATA / "queue_log.sample"
CALLS_CSV = DATA / "calls.csv"
DAY = "day:2026-01-15"
Q_FIELDS = ("offered", "answered", "sl_answered", "abandoned", "lost")
OP_FIELDS = ("presented", "answered", "sl_answered", "abandoned", "lost")
CSV_MAP = (
    "uniqueid=call_id,queue=queue,caller=customer_id,agent=operator_id,entered=entered,"
    "answered=answered,left=abandoned,ended=ended,status=outcome"
)


# --------------------------------------------------------------------------------------------
# helpers


def valid_events(lines: Iterable[str]) -> list[Event]:
    """Every JSON line parsed with the contract validator (raises on the first invalid one)."""
    out = []
    for line in lines:
        event = parse_event(line.rstrip("\n"))
        # A ts is never naive: always RFC 3339 UTC with a 'Z'.
        assert json.loads(line)["ts"].endswith("Z"), line
        out.append(event)
    return out


def day_report(result: ImportResult) -> dict[str, Any]:
    """The day period of the engine's report over the result's events (all valid, none orphan)."""
    events = valid_events(to_jsonl(result.events))
    eng = Engine(KpiConfig())
    eng.process_all(events)
    assert eng.too_late == 0
    assert eng.orphan_calls() == []
    report = eng.report(DEFAULT)
    period: dict[str, Any] = report["periods"][DAY]
    return period


def queue_counts(period: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    return {q: {f: r["counts"][f] for f in Q_FIELDS} for q, r in period["queues"].items()}


def op_counts(period: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    return {o: {f: r["counts"][f] for f in OP_FIELDS} for o, r in period["operators"].items()}


def q(offered: int, answered: int, sl: int, abandoned: int, lost: int) -> dict[str, int]:
    return dict(zip(Q_FIELDS, (offered, answered, sl, abandoned, lost), strict=True))


def op(presented: int, answered: int, sl: int, abandoned: int, lost: int) -> dict[str, int]:
    return dict(zip(OP_FIELDS, (presented, answered, sl, abandoned, lost), strict=True))


def ql(*lines: str, tz: str = "UTC") -> ImportResult:
    return queue_log.convert([line + "\n" for line in lines], tz=tz)


def by_type(result: ImportResult, etype: str) -> list[dict[str, Any]]:
    return [e for e in result.events if e["type"] == etype]


# --------------------------------------------------------------------------------------------
# queue_log: the sample file


def test_queue_log_sample_kpis() -> None:
    """Calls of queue_log.sample and their outcomes (T = 20 s):

    1768467600.1  support  missed by SIP/1001 (rang 15 s), answered by PJSIP/alice after 18 s: SL
    1768467700.3  sales    answered by Local/1002@from-queue/n after 30.25 s: not SL
    1768467900.5  support  abandoned after 10 s while ringing at PJSIP/alice (RINGCANCELED)
    1768468000.6  support  missed by SIP/1001, then abandoned after 40 s (not ringing any more)
    1768468100.7  sales    EXITWITHTIMEOUT: lost
    1768468200.8  sales    EXITEMPTY: lost
    1768468300.9  support  EXITWITHKEY: lost
    1768468400.10 support  answered by SIP/1001 after 5 s: SL; blind-transferred into sales, where
                  (call 1768468400.10#2) answered by Local/1002@from-queue/n after 9 s: SL
    1768468700.13 support  (millisecond epochs) answered by PJSIP/alice after 12 s: SL
    """
    result = queue_log.convert(QUEUE_LOG.open(encoding="utf-8"))
    period = day_report(result)
    assert queue_counts(period) == {
        "support": q(offered=6, answered=3, sl=3, abandoned=2, lost=1),
        "sales": q(offered=4, answered=2, sl=1, abandoned=0, lost=2),
    }
    assert op_counts(period) == {
        # missed 1768467600.1 and 1768468000.6, answered 1768468400.10
        "SIP/1001": op(presented=3, answered=1, sl=1, abandoned=0, lost=2),
        # answered 1768467600.1 and 1768468700.13, abandoned while ringing 1768467900.5
        "PJSIP/alice": op(presented=3, answered=2, sl=2, abandoned=1, lost=1),
        # answered 1768467700.3 (30 s) and 1768468400.10#2 (9 s)
        "Local/1002@from-queue/n": op(presented=2, answered=2, sl=1, abandoned=0, lost=0),
    }
    assert result.skipped == [
        Skipped(36, "too_few_fields", "1 '|'-separated fields; at least 5 expected"),
    ]
    assert dict(result.ignored) == {"QUEUESTART": 1, "CONFIGRELOAD": 1}


def test_queue_log_sample_details() -> None:
    result = queue_log.convert(QUEUE_LOG.open(encoding="utf-8"))
    ev = {e["event_id"]: e for e in result.events}
    # Deterministic ids: ql-{callid}-{line}-{n}; importing again gives the same events.
    assert queue_log.convert(QUEUE_LOG.open(encoding="utf-8")).events == result.events
    # RINGNOANSWER (line 8): ringing at ts - 15000 ms, missed at ts.
    assert ev["ql-1768467600.1-8-0"] == {
        "event_id": "ql-1768467600.1-8-0",
        "type": "call.ringing",
        "ts": "2026-01-15T09:00:00.000Z",
        "call_id": "1768467600.1",
        "operator_id": "SIP/1001",
    }
    assert ev["ql-1768467600.1-8-1"]["type"] == "call.missed"
    assert ev["ql-1768467600.1-8-1"]["ts"] == "2026-01-15T09:00:15.000Z"
    # CONNECT (line 9): ringing at ts - 3 s (ringtime, data3), answered at ts.
    assert ev["ql-1768467600.1-9-0"]["ts"] == "2026-01-15T09:00:15.000Z"
    assert ev["ql-1768467600.1-9-1"]["type"] == "call.answered"
    # ENTERQUEUE: customer_id = caller id (data2); 'anonymous' is no one.
    assert ev["ql-1768467600.1-7-0"]["customer_id"] == "5551001"
    assert "customer_id" not in ev["ql-1768468000.6-17-0"]
    # Fractional epoch kept to the millisecond.
    assert ev["ql-1768467700.3-11-0"]["ts"] == "2026-01-15T09:01:40.250Z"
    # Lost reasons.
    assert [e["reason"] for e in by_type(result, "call.lost")] == ["timeout", "no_agents", "caller_key"]
    # Abandons: the one after RINGCANCELED names the member, the one after RINGNOANSWER does not.
    assert [e.get("operator_id") for e in by_type(result, "call.abandoned")] == ["PJSIP/alice", None]
    # The transfer ends SIP/1001's part; re-entering a queue is a new call.
    assert ev["ql-1768468400.10-28-0"]["type"] == "call.ended"
    assert ev["ql-1768468400.10-28-0"]["operator_id"] == "SIP/1001"
    assert ev["ql-1768468400.10-29-0"]["call_id"] == "1768468400.10#2"
    assert ev["ql-1768468400.10-29-0"]["queue"] == "sales"
    # Millisecond epochs.
    assert ev["ql-1768468700.13-32-0"]["ts"] == "2026-01-15T09:18:20.000Z"


def test_queue_log_sample_agent_states() -> None:
    result = queue_log.convert(QUEUE_LOG.open(encoding="utf-8"))
    states = [(e["operator_id"], e["state"], e.get("queues")) for e in by_type(result, "agent.state")]
    assert states == [
        ("PJSIP/alice", "available", ["support"]),  # ADDMEMBER
        ("SIP/1001", "available", ["support"]),  # ADDMEMBER
        ("Local/1002@from-queue/n", "paused", ["sales"]),  # ADDMEMBER|PAUSED
        ("Agent/2001", "available", None),  # AGENTLOGIN
        ("Local/1002@from-queue/n", "available", ["sales"]),  # UNPAUSE
        ("SIP/1001", "paused", ["support"]),  # PAUSEALL (the PAUSE that follows is the same state)
        ("SIP/1001", "available", ["support"]),  # UNPAUSEALL (+ UNPAUSE)
        ("SIP/1001", "logged_out", None),  # REMOVEMEMBER from its only queue
        ("Agent/2001", "logged_out", None),  # AGENTLOGOFF
    ]
    valid_events(to_jsonl(result.events))


# --------------------------------------------------------------------------------------------
# queue_log: single cases


def test_abandon_while_ringing_several_members_names_no_one() -> None:
    """ringall: the caller hangs up while two members ring. Outcome: abandoned; both presented and
    lost; the contract's single operator_id cannot name both, so neither is charged the abandon."""
    result = ql(
        "1768467600|c1|support|NONE|ENTERQUEUE||5551|1",
        "1768467608|c1|support|PJSIP/a|RINGCANCELED|5000",
        "1768467608|c1|support|PJSIP/b|RINGCANCELED|5000",
        "1768467608|c1|support|NONE|ABANDON|1|1|8",
    )
    period = day_report(result)
    assert queue_counts(period) == {"support": q(1, 0, 0, 1, 0)}
    assert op_counts(period) == {"PJSIP/a": op(1, 0, 0, 0, 1), "PJSIP/b": op(1, 0, 0, 0, 1)}
    assert "operator_id" not in by_type(result, "call.abandoned")[0]
    assert result.skipped == []


def test_abandon_logged_with_a_member() -> None:
    """Asterisk logs ABANDON with the member when the caller hangs up as the member picks up."""
    result = ql(
        "1768467600|c1|support|NONE|ENTERQUEUE||5551|1",
        "1768467630|c1|support|SIP/7|ABANDON|1|1|30",
    )
    period = day_report(result)
    assert queue_counts(period) == {"support": q(1, 0, 0, 1, 0)}
    assert op_counts(period) == {"SIP/7": op(1, 0, 0, 1, 1)}


def test_ringnoanswer_of_zero_ms_is_not_a_presentation() -> None:
    """A member rung for 0 ms was never reachable: not presented. The call is then answered."""
    result = ql(
        "1768467600|c1|support|NONE|ENTERQUEUE||5551|1",
        "1768467600|c1|support|SIP/busy|RINGNOANSWER|0",
        "1768467610|c1|support|SIP/ok|CONNECT|10|x.1|4",
    )
    period = day_report(result)
    assert op_counts(period) == {"SIP/ok": op(1, 1, 1, 0, 0)}
    assert sum(result.notes.values()) == 1


def test_ring_start_never_before_the_offer() -> None:
    """A ring reconstructed from whole-second times is clamped to the call.offered time."""
    result = ql(
        "1768467600.900|c1|support|NONE|ENTERQUEUE||5551|1",
        "1768467610|c1|support|SIP/1|RINGNOANSWER|9500",
    )
    assert by_type(result, "call.ringing")[0]["ts"] == "2026-01-15T09:00:00.900Z"


def test_file_starting_mid_call_reconstructs_offered_and_answer() -> None:
    """No ENTERQUEUE (the log was rotated): CONNECT's holdtime gives the offer (wait 25 s: answered,
    not SL); a call seen only at COMPLETECALLER gets offer and answer from holdtime and calltime
    (wait 5 s: SL); an EXITWITHTIMEOUT gets its offer from the waittime (lost)."""
    result = ql(
        "1768467625|c1|support|SIP/1|CONNECT|25|x.1|2",
        "1768467700|c2|support|SIP/2|COMPLETECALLER|5|60|1",
        "1768467800|c3|support|NONE|EXITWITHTIMEOUT|1|1|300",
    )
    period = day_report(result)
    assert queue_counts(period) == {"support": q(3, 2, 1, 0, 1)}
    assert op_counts(period) == {"SIP/1": op(1, 1, 0, 0, 0), "SIP/2": op(1, 1, 1, 0, 0)}
    offers = {e["call_id"]: e["ts"] for e in by_type(result, "call.offered")}
    assert offers == {
        "c1": "2026-01-15T09:00:00.000Z",
        "c2": "2026-01-15T09:00:35.000Z",
        "c3": "2026-01-15T08:58:20.000Z",
    }
    assert result.skipped == []


def test_syscompat_is_lost_and_the_following_abandon_ignored() -> None:
    """SYSCOMPAT (channels incompatible) is the system's failure: lost "error"; Asterisk then also
    logs ABANDON, which would be a second outcome and is ignored."""
    result = ql(
        "1768467600|c1|support|NONE|ENTERQUEUE||5551|1",
        "1768467605|c1|support|SIP/1|SYSCOMPAT|",
        "1768467605|c1|support|NONE|ABANDON|1|1|5",
    )
    period = day_report(result)
    assert queue_counts(period) == {"support": q(1, 0, 0, 0, 1)}
    assert [e["reason"] for e in by_type(result, "call.lost")] == ["error"]
    assert by_type(result, "call.abandoned") == []


def test_queue_log_times() -> None:
    """Seconds, fractions, milliseconds, microseconds; date-times in --tz or with an offset."""
    result = ql(
        "1768467600|a|q|NONE|ENTERQUEUE||1|1",
        "1768467600.123456|b|q|NONE|ENTERQUEUE||1|1",
        "1768467600123|c|q|NONE|ENTERQUEUE||1|1",
        "1768467600123456|d|q|NONE|ENTERQUEUE||1|1",
        "2026-01-15 10:00:00.250|e|q|NONE|ENTERQUEUE||1|1",
        "2026-01-15T10:00:00+01:00|f|q|NONE|ENTERQUEUE||1|1",
        tz="Europe/Berlin",
    )
    assert [e["ts"] for e in result.events] == [
        "2026-01-15T09:00:00.000Z",
        "2026-01-15T09:00:00.123Z",
        "2026-01-15T09:00:00.123Z",
        "2026-01-15T09:00:00.123Z",
        "2026-01-15T09:00:00.250Z",
        "2026-01-15T09:00:00.000Z",
    ]
    valid_events(to_jsonl(result.events))


def test_queue_log_bad_lines_are_reported_never_fatal() -> None:
    result = ql(
        "garbage",
        "yesterday|c1|support|NONE|ENTERQUEUE||1|1",
        "1768467600|NONE|support|NONE|ENTERQUEUE||1|1",
        "1768467600|c2|support|NONE|ENTERQUEUE||1|1",
        "1768467610|c2|support|SIP/1|CONNECT|ten|x|1",
        "1768467610|c2|support|NONE|RINGNOANSWER|1000",
        "1768467610|c2||NONE||",
        "1768467620|c2|support|SIP/1|CONNECT|20|x|1",
        "1768467630|NONE|NONE|NONE|PAUSE|",
        "1768467640|NONE|NONE|NONE|SOMETHINGNEW|1",
    )
    assert [(s.line, s.reason) for s in result.skipped] == [
        (1, "too_few_fields"),
        (2, "bad_time"),
        (3, "missing_field"),  # no call id
        (5, "bad_field"),  # holdtime not a number
        (6, "missing_field"),  # no agent
        (7, "missing_field"),  # no event name
        (9, "missing_field"),  # agent event without an agent
    ]
    assert dict(result.ignored) == {"SOMETHINGNEW": 1}
    period = day_report(result)
    assert queue_counts(period) == {"support": q(1, 1, 1, 0, 0)}


def test_unknown_zone_is_an_error() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        queue_log.convert([], tz="Mars/Olympus")


# --------------------------------------------------------------------------------------------
# calls CSV


def csv_options(**kw: Any) -> calls_csv.CsvOptions:
    base: dict[str, Any] = {
        "mapping": calls_csv.parse_map([CSV_MAP]),
        "tz": "Europe/Berlin",
        "time_format": "%d.%m.%Y %H:%M:%S",
    }
    base.update(kw)
    return calls_csv.CsvOptions(**base)


def test_calls_csv_sample_kpis() -> None:
    """Rows of calls.csv (local times in Europe/Berlin, UTC+1 in January; T = 20 s):

    c-1 support answered by alice after 12 s: SL      c-2 support answered by bob after 45 s
    c-3 support ABANDONED after 30 s (alice on the row is not charged by default)
    c-4 sales   TIMEOUT: lost                          c-5 sales   answered by carol after 5 s: SL
    c-6 bad entered time: skipped                      c-7 outcome TRANSFERRED in no list: skipped
    """
    result = calls_csv.convert(CALLS_CSV.open(encoding="utf-8-sig", newline=""), csv_options())
    period = day_report(result)
    assert queue_counts(period) == {
        "support": q(offered=3, answered=2, sl=1, abandoned=1, lost=0),
        "sales": q(offered=2, answered=1, sl=1, abandoned=0, lost=1),
    }
    assert op_counts(period) == {
        "alice": op(1, 1, 1, 0, 0),
        "bob": op(1, 1, 0, 0, 0),
        "carol": op(1, 1, 1, 0, 0),
    }
    assert [(s.line, s.reason) for s in result.skipped] == [(7, "bad_time"), (8, "unknown_outcome")]
    first = result.events[0]
    assert first == {
        "event_id": "csv-c-1-2-0",
        "type": "call.offered",
        "ts": "2026-01-15T09:00:00.000Z",  # 10:00 in Berlin
        "call_id": "c-1",
        "queue": "support",
        "customer_id": "5552001",
    }
    assert [e["reason"] for e in by_type(result, "call.lost")] == ["timeout"]
    assert [e["call_id"] for e in by_type(result, "call.ended")] == ["c-1", "c-2", "c-5"]


def test_calls_csv_abandoned_at_agent() -> None:
    """With abandoned_at_agent, c-3's agent (alice) was being rung: presented, abandoned, lost."""
    result = calls_csv.convert(
        CALLS_CSV.open(encoding="utf-8-sig", newline=""), csv_options(abandoned_at_agent=True)
    )
    period = day_report(result)
    assert op_counts(period)["alice"] == op(presented=2, answered=1, sl=1, abandoned=1, lost=1)


def test_calls_csv_inferred_outcome_iso_and_epoch() -> None:
    """No outcome column: an answered time means answered, else an abandon time means abandoned,
    else the row cannot be classified. ISO times with offsets, naive ISO (UTC) and epoch seconds."""
    text = [
        "id;q;from;op;in;ans;gone;end\n",
        "1;support;555;alice;2026-01-15T10:00:00+01:00;2026-01-15T10:00:20+01:00;;\n",  # 20 s: SL
        "2;support;556;;2026-01-15 09:05:00;;2026-01-15 09:05:03.5;\n",  # abandoned
        "3;support;557;bob;1768468200;1768468221;;1768468300\n",  # 21 s: not SL
        "4;support;558;;1768468300;;;\n",  # no outcome: skipped
        "5;support;559;bob;1768468400;1768468390;;\n",  # answered before entered: skipped
    ]
    opts = calls_csv.CsvOptions(
        mapping=calls_csv.parse_map(
            [
                "id=call_id,q=queue,from=customer_id,op=operator_id",
                "in=entered,ans=answered,gone=abandoned,end=ended",
            ]
        ),
        delimiter=";",
    )
    result = calls_csv.convert(text, opts)
    period = day_report(result)
    assert queue_counts(period) == {"support": q(3, 2, 1, 1, 0)}
    assert op_counts(period) == {"alice": op(1, 1, 1, 0, 0), "bob": op(1, 1, 0, 0, 0)}
    assert [(s.line, s.reason) for s in result.skipped] == [(5, "no_outcome"), (6, "bad_order")]
    assert by_type(result, "call.abandoned")[0]["ts"] == "2026-01-15T09:05:03.500Z"


def test_calls_csv_custom_values_and_default_call_id() -> None:
    text = [
        "queue,start,stop,result\n",
        "sales,2026-01-15 09:00:00,2026-01-15 09:01:00,Overflowed\n",
        "sales,2026-01-15 09:02:00,2026-01-15 09:02:30,Hung up\n",
    ]
    opts = calls_csv.CsvOptions(
        mapping=calls_csv.parse_map(["queue=queue,start=entered,stop=abandoned,result=outcome"]),
        abandoned_values=calls_csv.parse_values("hung up"),
        lost_values=calls_csv.parse_values("overflowed"),
    )
    result = calls_csv.convert(text, opts)
    assert queue_counts(day_report(result)) == {"sales": q(2, 0, 0, 1, 1)}
    assert by_type(result, "call.lost")[0] | {"event_id": ""} == {
        "event_id": "",
        "type": "call.lost",
        "ts": "2026-01-15T09:01:00.000Z",
        "call_id": "row-2",
        "reason": "overflowed",
    }


def test_calls_csv_daylight_saving() -> None:
    """Berlin 2026: 02:30 on 29 March does not exist (skipped); 02:30 on 25 October exists twice
    (taken as the first, 00:30Z, and noted)."""
    text = [
        "queue,in,gone\n",
        "q,2026-03-29 02:30:00,2026-03-29 03:10:00\n",
        "q,2026-10-25 02:30:00,2026-10-25 02:30:10\n",
    ]
    opts = calls_csv.CsvOptions(
        mapping=calls_csv.parse_map(["queue=queue,in=entered,gone=abandoned"]), tz="Europe/Berlin"
    )
    result = calls_csv.convert(text, opts)
    assert [(s.line, s.reason) for s in result.skipped] == [(2, "bad_time")]
    assert result.events[0]["ts"] == "2026-10-25T00:30:00.000Z"
    assert sum(result.notes.values()) == 2
    valid_events(to_jsonl(result.events))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("a=queue", "entered"),
        ("a=queue,b=entered", "outcome column"),
        ("a=queue,b=entered,c=colour", "unknown field 'colour'"),
        ("a=queue,b=entered,c=outcome,novalue", "not COLUMN=FIELD"),
        ("a=queue,b=queue,c=entered,d=outcome", "mapped twice"),
    ],
)
def test_calls_csv_bad_map(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        calls_csv.parse_map([spec])


def test_calls_csv_header_without_a_mapped_column() -> None:
    opts = calls_csv.CsvOptions(mapping=calls_csv.parse_map(["queue=queue,start=entered,result=outcome"]))
    with pytest.raises(ValueError, match="'start'"):
        calls_csv.convert(["queue,begin,result\n"], opts)


def test_calls_csv_overlapping_value_lists() -> None:
    with pytest.raises(ValueError, match="more than one list"):
        csv_options(lost_values=frozenset({"answered"}))


# --------------------------------------------------------------------------------------------
# command line


def test_cli_queue_log_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["import", "queue-log", str(QUEUE_LOG)])
    out, err = capsys.readouterr()
    assert rc == 1  # the malformed line was skipped
    events = valid_events(out.splitlines())
    assert len(events) == 44
    assert "line 36: too_few_fields" in err
    assert "44 events written" in err
    assert "1 line skipped (too_few_fields 1)" in err
    assert "ignored: CONFIGRELOAD 1, QUEUESTART 1" in err


def test_cli_clean_queue_log_exits_0_and_feeds_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "queue_log"
    src.write_text(
        "".join(line for line in QUEUE_LOG.open(encoding="utf-8") if "not a queue_log" not in line),
        encoding="utf-8",
    )
    out = tmp_path / "events.jsonl"
    assert main(["import", "queue-log", str(src), "-o", str(out)]) == 0
    assert "0 lines skipped" in capsys.readouterr().err
    valid_events(out.read_text(encoding="utf-8").splitlines())
    assert main(["report", "--events", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    counts = report["periods"][DAY]["center"]["counts"]
    assert {f: counts[f] for f in Q_FIELDS} == q(offered=10, answered=5, sl=4, abandoned=2, lost=3)


def test_cli_calls_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "calls.jsonl"
    rc = main(
        [
            "import",
            "calls-csv",
            str(CALLS_CSV),
            "--map",
            CSV_MAP,
            "--tz",
            "Europe/Berlin",
            "--time-format",
            "%d.%m.%Y %H:%M:%S",
            "-o",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert "line 7: bad_time" in err and "line 8: unknown_outcome" in err
    assert "16 events written" in err
    events = valid_events(out.read_text(encoding="utf-8").splitlines())
    assert len(events) == 16


@pytest.mark.parametrize(
    "argv",
    [
        ["import", "calls-csv", str(CALLS_CSV), "--map", "a=queue"],
        ["import", "calls-csv", str(CALLS_CSV), "--map", CSV_MAP, "--tz", "Nowhere/Else"],
        ["import", "queue-log", str(QUEUE_LOG), "--tz", "Nowhere/Else"],
        ["import", "queue-log", "/nonexistent/queue_log"],
    ],
)
def test_cli_unusable_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "kpistream import" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["import", "--help"], ["import", "queue-log", "--help"], ["import", "calls-csv", "--help"]]
)
def test_cli_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage: kpistream import" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# hostile input: never fatal, and whatever comes out is valid

_QL_WORDS = ["1768467600", "1768467600.5", "1768467600123", "", "NONE", "c1", "c2", "q", "SIP/1", "x", "0"]
_QL_EVENTS = sorted(queue_log.CALL_EVENTS | set(queue_log.AGENT_STATE_EVENTS))
_QL_PIECES = st.sampled_from([*_QL_WORDS, *_QL_EVENTS])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.lists(_QL_PIECES, min_size=0, max_size=9).map("|".join), st.text(max_size=40)),
        max_size=30,
    )
)
def test_queue_log_never_fails_and_emits_only_valid_events(lines: list[str]) -> None:
    result = queue_log.convert([line.replace("\n", " ") + "\n" for line in lines])
    valid_events(to_jsonl(result.events))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(
                [
                    "",
                    "q",
                    "c1",
                    "alice",
                    "ANSWERED",
                    "ABANDONED",
                    "TIMEOUT",
                    "x",
                    "0",
                    "1768467600",
                    "2026-01-15 10:00:00",
                    "2026-03-29 02:30:00",
                    "15.01.2026 10:00:00",
                    '"',
                    "9" * 30,
                ]
            ),
            max_size=10,
        ).map(",".join),
        max_size=20,
    )
)
def test_calls_csv_never_fails_and_emits_only_valid_events(rows: list[str]) -> None:
    header = "uniqueid,queue,caller,agent,entered,answered,left,ended,status\n"
    result = calls_csv.convert([header] + [r + "\n" for r in rows], csv_options(time_format=None))
    valid_events(to_jsonl(result.events))
