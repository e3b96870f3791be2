"""The wallboard for real: a worker, Redis, headless Chromium. The page shows what is in Redis and
changes without a reload when new events arrive (including an alert banner), and every JSON API
response of the running worker validates against the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis
from tests_support import send_events

from agents.openapi import openapi_document, response_schema
from agents.web_auth import token_digest

pytestmark = [pytest.mark.browser, pytest.mark.integration]

T0 = 1_768_467_600  # 2026-01-15T09:00:00Z, seconds
CHROMEDRIVER = "/usr/bin/chromedriver"
TV_TOKEN = "wallboard-tv-token"  # in the users file, as its sha256
API_TOKEN = "api-viewer-token"  # KPISTREAM_WEB_VIEWER_TOKEN
CHROME_OPTIONS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "chromium is not installed (apt-get install chromium)"
    if not os.access(CHROMEDRIVER, os.X_OK):
        return f"no {CHROMEDRIVER} (apt-get install chromium-driver)"
    return None


def make_driver(user_data_dir: Path, width: int = 1920, height: int = 1080) -> Any:
    """Headless Chromium with a fresh profile, driven through Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in CHROME_OPTIONS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.add_argument(f"--window-size={width},{height}")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        options.binary_location = binary
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Any]:
    reason = browser_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser test needs Chromium in CI: {reason}")
        pytest.skip(reason)
    driver = make_driver(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()


# ------------------------------------------------------------------------------------------ events


def call(i: int, queue: str, outcome: str, op: str = "op-1") -> list[dict[str, Any]]:
    """One call offered at T0 + 5 i s; answered (by `op`, after 3 s), abandoned, or left waiting."""
    cid = f"{queue}-{i}"
    t = T0 + i * 5
    out: list[dict[str, Any]] = [
        {"event_id": f"{cid}-1", "type": "call.offered", "ts": t, "call_id": cid, "queue": queue}
    ]
    if outcome == "answered":
        out.append(
            {"event_id": f"{cid}-r", "type": "call.ringing", "ts": t + 1, "call_id": cid, "operator_id": op}
        )
        out.append(
            {"event_id": f"{cid}-2", "type": "call.answered", "ts": t + 3, "call_id": cid, "operator_id": op}
        )
    elif outcome == "abandoned":
        out.append({"event_id": f"{cid}-2", "type": "call.abandoned", "ts": t + 3, "call_id": cid})
    return out


def agent(op: str, state: str, queue: str, ts: int) -> dict[str, Any]:
    return {
        "event_id": f"{op}-{state}-{ts}",
        "type": "agent.state",
        "ts": ts,
        "operator_id": op,
        "state": state,
        "queues": [queue],
    }


def wait_for(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(0.3)
        value = check()
    return value


def text_of(driver: Any, css: str) -> str:
    """textContent of the first match ('' if none): also for elements on a hidden leaderboard tab."""
    return str(
        driver.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';", css
        )
    )


# ------------------------------------------------------------------------------------------ the test


def test_wallboard_shows_redis_and_updates_live(
    browser: Any, kafka_broker: Any, redis_server: Any, worker_env: Any, start_worker: Any, tmp_path: Path
) -> None:
    redis_url = f"redis://127.0.0.1:{redis_server.port}/9"
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.flushdb()
    # Web auth on: the TV is a viewer of the users file, logged in by its URL (docs/security.md);
    # the test's own API calls use a viewer token from the settings (worker.get_json sends it).
    users = tmp_path / "web-users.toml"
    users.write_text(
        f'[[users]]\nname = "floor-tv"\nrole = "viewer"\ntoken_sha256 = "{token_digest(TV_TOKEN)}"\n',
        encoding="utf-8",
    )
    env = worker_env(
        kafka_broker.url,
        redis_url,
        KPISTREAM_FLUSH_INTERVAL_S="0.5",
        KPISTREAM_WEB_AUTH_FILE=str(users),
        KPISTREAM_WEB_VIEWER_TOKEN=API_TOKEN,
    )
    worker = start_worker(env)

    # Phase 1: "sales" answers 8 of 8 within 3 s (op-1 five, op-2 three); 2 more calls still wait.
    phase1 = [agent("op-1", "available", "sales", T0), agent("op-2", "busy", "sales", T0)]
    phase1 += [e for i in range(8) for e in call(i, "sales", "answered", "op-1" if i < 5 else "op-2")]
    phase1 += [e for i in (8, 9) for e in call(i, "sales", "waiting")]
    asyncio.run(send_events(env, phase1))
    assert wait_for(lambda: r.hget("kpi:queue:sales:rolling", "offered") == "8"), worker.log_tail()
    assert wait_for(lambda: r.hget("kpi:live:queue:sales", "waiting") == "2"), worker.log_tail()
    assert wait_for(lambda: r.zscore("kpi:leaderboard:rolling", "op-1") is not None)
    sl = float(r.hget("kpi:queue:sales:rolling", "sl") or "nan")
    assert sl == 1.0

    browser.get(f"{worker.base_url}/wallboard")  # not logged in: refused
    assert '"unauthorized"' in browser.page_source
    browser.get(f"{worker.base_url}/wallboard?token={TV_TOKEN}")
    assert browser.current_url == f"{worker.base_url}/wallboard"  # the token left the address bar
    assert browser.execute_script("return window.__loaded") == 1
    browser.execute_script("window.__marker = 'same-page';")  # a reload would wipe it
    sales = '[data-queue="sales"]'
    assert wait_for(lambda: text_of(browser, f'{sales} [data-field="sl"] .value') == "100%", 30), (
        browser.page_source[:3000]
    )
    # Agent states are on other partitions than the calls: each field is waited for on its own.
    assert wait_for(lambda: text_of(browser, f'{sales} [data-field="waiting"] .value') == "2", 30)
    assert browser.find_element("css selector", f'{sales} [data-field="sl"]').get_attribute(
        "data-status"
    ) == ("green")
    assert wait_for(lambda: text_of(browser, f'{sales} [data-field="agents_available"] b') == "1", 30)
    assert wait_for(lambda: text_of(browser, f'{sales} [data-field="agents_busy"] b') == "1", 30)
    board = '.board[data-period="rolling"]'
    assert wait_for(lambda: all(op in text_of(browser, board) for op in ("op-1", "op-2")), 30), text_of(
        browser, board
    )
    assert not browser.find_element("id", "alerts").is_displayed()

    # Phase 2: a CAR burst on "hot" (11 of 20 abandoned) fires an alert; sales' waiting calls answered.
    phase2 = [e for i in range(20) for e in call(100 + i, "hot", "abandoned" if i < 11 else "answered")]
    for i in (8, 9):
        phase2.append(
            {
                "event_id": f"sales-{i}-2",
                "type": "call.answered",
                "ts": T0 + 200,
                "call_id": f"sales-{i}",
                "operator_id": "op-2",
            }
        )
    asyncio.run(send_events(env, phase2))
    assert wait_for(lambda: any("car:queue:hot" in k for k in r.hkeys("kpi:alerts:active"))), (
        worker.log_tail()
    )

    banner = '#alerts [data-kpi="car"][data-queue="hot"]'
    assert wait_for(lambda: text_of(browser, banner) != "", 30), browser.page_source[:3000]
    assert browser.find_element("id", "alerts").is_displayed()
    assert "55.0 %" in text_of(browser, banner)
    hot = '[data-queue="hot"]'
    assert wait_for(lambda: text_of(browser, f'{hot} [data-field="car"] .value') == "55.0%", 30)
    assert (
        browser.find_element("css selector", f'{hot} [data-field="car"]').get_attribute("data-status")
        == "red"
    )
    assert "alerting" in (browser.find_element("css selector", f"article{hot}").get_attribute("class") or "")
    # Sales: 10 offered, none waiting, SL now 8 / 10 (two answered after 190 s and more).
    assert wait_for(lambda: text_of(browser, f'{sales} [data-field="waiting"] .value') == "0", 30)
    assert wait_for(lambda: text_of(browser, f'{sales} [data-field="sl"] .value') == "80.0%", 30)
    # Same page all along: no reload happened.
    assert browser.execute_script("return window.__loaded") == 1
    assert browser.execute_script("return window.__marker") == "same-page"
    assert int(browser.execute_script("return document.body.dataset.events || 0")) > 0

    # The JSON API of the running worker validates against the OpenAPI document.
    for path, query in [
        ("/api/v1/queues", ""),
        ("/api/v1/leaderboard", "?period=rolling"),
        ("/api/v1/leaderboard", "?period=day"),
        ("/api/v1/leaderboard", "?period=month&limit=1"),
        ("/api/v1/live", ""),
        ("/api/v1/alerts", ""),
        ("/api/v1/scorecard", "?period=day"),
        ("/api/v1/scorecard", "?period=month"),
    ]:
        body = worker.get_json(path + query)
        jsonschema.validate(body, response_schema(path), cls=jsonschema.Draft202012Validator)
    queues = worker.get_json("/api/v1/queues")
    hot_row = next(q for q in queues["queues"] if q["queue"] == "hot")
    assert hot_row["periods"]["rolling"]["kpis"]["car"] == 0.55
    assert hot_row["status"]["rolling"]["car"] == "red"
    assert queues["period_keys"] == {"rolling": "rolling", "day": "day:2026-01-15", "month": "month:2026-01"}
    board = worker.get_json("/api/v1/leaderboard?period=day")
    assert [o["operator_id"] for o in board["operators"]][:1] and board["operators"][0]["rank"] == 1
    alerts = worker.get_json("/api/v1/alerts")["alerts"]
    assert {(a["kpi"], a["queue"]) for a in alerts} >= {("car", "hot")}
    assert worker.get_json("/api/v1/openapi.json") == openapi_document()
    with pytest.raises(urllib.error.HTTPError) as bad:
        worker.get_json("/api/v1/leaderboard?period=week")
    assert bad.value.code == 400

    # The event stream relays kpi:updates (publish one message by hand and read it back).
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{worker.base_url}/api/v1/events", timeout=10)
    assert refused.value.code == 401
    events = urllib.request.Request(
        f"{worker.base_url}/api/v1/events", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    with urllib.request.urlopen(events, timeout=10) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        lines = [stream.readline().decode() for _ in range(5)]
        assert "event: fresh\n" in lines
        r.publish("kpi:updates", json.dumps({"key": "kpi:test", "kind": "test", "record": {}}))
        deadline = time.monotonic() + 10
        seen = ""
        while "kpi:test" not in seen and time.monotonic() < deadline:
            seen = stream.readline().decode()
        assert '"kpi:test"' in seen

    shot = os.environ.get("KPISTREAM_WALLBOARD_SCREENSHOT")
    if shot:
        browser.save_screenshot(shot)
