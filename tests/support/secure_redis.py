"""Redis as ops run it, for the integration tests: an ACL user with a password, and TLS.

`make_certificates` makes a private CA and a server certificate for 127.0.0.1/localhost with the
`openssl` command line; `SecureRedisServer` is a `RedisServer` whose default user is off, with one
ACL user, and (with certificates) listening on a TLS port only.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from stream.devenv.redis import RedisServer


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


def make_certificates(directory: Path) -> Certificates:
    """A CA and a server certificate it signed, for 127.0.0.1 and localhost (valid one day)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (
        directory / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="utf-8")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
            "-days", "1", "-subj", "/CN=kpistream test CA")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", "/CN=127.0.0.1")  # fmt: skip
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(cert), "-days", "1", "-extfile", str(ext))  # fmt: skip
    return Certificates(ca, cert, key)


class SecureRedisServer(RedisServer):
    """redis-server with the default user off and one ACL user; TLS only when given certificates."""

    def __init__(
        self, data_dir: Path, user: str, password: str, certificates: Certificates | None = None
    ) -> None:
        super().__init__(data_dir)
        self.user = user
        self.password = password
        self.certificates = certificates

    @property
    def url(self) -> str:
        scheme = "rediss" if self.certificates else "redis"
        return f"{scheme}://{self.user}:{self.password}@{self.host}:{self.port}/0"

    def client(self) -> redis.Redis:
        """A synchronous client as the ACL user (over TLS, trusting the test CA)."""
        tls = {"ssl_ca_certs": str(self.certificates.ca)} if self.certificates else {}
        return redis.Redis.from_url(self.url, socket_timeout=5, decode_responses=True, **tls)

    def _command(self) -> Sequence[str]:
        command = list(super()._command())
        # Nobody gets in without the password; the user may do what kpistream does and no more
        # than its keys (`~*`) and channels (`&*`) need.
        command += ["--user", "default", "off"]
        command += ["--user", self.user, "on", f">{self.password}", "~*", "&*", "+@all"]
        if self.certificates:
            at = command.index("--port")
            command[at + 1] = "0"  # no plain-text port at all
            c = self.certificates
            command += [
                "--tls-port", str(self.port),
                "--tls-cert-file", str(c.cert),
                "--tls-key-file", str(c.key),
                "--tls-ca-cert-file", str(c.ca),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        return command

    def _probe(self) -> bool:
        with self.client() as c:
            return bool(c.ping())
