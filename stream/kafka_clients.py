"""Every Kafka client kpistream makes, built from Settings: the one place that knows the security settings.

The `kafka_*` settings (docs/security.md, "Kafka") become an `ssl.SSLContext` and aiokafka's
keyword arguments here, and the Faust app's `broker_credentials` (Faust hands them to its
producer, its consumer and the client it creates topics with). Rule: no module builds an aiokafka
producer, consumer or admin client itself; it asks this one, so a secured cluster is secured for
every client or for none.

A client is built for a `KafkaTarget`: Settings, or a bare bootstrap (`kafka://h:p` or `h:p,h2:p`)
which means PLAINTEXT (the local dev and test brokers).

`check_connection` opens one connection the way every client will and turns the reason it
fails into one line an operator can act on (a wrong password, an untrusted certificate, a
listener of another protocol) within seconds; aiokafka itself only logs the cause and says
"Unable to bootstrap".
"""

from __future__ import annotations

import asyncio
import os
import ssl
from typing import TYPE_CHECKING, Any

from stream.errors import ConfigError, ServiceError

if TYPE_CHECKING:
    from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient

    from stream.config import Settings

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
TLS_PROTOCOLS = ("SSL", "SASL_SSL")
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")


class KafkaAccessError(ServiceError):
    """Kafka cannot be used with these settings: unreachable, refused login, untrusted certificate."""


def bootstrap_of(target: Settings | str) -> str:
    """aiokafka's `h:p,h2:p2` of Settings or of a bare `kafka://h:p;h2:p2` / `h:p,h2:p2`."""
    broker = target if isinstance(target, str) else target.broker
    return broker.split("://", 1)[-1].replace(";", ",")


# ----------------------------------------------------------------------------- validation


def validate_kafka_security(s: Settings) -> None:
    """Refuse a half-configured security setup once, at start-up, naming the setting to fix."""
    protocol = s.kafka_security_protocol
    if protocol not in SECURITY_PROTOCOLS:
        raise ConfigError("kafka_security_protocol", f"expected one of {', '.join(SECURITY_PROTOCOLS)}")
    if protocol in SASL_PROTOCOLS:
        if s.kafka_sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError("kafka_sasl_mechanism", f"expected one of {', '.join(SASL_MECHANISMS)}")
        if not s.kafka_sasl_username:
            raise ConfigError("kafka_sasl_username", f"required with {protocol}")
        if not s.kafka_sasl_password:
            raise ConfigError("kafka_sasl_password", f"required with {protocol}")
    elif s.kafka_sasl_username or s.kafka_sasl_password:
        # A login set but not used would silently connect without it.
        raise ConfigError(
            "kafka_security_protocol", f"SASL user/password are set but the protocol is {protocol}"
        )
    tls_files = ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
    if protocol not in TLS_PROTOCOLS:
        for name in tls_files:
            if getattr(s, name):
                raise ConfigError(name, f"set, but the protocol {protocol} does not use TLS")
        return
    for name in tls_files:
        path = getattr(s, name)
        if path and not os.access(path, os.R_OK):
            raise ConfigError(name, f"cannot read {path}")
    if s.kafka_ssl_keyfile and not s.kafka_ssl_certfile:
        raise ConfigError("kafka_ssl_certfile", "required with kafka_ssl_keyfile (the client certificate)")
    ssl_context(s)  # the files are PEM and the key opens with its password


# ----------------------------------------------------------------------------- options


def ssl_context(s: Settings) -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL (None otherwise): verify the broker, optionally mTLS.

    Without a CA file the system's CAs are used (managed services have publicly signed brokers).
    """
    if s.kafka_security_protocol not in TLS_PROTOCOLS:
        return None
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=s.kafka_ssl_cafile or None)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError("kafka_ssl_cafile", f"not a PEM CA file: {type(exc).__name__}: {exc}") from exc
    ctx.check_hostname = s.kafka_ssl_check_hostname
    if s.kafka_ssl_certfile:
        try:
            ctx.load_cert_chain(
                s.kafka_ssl_certfile, s.kafka_ssl_keyfile or None, password=s.kafka_ssl_key_password or None
            )
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                "kafka_ssl_certfile",
                "cannot load the client certificate and key (PEM; kafka_ssl_keyfile, "
                f"kafka_ssl_key_password): {type(exc).__name__}: {exc}",
            ) from exc
    return ctx


def security_kwargs(target: Settings | str) -> dict[str, Any]:
    """aiokafka's security keyword arguments (the same for producers, consumers and admin clients)."""
    if isinstance(target, str) or target.kafka_security_protocol == "PLAINTEXT":
        return {"security_protocol": "PLAINTEXT"}
    s = target
    kw: dict[str, Any] = {"security_protocol": s.kafka_security_protocol}
    ctx = ssl_context(s)
    if ctx is not None:
        kw["ssl_context"] = ctx
    if s.kafka_security_protocol in SASL_PROTOCOLS:
        kw["sasl_mechanism"] = s.kafka_sasl_mechanism
        kw["sasl_plain_username"] = s.kafka_sasl_username
        kw["sasl_plain_password"] = s.kafka_sasl_password
    return kw


def client_kwargs(target: Settings | str, **extra: Any) -> dict[str, Any]:
    """bootstrap_servers and security for any aiokafka client, plus the caller's own options."""
    return {"bootstrap_servers": bootstrap_of(target), **security_kwargs(target), **extra}


def producer(target: Settings | str, **extra: Any) -> AIOKafkaProducer:
    """An unstarted aiokafka producer of `target` (`extra`: acks, linger_ms, ...)."""
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(**client_kwargs(target, **extra))


def consumer(target: Settings | str, *topics: str, **extra: Any) -> AIOKafkaConsumer:
    """An unstarted aiokafka consumer of `target`, subscribed to `topics` if any."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(*topics, **client_kwargs(target, **extra))


def admin(target: Settings | str, **extra: Any) -> AIOKafkaAdminClient:
    """An unstarted aiokafka admin client of `target` (topic creation, cluster and group checks)."""
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(**client_kwargs(target, **extra))


def client(target: Settings | str, **extra: Any) -> AIOKafkaClient:
    """A bare aiokafka client of `target` (metadata probes)."""
    from aiokafka import AIOKafkaClient

    return AIOKafkaClient(**client_kwargs(target, **extra))


def faust_credentials(s: Settings) -> Any:
    """The Faust app's `broker_credentials` (None for PLAINTEXT).

    Faust 0.15 turns them into the same aiokafka arguments as `security_kwargs` for its
    producer, its consumer, and the producer's client that creates topics
    (faust.transport.drivers.aiokafka.credentials_to_aiokafka_auth; checked by
    agents/faust_compat.py and tests/unit/test_kafka_clients.py).
    """
    protocol = s.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    import faust

    ctx = ssl_context(s)
    if protocol == "SSL":
        return faust.SSLCredentials(ctx)
    return faust.SASLCredentials(
        username=s.kafka_sasl_username,
        password=s.kafka_sasl_password,
        ssl_context=ctx,
        mechanism=s.kafka_sasl_mechanism,
    )


def describe(target: Settings | str) -> str:
    """The bootstrap and how clients authenticate, for messages (never the password)."""
    where = bootstrap_of(target)
    if isinstance(target, str) or target.kafka_security_protocol == "PLAINTEXT":
        return f"{where} (PLAINTEXT)"
    s = target
    if s.kafka_security_protocol in SASL_PROTOCOLS:
        return f"{where} ({s.kafka_security_protocol}, {s.kafka_sasl_mechanism} as {s.kafka_sasl_username!r})"
    return f"{where} ({s.kafka_security_protocol})"


# ----------------------------------------------------------------------------- first contact


async def check_connection(target: Settings | str, timeout_s: float = 10.0) -> None:
    """Connect (TLS, SASL login) to a bootstrap server as every client will; KafkaAccessError if none works.

    The error is one line that names the cause and the setting to change. Each server is tried
    in turn; the first one that accepts ends the check.
    """
    from aiokafka.conn import create_conn

    kw = security_kwargs(target)
    servers = [hp.strip() for hp in bootstrap_of(target).split(",") if hp.strip()]
    reasons: list[str] = []
    for hostport in servers:
        host, _, port = hostport.rpartition(":")
        try:
            conn = await asyncio.wait_for(
                create_conn(host, int(port), request_timeout_ms=int(timeout_s * 1000), **kw), timeout_s
            )
        except Exception as exc:
            reason = _reason(target, exc, timeout_s)
            reasons.append(reason if len(servers) == 1 else f"{hostport}: {reason}")
            continue
        conn.close()
        return
    raise KafkaAccessError(f"cannot use Kafka at {describe(target)}: {'; '.join(reasons)}")


def check_connection_sync(target: Settings | str, timeout_s: float = 10.0) -> None:
    """`check_connection` for the commands (no event loop of their own yet)."""
    asyncio.run(check_connection(target, timeout_s))


def _reason(target: Settings | str, exc: BaseException, timeout_s: float) -> str:
    """What went wrong on one connection, in words, with the setting that fixes it."""
    from aiokafka import errors

    protocol = "PLAINTEXT" if isinstance(target, str) else target.kafka_security_protocol
    if isinstance(exc, errors.SaslAuthenticationFailed):
        return "login refused (wrong user name or password: kafka_sasl_username, kafka_sasl_password)"
    if isinstance(exc, errors.UnsupportedSaslMechanismError):
        return f"the broker does not offer this SASL mechanism (kafka_sasl_mechanism): {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or str(exc)
        if "hostname" in detail.lower() or "ip address mismatch" in detail.lower():
            return f"the broker's TLS certificate does not name this host ({detail})"
        return f"the broker's TLS certificate is not trusted ({detail}): set kafka_ssl_cafile to its CA"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or exc
        return f"TLS handshake failed ({reason}): is this a TLS listener; does it want a client certificate?"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return f"no answer within {timeout_s:g} s: is this a {protocol} listener?"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(exc, (ConnectionResetError, errors.KafkaConnectionError)):
        return f"the broker closed the connection: is this a {protocol} listener? ({exc})"
    return f"{type(exc).__name__}: {exc}"
