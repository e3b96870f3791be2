"""`kpistream payouts close|show YYYY-MM`: close a month for payroll, or show its ledger.

Both ask a running worker (`POST /api/v1/payouts/close`, `GET /api/v1/payouts/{month}`): the
month's figures live in the workers' tables, and the worker writes the ledger on `kpi.payouts`
exactly once (agents/payouts_api.py). The command writes the payouts as CSV for payroll.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from stream.commands.worker import add_settings_args, settings_from_args
from stream.core.payouts import CLOSE, CORRECTION, payouts_csv
from stream.errors import KpiStreamError

EXIT_REFUSED = 2  # too early, no fund, no activity, a malformed month
EXIT_UNAVAILABLE = 3  # the worker, the cluster or Kafka cannot answer now


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "payouts",
        help="close a month for payroll (written once to kpi.payouts) or show a month's payouts",
        description="Close a month once its grace has passed: each operator's final KPIs, F, share and "
        "amount, written once to kpi.payouts by a running worker, and as CSV. Closing again writes "
        "nothing twice: it shows the close and writes a correction for figures changed since.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    close = actions.add_parser("close", help="close MONTH (YYYY-MM): payouts written once")
    close.add_argument(
        "--fund",
        metavar="AMOUNT",
        help="the month's fund (default: the strategies file's [funds] or KPISTREAM_FUND_AMOUNT)",
    )
    show = actions.add_parser("show", help="the payouts and corrections of MONTH (YYYY-MM)")
    for a in (close, show):
        a.add_argument("month", metavar="YYYY-MM")
        add_settings_args(a)
        a.add_argument("--url", help="a worker's base URL (default http://WEB_HOST:WEB_PORT of the settings)")
        a.add_argument(
            "--csv",
            metavar="FILE",
            help="write the payouts as CSV here (default payouts-YYYY-MM.csv; '-' = stdout)",
        )
        a.add_argument("--format", choices=("table", "json"), default="table", help="what to print")
        a.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the worker")
    p.set_defaults(func=run)


def call(url: str, token: str, body: dict[str, Any] | None, timeout: float) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of a GET (body None) or a POST to the worker; errors included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"error": f"http_{exc.code}", "detail": raw.decode(errors="replace")[:300]}


def table(body: dict[str, Any]) -> str:
    """One line per payout and correction, then the close."""
    lines = [f"{body['month']}: {body['status']}"]
    for rec in body["records"]:
        v = rec["value"]
        if v["kind"] == CLOSE:
            lines.append(
                f"close: {v['operators']} operators, {v['contacts']} contacts, "
                f"paid {v['paid']} of {v['fund']} ({v['strategy']['name']}), at {v['at']}"
            )
        else:
            what = (
                f"correction {v['revision']} (change {v['change']})" if v["kind"] == CORRECTION else "payout"
            )
            lines.append(f"  {v['operator_id']:<16} F {v['f']:<14} amount {v['amount'] or '-':>12}  {what}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except KpiStreamError as exc:
        print(f"kpistream payouts: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    base = (args.url or f"http://{settings.web_host}:{settings.web_port}").rstrip("/")
    # The admin token of the web API, where the settings have one (docs/outputs.md).
    token = str(getattr(settings, "web_admin_token", "") or "")
    if args.action == "close":
        payload: dict[str, Any] = {"month": args.month}
        if args.fund:
            payload["fund"] = args.fund
        status, body = call_or_fail(f"{base}/api/v1/payouts/close", token, payload, args.timeout)
    else:
        status, body = call_or_fail(f"{base}/api/v1/payouts/{args.month}", token, None, args.timeout)
    if status >= 400 or "records" not in body:
        print(f"kpistream payouts {args.action}: {body.get('error')}: {body.get('detail')}", file=sys.stderr)
        return EXIT_UNAVAILABLE if status >= 500 or status < 0 else EXIT_REFUSED
    print(
        json.dumps(body, indent=2) if args.format == "json" else table(body),
        end="" if args.format != "json" else "\n",
    )
    if body["status"] != "open":
        text = payouts_csv((r["key"], r["value"]) for r in body["records"])
        target = args.csv or f"payouts-{body['month']}.csv"
        if target == "-":
            sys.stdout.write(text)
        else:
            Path(target).write_text(text, encoding="utf-8")
            print(f"payouts CSV: {target}", file=sys.stderr)
    for rec in body.get("corrections", []):
        v = rec["value"]
        print(
            f"correction: {v['operator_id']} amount {v['previous']['amount']} -> {v['amount']} "
            f"(events of the closed month arrived after the close)",
            file=sys.stderr,
        )
    return 0


def call_or_fail(
    url: str, token: str, body: dict[str, Any] | None, timeout: float
) -> tuple[int, dict[str, Any]]:
    """`call`, with a worker that cannot be reached as status -1."""
    try:
        return call(url, token, body, timeout)
    except (OSError, ValueError) as exc:
        return -1, {"error": "worker_unavailable", "detail": f"{url}: {exc}"}
