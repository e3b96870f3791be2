"""The SASL_SSL broker option of stream/devenv/kafka.py, without starting Kafka: its files and settings."""

from __future__ import annotations

import ssl
import stat
import subprocess
from pathlib import Path

import pytest

from stream import kafka_clients
from stream.devenv.kafka import BrokerSecurity, KafkaBroker, _dev_security
from stream.devenv.tls import Pki, make_pki, openssl_available
from stream.errors import ServiceError

pytestmark = pytest.mark.skipif(not openssl_available(), reason="needs the openssl command line tool")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_certificate_names_localhost_and_the_loopback_address(pki: Pki) -> None:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(pki.server_cert, pki.server_key)  # key and certificate belong together
    names = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(pki.server_cert)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:localhost" in names and "IP Address:127.0.0.1" in names
    keystore = pki.server_keystore.read_text()
    assert "PRIVATE KEY" in keystore and "BEGIN CERTIFICATE" in keystore


def test_secured_properties_and_client_settings(pki: Pki, tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "kafka", port=19092, security=BrokerSecurity(pki, {"kpi": "pw-1"}))
    broker.controller_port, broker.internal_port = 19093, 19094
    props = broker._properties(tmp_path / "data")
    assert (
        "listeners=SASL_SSL://127.0.0.1:19092,INTERNAL://127.0.0.1:19094,CONTROLLER://127.0.0.1:19093"
        in props
    )
    assert "inter.broker.listener.name=INTERNAL" in props
    assert "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" in props
    assert broker._scram_args() == [
        "--add-scram", "SCRAM-SHA-256=[name=kpi,password=pw-1]",
        "--add-scram", "SCRAM-SHA-512=[name=kpi,password=pw-1]",
    ]  # fmt: skip
    s = broker.client_settings()
    assert (s.kafka_security_protocol, s.kafka_sasl_username, s.kafka_ssl_cafile) == (
        "SASL_SSL",
        "kpi",
        str(pki.ca_cert),
    )
    assert kafka_clients.bootstrap_of(s) == "127.0.0.1:19092"


def test_users_must_fit_a_jaas_line(pki: Pki) -> None:
    with pytest.raises(ServiceError):
        BrokerSecurity(pki, {"kpi": 'pw"; injected'})
    with pytest.raises(ServiceError):
        BrokerSecurity(pki, {})


def test_dev_start_keeps_its_ca_and_password(tmp_path: Path) -> None:
    first = _dev_security(tmp_path, secured=True)
    again = _dev_security(tmp_path, secured=True)
    assert first is not None and again is not None
    assert first.users == again.users and first.pki == again.pki
    password_file = tmp_path / "pki" / "kpistream.password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert _dev_security(tmp_path, secured=False) is None
