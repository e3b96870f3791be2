"""Who may call the worker's web port: one aiohttp middleware that decides by method and path.

Routes are never protected one by one: `required_roles` maps every request to the roles that may
make it, so a route added anywhere (by any module) is protected the moment it exists. Rules:

- `/healthz` and `/readyz` are open (probes carry no credentials); `/metrics` is open unless
  `web_auth_metrics` is set (then it needs `viewer`). Only these exact paths are open.
- `POST /api/v1/events` (HTTP ingest) needs `ingest` or `admin`.
- `/api/v1/local/aggregates` (a worker's partitions, read by its peers) needs `peer` or `admin`.
- Any other GET, HEAD or OPTIONS needs `viewer` or `admin`; any other method (POST, PUT, DELETE,
  ...: a change of state) needs `admin`. New routes fall under these two by default.

Credentials: `Authorization: Bearer TOKEN`, `Authorization: Basic` (a user of the users file), or
the `kpistream_token` cookie, which `GET /wallboard?token=TOKEN` sets (a wallboard TV opens that
one URL; its page's API calls and event stream then carry the cookie). A cookie counts for
GET/HEAD/OPTIONS only, so a page elsewhere cannot make a logged-in browser change anything.
Secrets are kept as hashes and compared with `hmac.compare_digest` (docs/security.md).

Auth is on when a users file or a viewer/admin/ingest token is configured, off otherwise (dev).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import secrets
import ssl
import tomllib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web as aioweb

from stream.config import Settings
from stream.errors import ConfigError

log = logging.getLogger(__name__)

VIEWER = "viewer"
INGEST = "ingest"
ADMIN = "admin"
PEER = "peer"
#: Roles a user of the users file may have (`peer` comes from `web_peer_token` only).
USER_ROLES: tuple[str, ...] = (VIEWER, INGEST, ADMIN)

READ = frozenset({VIEWER, ADMIN})
WRITE = frozenset({ADMIN})
INGEST_ROLES = frozenset({INGEST, ADMIN})
PEER_ROLES = frozenset({PEER, ADMIN})

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
METRICS_PATH = "/metrics"
INGEST_PATH = "/api/v1/events"
PEER_PATH = "/api/v1/local/aggregates"  # agents/cluster_view.py LOCAL_PATH
WALLBOARD_PATH = "/wallboard"

COOKIE = "kpistream_token"
COOKIE_MAX_AGE_S = 30 * 86400
REALM = "kpistream"
PBKDF2 = "pbkdf2_sha256"
PBKDF2_ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
PASSWORD_CACHE_SIZE = 256


# ----------------------------------------------------------------------------- rules


def required_roles(method: str, path: str, *, metrics_open: bool = True) -> frozenset[str] | None:
    """The roles that may make this request; None when it is open to anyone."""
    if path in OPEN_PATHS or (path == METRICS_PATH and metrics_open):
        return None
    safe = method.upper() in SAFE_METHODS
    if path == PEER_PATH:
        return PEER_ROLES if safe else WRITE
    if path == INGEST_PATH and method.upper() == "POST":
        return INGEST_ROLES
    return READ if safe else WRITE


# ----------------------------------------------------------------------------- secrets


def token_digest(token: str) -> str:
    """The hex sha256 of a token: what the users file stores (tokens are random, so no salt)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A random token of 256 bits, URL-safe (it may go into a wallboard URL)."""
    return secrets.token_urlsafe(32)


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """`pbkdf2_sha256$ITERATIONS$SALT$HASH` (base64), the users file's `password_hash`."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    dk = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{PBKDF2}${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A parsed `password_hash`."""

    iterations: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        try:
            scheme, iterations, salt, digest = text.split("$")
            if scheme != PBKDF2:
                raise ValueError(f"scheme must be {PBKDF2}")
            n = int(iterations)
            if n < 10_000:
                raise ValueError("at least 10000 iterations")
            return cls(n, base64.b64decode(salt, validate=True), base64.b64decode(digest, validate=True))
        except (ValueError, binascii.Error) as exc:
            raise ValueError(f"password_hash must be {PBKDF2}$ITERATIONS$SALT$HASH ({exc})") from None

    def verify(self, password: str) -> bool:
        """Constant-time check of a password (slow on purpose: run it off the event loop)."""
        dk = hashlib.pbkdf2_hmac("sha256", password.encode(), self.salt, self.iterations)
        return hmac.compare_digest(dk, self.digest)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: a user name (or `token:ROLE` for a token from a setting) and its role."""

    name: str
    role: str


@dataclass(frozen=True, slots=True)
class User:
    """One entry of the users file: a token hash, a password hash, or both."""

    name: str
    role: str
    token_sha256: bytes | None = None
    password: PasswordHash | None = None


def parse_users(text: str, source: str = "users file") -> list[User]:
    """The `[[users]]` tables of a TOML users file (docs/security.md); ConfigError naming the entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("web_auth_file", f"{source}: {exc}") from exc
    unknown = set(data) - {"users"}
    if unknown:
        raise ConfigError("web_auth_file", f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
    users: list[User] = []
    names: set[str] = set()
    for i, entry in enumerate(data.get("users", [])):
        where = f"{source}: users[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError("web_auth_file", f"{where} must be a table")
        extra = set(entry) - {"name", "role", "token_sha256", "password_hash"}
        if extra:
            raise ConfigError("web_auth_file", f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        name, role = entry.get("name"), entry.get("role")
        if not isinstance(name, str) or not name or ":" in name:
            raise ConfigError("web_auth_file", f"{where}: name must be a non-empty string without ':'")
        if name in names:
            raise ConfigError("web_auth_file", f"{where}: user {name!r} appears twice")
        names.add(name)
        if role not in USER_ROLES:
            raise ConfigError(
                "web_auth_file", f"{where} ({name}): role must be one of {', '.join(USER_ROLES)}"
            )
        token, pw = entry.get("token_sha256"), entry.get("password_hash")
        if token is None and pw is None:
            raise ConfigError("web_auth_file", f"{where} ({name}): needs token_sha256 or password_hash")
        digest: bytes | None = None
        if token is not None:
            try:
                digest = bytes.fromhex(str(token))
            except ValueError:
                digest = b""
            if len(digest) != 32:
                raise ConfigError("web_auth_file", f"{where} ({name}): token_sha256 must be 64 hex digits")
        password: PasswordHash | None = None
        if pw is not None:
            try:
                password = PasswordHash.parse(str(pw))
            except ValueError as exc:
                raise ConfigError("web_auth_file", f"{where} ({name}): {exc}") from None
        users.append(User(name, str(role), digest, password))
    return users


class Credentials:
    """Every token hash and password hash the worker accepts, with the role each gives."""

    def __init__(self, users: Iterable[User] = (), tokens: Mapping[str, str] | None = None) -> None:
        self.users = list(users)
        self._tokens: list[tuple[bytes, Principal]] = [
            (u.token_sha256, Principal(u.name, u.role)) for u in self.users if u.token_sha256
        ]
        for role, token in (tokens or {}).items():
            if token:
                self._tokens.append(
                    (hashlib.sha256(token.encode()).digest(), Principal(f"token:{role}", role))
                )
        self._passwords = {u.name: (u.password, Principal(u.name, u.role)) for u in self.users if u.password}
        rounds = max((u.password.iterations for u in self.users if u.password), default=PBKDF2_ITERATIONS)
        self._absent = PasswordHash(rounds, bytes(16), bytes(32))
        # Verified (user, password) pairs by a keyed hash, so a browser's every request does not cost
        # a PBKDF2 run; the key is this process's own, so the cache is worthless outside it.
        self._cache_key = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, Principal] = OrderedDict()

    @property
    def has_passwords(self) -> bool:
        return bool(self._passwords)

    def by_token(self, token: str) -> Principal | None:
        """The principal of a token; every stored hash is compared, in constant time each."""
        presented = hashlib.sha256(token.encode()).digest()
        found: Principal | None = None
        for digest, principal in self._tokens:
            if hmac.compare_digest(presented, digest) and found is None:
                found = principal
        return found

    async def by_password(self, name: str, password: str) -> Principal | None:
        """The principal of a user and password (PBKDF2 in a thread; verified pairs cached)."""
        entry = self._passwords.get(name)
        if entry is None:
            if self._passwords:  # as slow as a wrong password: the time does not tell which names exist
                await asyncio.to_thread(self._absent.verify, password)
            return None
        stored, principal = entry
        assert stored is not None
        mark = hmac.new(self._cache_key, f"{name}\0{password}".encode(), hashlib.sha256).digest()
        if mark in self._verified:
            self._verified.move_to_end(mark)
            return principal
        if not await asyncio.to_thread(stored.verify, password):
            return None
        self._verified[mark] = principal
        while len(self._verified) > PASSWORD_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal


@dataclass(frozen=True, slots=True)
class WebAuth:
    """The web port's auth configuration, built from settings by `web_auth_from_settings`."""

    credentials: Credentials
    enabled: bool
    metrics_open: bool = True
    secure_cookie: bool = False

    async def authenticate(self, request: aioweb.Request) -> Principal | None:
        """The principal of a request's credentials; None when it has none or they are wrong."""
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return self.credentials.by_token(value)
        if scheme.lower() == "basic" and value:
            try:
                name, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (ValueError, binascii.Error):
                return None
            return await self.credentials.by_password(name, password) if sep else None
        if header:
            return None
        cookie = request.cookies.get(COOKIE)
        if cookie and request.method.upper() in SAFE_METHODS:
            return self.credentials.by_token(cookie)
        return None

    def challenge(self) -> dict[str, str]:
        """`WWW-Authenticate` for a 401: Basic when users have passwords (the browser asks), else Bearer."""
        if self.credentials.has_passwords:
            return {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'}
        return {"WWW-Authenticate": f'Bearer realm="{REALM}"'}


def refused(
    status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
) -> aioweb.Response:
    return aioweb.json_response({"error": error, "detail": detail}, status=status, headers=headers)


Handler = Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]]


def auth_middleware(auth: WebAuth) -> Callable[[aioweb.Request, Handler], Awaitable[aioweb.StreamResponse]]:
    """The aiohttp middleware enforcing `required_roles` for every request (a no-op when auth is off)."""

    @aioweb.middleware
    async def kpistream_auth(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
        if not auth.enabled:
            return await handler(request)
        roles = required_roles(request.method, request.path, metrics_open=auth.metrics_open)
        if roles is None:
            return await handler(request)
        if request.path == WALLBOARD_PATH and "token" in request.query:
            return wallboard_login(auth, request)
        principal = await auth.authenticate(request)
        if principal is None:
            return refused(401, "unauthorized", "credentials required", auth.challenge())
        if principal.role not in roles:
            return refused(
                403,
                "forbidden",
                f"{request.method} {request.path} needs role {' or '.join(sorted(roles))}; "
                f"{principal.name} has {principal.role}",
            )
        return await handler(request)

    return kpistream_auth


def wallboard_login(auth: WebAuth, request: aioweb.Request) -> aioweb.Response:
    """`/wallboard?token=T`: a valid viewer (or admin) token becomes the cookie, and the URL loses it."""
    principal = auth.credentials.by_token(request.query.get("token", ""))
    if principal is None:
        return refused(401, "unauthorized", "unknown token", auth.challenge())
    if principal.role not in READ:
        return refused(
            403,
            "forbidden",
            f"the wallboard needs role viewer or admin; {principal.name} has {principal.role}",
        )
    response = aioweb.Response(status=303, headers={"Location": WALLBOARD_PATH, "Cache-Control": "no-store"})
    response.set_cookie(
        COOKIE,
        request.query["token"],
        max_age=COOKIE_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=auth.secure_cookie,
    )
    return response


# ----------------------------------------------------------------------------- settings


def web_auth_from_settings(settings: Settings) -> WebAuth:
    """Read the users file and the token settings; ConfigError when the file is missing or wrong."""
    users: list[User] = []
    if settings.web_auth_file:
        path = Path(settings.web_auth_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError("web_auth_file", f"cannot read {path}: {exc.strerror}") from None
        users = parse_users(text, str(path))
    tokens = {
        VIEWER: settings.web_viewer_token,
        INGEST: settings.web_ingest_token,
        ADMIN: settings.web_admin_token,
    }
    enabled = bool(users) or any(tokens.values())
    tokens[PEER] = settings.web_peer_token
    return WebAuth(
        Credentials(users, tokens),
        enabled=enabled,
        metrics_open=not settings.web_auth_metrics,
        secure_cookie=bool(settings.web_tls_certfile),
    )


def is_loopback(host: str) -> bool:
    """The web host accepts connections from this machine only."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def startup_warnings(settings: Settings, auth: WebAuth) -> list[str]:
    """What an operator should hear about at start (logged by `install_web_auth`)."""
    out: list[str] = []
    if not auth.enabled and not is_loopback(settings.web_host):
        out.append(
            f"web port {settings.web_host}:{settings.web_port} is not loopback and has no authentication: "
            "anyone who reaches it reads the wallboard and the API (set web_auth_file or web_*_token, "
            "docs/security.md)"
        )
    if auth.enabled and not settings.web_peer_token:
        out.append(
            "web authentication is on but web_peer_token is not set: with more than one worker, "
            "/api/v1/periods cannot read the other workers' partitions"
        )
    if auth.enabled and not settings.web_tls_certfile and not is_loopback(settings.web_host):
        out.append("web authentication without TLS: tokens and passwords cross the network in clear")
    return out


def install_web_auth(app: Any, settings: Settings) -> WebAuth:
    """Put the auth middleware in front of every route of the Faust app's aiohttp application."""
    auth = web_auth_from_settings(settings)
    app.web.web_app.middlewares.append(auth_middleware(auth))
    for warning in startup_warnings(settings, auth):
        log.warning("%s", warning)
    return auth


# ----------------------------------------------------------------------------- TLS


def server_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The web port's TLS context from `web_tls_certfile`/`web_tls_keyfile` (None: plain HTTP)."""
    if not settings.web_tls_certfile:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(settings.web_tls_certfile, settings.web_tls_keyfile or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("web_tls_certfile", f"cannot load the web certificate and key: {exc}") from None
    return ctx


def peer_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """How a worker checks its peers' certificates: `web_tls_cafile`, else the system's CAs."""
    if not settings.web_tls_certfile:
        return None
    return ssl.create_default_context(cafile=settings.web_tls_cafile or None)


def web_server_options(settings: Settings) -> dict[str, Any]:
    """Faust app options for TLS on the web port: its SSL context (empty without TLS)."""
    ctx = server_tls_context(settings)
    return {} if ctx is None else {"web_ssl_context": ctx}


def canonical_url(settings: Settings) -> str | None:
    """The URL peers call this worker at (`/api/v1/local/aggregates`); None: Faust's default.

    `web_advertised_url` when set (Kubernetes); with TLS otherwise https://WEB_HOST:WEB_PORT, so
    `web_host` must be a name the certificate holds (peers check it).
    """
    if settings.web_advertised_url:
        return settings.web_advertised_url
    if settings.web_tls_certfile:
        return f"https://{settings.web_host}:{settings.web_port}"
    return None


def peer_request_options(settings: Settings) -> dict[str, Any]:
    """aiohttp request options for calls to a peer worker: its token and certificate check."""
    options: dict[str, Any] = {}
    if settings.web_peer_token:
        options["headers"] = {"Authorization": f"Bearer {settings.web_peer_token}"}
    ctx = peer_tls_context(settings)
    if ctx is not None:
        options["ssl"] = ctx
    return options
