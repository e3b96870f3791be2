"""Kafka security settings: validated once, and the same options for every client and for Faust."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from aiokafka import errors

from agents.faust_compat import aiokafka_auth_of
from agents.pipeline import make_app
from stream import kafka_clients
from stream.config import Settings, load_settings
from stream.devenv.tls import Pki, make_pki, openssl_available
from stream.errors import ConfigError

SASL = {
    "KPISTREAM_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    "KPISTREAM_KAFKA_SASL_MECHANISM": "scram-sha-256",
    "KPISTREAM_KAFKA_SASL_USERNAME": "kpi",
    "KPISTREAM_KAFKA_SASL_PASSWORD": "pw-never-shown",
}

needs_openssl = pytest.mark.skipif(not openssl_available(), reason="needs the openssl command line tool")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_plaintext_is_the_default_and_passes_nothing_else() -> None:
    s = load_settings(env={})
    assert s.kafka_security_protocol == "PLAINTEXT" and s.kafka_ssl_check_hostname is True
    assert kafka_clients.security_kwargs(s) == {"security_protocol": "PLAINTEXT"}
    assert kafka_clients.faust_credentials(s) is None
    assert kafka_clients.client_kwargs("kafka://h1:1;h2:2", acks="all") == {
        "bootstrap_servers": "h1:1,h2:2",
        "security_protocol": "PLAINTEXT",
        "acks": "all",
    }


def test_sasl_ssl_options_with_the_system_cas() -> None:
    s = load_settings(env=SASL)
    kw = kafka_clients.security_kwargs(s)
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (kw["sasl_plain_username"], kw["sasl_plain_password"]) == ("kpi", "pw-never-shown")
    ctx = kw["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED


def test_sasl_plaintext_has_no_tls() -> None:
    s = load_settings(env={**SASL, "KPISTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"})
    kw = kafka_clients.security_kwargs(s)
    assert kw["security_protocol"] == "SASL_PLAINTEXT" and "ssl_context" not in kw


def test_the_password_is_never_printed() -> None:
    s = load_settings(env=SASL)
    assert "pw-never-shown" not in repr(s)
    assert s.redacted()["kafka_sasl_password"] == "***"
    assert "pw-never-shown" not in kafka_clients.describe(s)
    assert "pw-never-shown" not in repr(kafka_clients.faust_credentials(s))


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"KPISTREAM_KAFKA_SECURITY_PROTOCOL": "TLS"}, "kafka_security_protocol"),
        ({**SASL, "KPISTREAM_KAFKA_SASL_MECHANISM": "GSSAPI"}, "kafka_sasl_mechanism"),
        ({**SASL, "KPISTREAM_KAFKA_SASL_USERNAME": ""}, "kafka_sasl_username"),
        ({**SASL, "KPISTREAM_KAFKA_SASL_PASSWORD": ""}, "kafka_sasl_password"),
        # a login that would silently not be used
        ({**SASL, "KPISTREAM_KAFKA_SECURITY_PROTOCOL": "SSL"}, "kafka_security_protocol"),
        ({"KPISTREAM_KAFKA_SSL_CAFILE": "/etc/hosts"}, "kafka_ssl_cafile"),  # TLS file without TLS
        ({**SASL, "KPISTREAM_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "kafka_ssl_cafile"),
        ({**SASL, "KPISTREAM_KAFKA_SSL_CAFILE": "/etc/hostname"}, "kafka_ssl_cafile"),  # not PEM
    ],
)
def test_bad_security_settings_are_refused_by_name(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert info.value.setting == setting
    assert "pw-never-shown" not in str(info.value)


@needs_openssl
def test_mutual_tls_loads_the_client_certificate(pki: Pki) -> None:
    s = load_settings(
        env={
            "KPISTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
            "KPISTREAM_KAFKA_SSL_CAFILE": str(pki.ca_cert),
            "KPISTREAM_KAFKA_SSL_CERTFILE": str(pki.server_cert),
            "KPISTREAM_KAFKA_SSL_KEYFILE": str(pki.server_key),
            "KPISTREAM_KAFKA_SSL_CHECK_HOSTNAME": "false",
        }
    )
    ctx = kafka_clients.ssl_context(s)
    assert ctx is not None and not ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(ConfigError) as info:  # the key without its certificate
        load_settings(
            env={
                "KPISTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
                "KPISTREAM_KAFKA_SSL_KEYFILE": str(pki.server_key),
            }
        )
    assert info.value.setting == "kafka_ssl_certfile"
    with pytest.raises(ConfigError) as info:  # a key that is not the certificate's
        load_settings(
            env={
                "KPISTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
                "KPISTREAM_KAFKA_SSL_CERTFILE": str(pki.server_cert),
                "KPISTREAM_KAFKA_SSL_KEYFILE": str(pki.ca_key),
            }
        )
    assert info.value.setting == "kafka_ssl_certfile"


@pytest.mark.parametrize(
    ("protocol", "env"),
    [
        ("PLAINTEXT", {}),
        ("SASL_SSL", SASL),
        ("SASL_PLAINTEXT", {**SASL, "KPISTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}),
        ("SSL", {"KPISTREAM_KAFKA_SECURITY_PROTOCOL": "SSL"}),
    ],
)
def test_faust_gets_the_same_options_as_every_other_client(
    protocol: str, env: dict[str, str], tmp_path: Path
) -> None:
    """What Faust hands aiokafka for its consumer and producers equals `security_kwargs`."""
    s = load_settings(env={**env, "KPISTREAM_DATA_DIR": str(tmp_path)})
    faust_kw = aiokafka_auth_of(make_app(s))
    ours = kafka_clients.security_kwargs(s)
    assert faust_kw["security_protocol"] == protocol
    for key in ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
        assert faust_kw.get(key) == ours.get(key)
    assert (faust_kw.get("ssl_context") is None) == (ours.get("ssl_context") is None)


def _reason(exc: BaseException, s: Settings | str = "kafka://h:1") -> str:
    return kafka_clients._reason(s, exc, 5.0)


def test_failures_read_as_what_to_fix() -> None:
    s = load_settings(env=SASL)
    assert "wrong user name or password" in _reason(errors.SaslAuthenticationFailed("x"), s)
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    untrusted.verify_message = "self-signed certificate in certificate chain"
    assert "not trusted" in _reason(untrusted, s) and "kafka_ssl_cafile" in _reason(untrusted, s)
    mismatch = ssl.SSLCertVerificationError(1, "certificate verify failed")
    mismatch.verify_message = "IP address mismatch, certificate is not valid for '10.0.0.1'."
    assert "does not name this host" in _reason(mismatch, s)
    assert "is this a SASL_SSL listener" in _reason(TimeoutError(), s)
    assert "nothing listens" in _reason(ConnectionRefusedError())


def test_check_connection_names_the_server_and_the_cause() -> None:
    from stream.devenv.process import free_port

    port = free_port()  # nothing listens there
    with pytest.raises(kafka_clients.KafkaAccessError) as info:
        asyncio.run(kafka_clients.check_connection(f"kafka://127.0.0.1:{port}", timeout_s=3))
    assert str(info.value) == (
        f"cannot use Kafka at 127.0.0.1:{port} (PLAINTEXT): connection refused (nothing listens there)"
    )


def test_the_bench_uses_an_external_brokers_security(monkeypatch: pytest.MonkeyPatch) -> None:
    from stream.bench.services import Services

    for k, v in SASL.items():
        monkeypatch.setenv(k, v)
    external = Services("b:9096", "kafka://b:9096", "redis://r", None, None, load_settings(env=SASL))
    assert external.kafka is external.kafka_settings
    assert external.worker_env() == {"KPISTREAM_BROKER": "kafka://b:9096", **SASL}
    local = Services("127.0.0.1:1", "kafka://127.0.0.1:1", "redis://r", None, None)
    assert local.kafka == "127.0.0.1:1" and local.worker_env() == {"KPISTREAM_BROKER": "kafka://127.0.0.1:1"}
