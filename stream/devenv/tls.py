"""Throw-away TLS certificates for local brokers and tests, made with the `openssl` command line.

A private CA signs a server certificate whose subject alternative names are `localhost` and
`127.0.0.1`, so clients connect with hostname checking on, as in production. Nothing here is
fit for production: the keys are unencrypted and valid for two days.

    pki = make_pki(tmp_path / "pki")
    KafkaBroker(tmp_path / "kafka", security=BrokerSecurity(pki, {"kpi": "secret"}))
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stream.errors import ServiceError

DAYS = "2"
SERVER_NAMES = ("DNS:localhost", "IP:127.0.0.1")


@dataclass(frozen=True)
class Pki:
    """A CA and one server certificate signed by it (PEM files)."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    @property
    def server_keystore(self) -> Path:
        """Key then certificate chain in one PEM file (Kafka's `ssl.keystore.type=PEM`)."""
        return self.server_cert.with_name("server-keystore.pem")


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise ServiceError("making test certificates needs the openssl command line tool")
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise ServiceError(f"openssl {args[0]} failed (exit {proc.returncode}): {proc.stderr.strip()}")


def make_ca(directory: str | os.PathLike[str], name: str = "kpistream test CA") -> tuple[Path, Path]:
    """A self-signed CA in `directory`: (certificate, key)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / "ca.pem", d / "ca-key.pem"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
        "-days", DAYS, "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip
    return cert, key


def make_pki(directory: str | os.PathLike[str], names: tuple[str, ...] = SERVER_NAMES) -> Pki:
    """A CA and a server certificate for `names` (subjectAltName entries) in `directory`."""
    d = Path(directory)
    ca_cert, ca_key = make_ca(d)
    key, csr, cert = d / "server-key.pem", d / "server.csr", d / "server.pem"
    ext = d / "server.ext"
    ext.write_text(
        f"subjectAltName={','.join(names)}\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=localhost", cwd=d,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", DAYS, "-extfile", str(ext), cwd=d,
    )  # fmt: skip
    pki = Pki(ca_cert, ca_key, cert, key)
    pki.server_keystore.write_text(key.read_text() + cert.read_text())
    return pki
