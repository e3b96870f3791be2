"""Web auth: the rules by method and path, the users file, and the middleware in front of real routes."""

from __future__ import annotations

import asyncio
import base64
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agents.web_auth import (
    ADMIN,
    COOKIE,
    INGEST,
    PEER,
    VIEWER,
    Credentials,
    PasswordHash,
    WebAuth,
    auth_middleware,
    canonical_url,
    hash_password,
    is_loopback,
    new_token,
    parse_users,
    peer_request_options,
    required_roles,
    server_tls_context,
    startup_warnings,
    token_digest,
    web_auth_from_settings,
    web_server_options,
)
from stream.config import Settings, load_settings
from stream.errors import ConfigError

FAST = 10_000  # PBKDF2 iterations for tests (the default is 600,000)


# ----------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("method", "path", "roles"),
    [
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("GET", "/metrics", None),
        ("GET", "/wallboard", {VIEWER, ADMIN}),
        ("GET", "/wallboard/wallboard.js", {VIEWER, ADMIN}),
        ("GET", "/api/v1/queues", {VIEWER, ADMIN}),
        ("GET", "/api/v1/events", {VIEWER, ADMIN}),  # the event stream
        ("HEAD", "/api/v1/periods", {VIEWER, ADMIN}),
        ("POST", "/api/v1/events", {INGEST, ADMIN}),  # HTTP ingest
        ("GET", "/api/v1/local/aggregates", {PEER, ADMIN}),
        ("POST", "/api/v1/local/aggregates", {ADMIN}),
        # routes other modules add later fall under the defaults
        ("GET", "/api/v1/months/2026-01", {VIEWER, ADMIN}),
        ("POST", "/api/v1/months/2026-01/close", {ADMIN}),
        ("PUT", "/api/v1/strategy", {ADMIN}),
        ("DELETE", "/anything", {ADMIN}),
        # only the exact open paths are open
        ("GET", "/healthz/", {VIEWER, ADMIN}),
        ("GET", "/readyz/../api/v1/periods", {VIEWER, ADMIN}),
        ("POST", "/healthz", None),
        ("GET", "/", {VIEWER, ADMIN}),
    ],
)
def test_required_roles(method: str, path: str, roles: set[str] | None) -> None:
    assert required_roles(method, path) == (None if roles is None else frozenset(roles))


def test_metrics_can_be_protected() -> None:
    assert required_roles("GET", "/metrics", metrics_open=False) == {VIEWER, ADMIN}


# ----------------------------------------------------------------------------- secrets and the file


def test_password_hash_round_trip() -> None:
    stored = PasswordHash.parse(hash_password("s3cret", iterations=FAST))
    assert stored.verify("s3cret") and not stored.verify("s3cret ") and not stored.verify("")
    assert hash_password("x", iterations=FAST) != hash_password("x", iterations=FAST)  # salted


@pytest.mark.parametrize("text", ["plain", "md5$1$a$b", "pbkdf2_sha256$100$YQ==$YQ==", "pbkdf2_sha256$x$a$b"])
def test_bad_password_hashes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="password_hash"):
        PasswordHash.parse(text)


def users_toml(token: str) -> str:
    return f"""
[[users]]
name = "floor-tv"
role = "viewer"
token_sha256 = "{token_digest(token)}"

[[users]]
name = "alice"
role = "admin"
password_hash = "{hash_password("alice-pw", iterations=FAST)}"
"""


def test_users_file_gives_tokens_and_passwords() -> None:
    users = parse_users(users_toml("tv-token"))
    assert [(u.name, u.role) for u in users] == [("floor-tv", VIEWER), ("alice", ADMIN)]
    creds = Credentials(users)
    assert creds.by_token("tv-token") is not None
    assert creds.by_token("tv-token").role == VIEWER  # type: ignore[union-attr]
    assert creds.by_token("tv-token ") is None and creds.by_token("") is None
    assert asyncio.run(creds.by_password("alice", "alice-pw")).role == ADMIN  # type: ignore[union-attr]
    assert asyncio.run(creds.by_password("alice", "wrong")) is None
    assert asyncio.run(creds.by_password("floor-tv", "tv-token")) is None  # a token is no password


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[users]]\nname = "a"\nrole = "root"\ntoken_sha256 = "' + "0" * 64 + '"', "role must be one of"),
        ('[[users]]\nname = "a"\nrole = "viewer"', "needs token_sha256 or password_hash"),
        ('[[users]]\nname = "a"\nrole = "viewer"\ntoken_sha256 = "abc"', "64 hex digits"),
        ('[[users]]\nname = "a"\nrole = "viewer"\npassword = "plain"', "unknown key"),
        ('[[users]]\nname = "a:b"\nrole = "viewer"\ntoken_sha256 = "' + "0" * 64 + '"', "without ':'"),
        ('[[users]]\nname = "a"\nrole = "peer"\ntoken_sha256 = "' + "0" * 64 + '"', "role must be one of"),
        ("users = 3\nextra = 1", "unknown key"),
        ("[[users]\n", "users file"),
    ],
)
def test_a_wrong_users_file_is_a_config_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_users(text)


def test_duplicate_users_are_refused() -> None:
    entry = '[[users]]\nname = "a"\nrole = "viewer"\ntoken_sha256 = "' + "0" * 64 + '"\n'
    with pytest.raises(ConfigError, match="twice"):
        parse_users(entry + entry)


def test_settings_turn_auth_on_and_stay_secret(tmp_path: Path) -> None:
    assert not web_auth_from_settings(Settings()).enabled  # dev default: off
    assert not web_auth_from_settings(Settings(web_peer_token="p")).enabled  # a peer token alone
    s = load_settings(env={"KPISTREAM_WEB_VIEWER_TOKEN": "v-tok", "KPISTREAM_WEB_PEER_TOKEN": "p-tok"})
    auth = web_auth_from_settings(s)
    assert auth.enabled
    assert auth.credentials.by_token("v-tok").role == VIEWER  # type: ignore[union-attr]
    assert auth.credentials.by_token("p-tok").role == PEER  # type: ignore[union-attr]
    shown = repr(s)
    assert "v-tok" not in shown and "p-tok" not in shown
    users = tmp_path / "users.toml"
    users.write_text(users_toml("t"), encoding="utf-8")
    assert web_auth_from_settings(Settings(web_auth_file=str(users))).enabled
    with pytest.raises(ConfigError, match="cannot read"):
        web_auth_from_settings(Settings(web_auth_file=str(tmp_path / "missing.toml")))


def test_startup_warns_about_an_open_port_off_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("wallboard.example")
    assert startup_warnings(Settings(), web_auth_from_settings(Settings())) == []
    open_lan = Settings(web_host="0.0.0.0")
    (warning,) = startup_warnings(open_lan, web_auth_from_settings(open_lan))
    assert "no authentication" in warning
    on = Settings(web_host="127.0.0.1", web_viewer_token="v")
    assert any("web_peer_token" in w for w in startup_warnings(on, web_auth_from_settings(on)))


def test_new_tokens_are_random_and_url_safe() -> None:
    a, b = new_token(), new_token()
    assert a != b and len(a) >= 43 and all(c.isalnum() or c in "-_" for c in a)


# ----------------------------------------------------------------------------- the middleware


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"path": request.path, "method": request.method})


def build_app(auth: WebAuth) -> web.Application:
    app = web.Application(middlewares=[auth_middleware(auth)])
    for path in (
        "/healthz",
        "/readyz",
        "/metrics",
        "/wallboard",
        "/api/v1/queues",
        "/api/v1/local/aggregates",
    ):
        app.router.add_get(path, ok)
    app.router.add_get("/api/v1/events", ok)
    app.router.add_post("/api/v1/events", ok)
    app.router.add_post("/api/v1/months/close", ok)  # a route "another module" adds
    return app


TOKENS = {VIEWER: "view-tok", INGEST: "ingest-tok", ADMIN: "admin-tok", PEER: "peer-tok"}


def on(metrics_open: bool = True) -> WebAuth:
    users = parse_users(users_toml("tv-token"))
    return WebAuth(Credentials(users, TOKENS), enabled=True, metrics_open=metrics_open)


def serve(auth: WebAuth, check: Callable[[TestClient[Any, Any]], Awaitable[None]]) -> None:
    async def run() -> None:
        async with TestClient(TestServer(build_app(auth))) as client:
            await check(client)

    asyncio.run(run())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_off_lets_everything_through() -> None:
    async def check(c: TestClient[Any, Any]) -> None:
        for path in ("/api/v1/queues", "/wallboard", "/api/v1/local/aggregates"):
            assert (await c.get(path)).status == 200
        assert (await c.post("/api/v1/months/close")).status == 200

    serve(WebAuth(Credentials(), enabled=False), check)


def test_refusals_and_roles() -> None:
    async def check(c: TestClient[Any, Any]) -> None:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await c.get(path)).status == 200, path
        r = await c.get("/api/v1/queues")
        assert r.status == 401
        assert r.headers["WWW-Authenticate"].startswith("Basic")  # a browser asks for a password
        assert (await r.json())["error"] == "unauthorized"
        assert (await c.get("/api/v1/queues", headers=bearer("nope"))).status == 401
        assert (await c.get("/api/v1/queues", headers={"Authorization": "Basic !!!"})).status == 401
        assert (await c.get("/api/v1/queues", headers=bearer(TOKENS[VIEWER]))).status == 200
        assert (await c.get("/api/v1/queues", headers=bearer("tv-token"))).status == 200
        assert (await c.get("/api/v1/queues", headers=basic("alice", "alice-pw"))).status == 200
        assert (await c.get("/api/v1/queues", headers=basic("alice", "nope"))).status == 401
        # a viewer cannot change anything, nor post events, nor read a worker's partitions
        r = await c.post("/api/v1/months/close", headers=bearer(TOKENS[VIEWER]))
        assert r.status == 403 and "admin" in (await r.json())["detail"]
        assert (await c.post("/api/v1/events", headers=bearer(TOKENS[VIEWER]))).status == 403
        assert (await c.get("/api/v1/local/aggregates", headers=bearer(TOKENS[VIEWER]))).status == 403
        # ingest posts events and does nothing else
        assert (await c.post("/api/v1/events", headers=bearer(TOKENS[INGEST]))).status == 200
        assert (await c.get("/api/v1/queues", headers=bearer(TOKENS[INGEST]))).status == 403
        assert (await c.post("/api/v1/months/close", headers=bearer(TOKENS[INGEST]))).status == 403
        # the peer token reads the partitions and nothing else
        assert (await c.get("/api/v1/local/aggregates", headers=bearer(TOKENS[PEER]))).status == 200
        assert (await c.get("/api/v1/queues", headers=bearer(TOKENS[PEER]))).status == 403
        # admin does everything
        for method, path in [
            ("POST", "/api/v1/months/close"),
            ("POST", "/api/v1/events"),
            ("GET", "/api/v1/local/aggregates"),
        ]:
            assert (await c.request(method, path, headers=bearer(TOKENS[ADMIN]))).status == 200
        assert (await c.post("/api/v1/events", headers=basic("alice", "alice-pw"))).status == 200

    serve(on(), check)


def test_protected_metrics() -> None:
    async def check(c: TestClient[Any, Any]) -> None:
        assert (await c.get("/metrics")).status == 401
        assert (await c.get("/metrics", headers=bearer(TOKENS[VIEWER]))).status == 200
        assert (await c.get("/healthz")).status == 200

    serve(on(metrics_open=False), check)


def test_wallboard_token_url_becomes_a_cookie_for_reads_only() -> None:
    async def check(c: TestClient[Any, Any]) -> None:
        assert (await c.get("/wallboard?token=wrong", allow_redirects=False)).status == 401
        r = await c.get(f"/wallboard?token={TOKENS[INGEST]}", allow_redirects=False)
        assert r.status == 403  # the ingest token is no wallboard token
        r = await c.get("/wallboard?token=tv-token", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/wallboard"  # the URL loses the token
        morsel = r.cookies[COOKIE]
        assert morsel.value == "tv-token" and morsel["httponly"] and morsel["samesite"] == "Strict"
        # the session's cookie jar now carries it: the page, its API calls and its event stream work
        assert (await c.get("/wallboard")).status == 200
        assert (await c.get("/api/v1/queues")).status == 200
        assert (await c.get("/api/v1/events")).status == 200
        # a cookie never authorises a change (a page elsewhere could make the browser send it)
        admin_cookie = {"Cookie": f"{COOKIE}={TOKENS[ADMIN]}"}
        c.session.cookie_jar.clear()
        assert (await c.get("/api/v1/queues", headers=admin_cookie)).status == 200
        assert (await c.post("/api/v1/months/close", headers=admin_cookie)).status == 401
        # a wrong Authorization header is not rescued by a good cookie
        both = {**admin_cookie, **bearer("wrong")}
        assert (await c.get("/api/v1/queues", headers=both)).status == 401

    serve(on(), check)


def test_tokens_only_challenge_with_bearer() -> None:
    async def check(c: TestClient[Any, Any]) -> None:
        r = await c.get("/api/v1/queues")
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")

    serve(WebAuth(Credentials([], {VIEWER: "v"}), enabled=True), check)


# ----------------------------------------------------------------------------- TLS


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "web.crt", tmp_path / "web.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_serves_https_and_peers_check_the_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    assert web_server_options(Settings()) == {}
    settings = Settings(
        web_host="127.0.0.1",
        web_tls_certfile=str(cert),
        web_tls_keyfile=str(key),
        web_tls_cafile=str(cert),
        web_peer_token="peer-tok",
        web_viewer_token="v",
    )
    options = web_server_options(settings)
    assert isinstance(options["web_ssl_context"], ssl.SSLContext)
    assert canonical_url(settings) == f"https://127.0.0.1:{settings.web_port}"
    assert canonical_url(Settings()) is None  # Faust's default: http://WEB_HOST:WEB_PORT
    advertised = replace(settings, web_advertised_url="https://kpistream-0.kpistream:6066")
    assert canonical_url(advertised) == "https://kpistream-0.kpistream:6066"
    peer = peer_request_options(settings)
    assert peer["headers"] == bearer("peer-tok")

    async def run() -> None:
        app = build_app(web_auth_from_settings(settings))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls_context(settings))
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with aiohttp.ClientSession() as s:
                url = f"https://127.0.0.1:{port}/api/v1/local/aggregates"
                async with s.get(url, **peer) as r:
                    assert r.status == 200
                with pytest.raises(aiohttp.ClientConnectorCertificateError):
                    await s.get(url, headers=peer["headers"])  # the system CAs do not know this one
        finally:
            await runner.cleanup()

    asyncio.run(run())


def test_tls_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="web_tls_certfile"):
        Settings(web_tls_keyfile="k.pem")
    with pytest.raises(ConfigError, match="web_max_body_bytes"):
        Settings(web_max_body_bytes=1000)  # below one event (max_message_bytes)
    with pytest.raises(ConfigError, match="web certificate"):
        server_tls_context(Settings(web_tls_certfile=str(tmp_path / "none.pem")))


# ----------------------------------------------------------------------------- kpistream web-user


def test_web_user_entries_load(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from stream.cli import main

    assert main(["web-user", "floor-tv"]) == 0
    out, err = capsys.readouterr()
    token = err.rsplit(": ", 1)[1].strip()
    (user,) = parse_users(out)
    assert (user.name, user.role) == ("floor-tv", VIEWER) and token not in out
    assert Credentials([user]).by_token(token) is not None

    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert main(["web-user", "alice", "--role", "admin", "--password"]) == 0
    (alice,) = parse_users(capsys.readouterr().out)
    assert alice.role == ADMIN and alice.password is not None and alice.password.verify("correct horse")


# ----------------------------------------------------------------------------- the worker's own app


def test_every_route_of_the_worker_app_is_behind_the_middleware(tmp_path: Path) -> None:
    """The real worker app (not started): its routes, whoever added them, answer by the rules."""
    from stream.commands.worker import build_worker_app

    settings = load_settings(
        env={
            "KPISTREAM_DATA_DIR": str(tmp_path),
            "KPISTREAM_WEB_VIEWER_TOKEN": TOKENS[VIEWER],
            "KPISTREAM_WEB_INGEST_TOKEN": TOKENS[INGEST],
        }
    )
    web_app = build_worker_app(settings).app.web.web_app
    routes = {(r.method, r.resource.canonical) for r in web_app.router.routes() if r.resource is not None}
    assert ("POST", "/api/v1/events") in routes and ("GET", "/api/v1/events") in routes
    assert any(method == "POST" and path.startswith("/api/v1/payouts") for method, path in routes)

    async def run() -> None:
        async with TestClient(TestServer(web_app)) as c:
            for method, path in sorted(routes):
                if "{" in path or method == "HEAD":
                    continue
                want = required_roles(method, path)
                r = await c.request(method, path)
                assert (r.status == 401) == (want is not None), (method, path, r.status)
                if want is not None and VIEWER not in want:
                    r = await c.request(method, path, headers=bearer(TOKENS[VIEWER]))
                    assert r.status == 403, (method, path, r.status)
            r = await c.post(
                "/api/v1/events", headers={**bearer(TOKENS[INGEST]), "Content-Type": "text/plain"}
            )
            assert r.status == 415  # past the middleware, in the ingest handler

    asyncio.run(run())
