"""A throwaway certificate authority and a server certificate for 127.0.0.1 and localhost,
made with ``openssl`` for the TLS tests' private servers (tests/servers.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.servers import missing

SERVER_EXTENSIONS = """\
subjectAltName = IP:127.0.0.1, DNS:localhost
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
"""
EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@dataclass(frozen=True)
class Certificates:
    """PEM files: the CA clients trust, and the server's certificate and private key."""

    ca: Path
    cert: Path
    key: Path

    def copy_to(self, dir: Path, owner: str | None = None) -> Certificates:
        """The same files in ``dir`` owned by ``owner`` (a server that runs as another user
        and refuses a key others can read: PostgreSQL, RabbitMQ), the key mode 0600."""
        copies = Certificates(dir / "ca.pem", dir / "server.pem", dir / "server.key")
        for source, target in zip(
            (self.ca, self.cert, self.key), (copies.ca, copies.cert, copies.key), strict=True
        ):
            shutil.copyfile(source, target)
            target.chmod(0o600 if target == copies.key else 0o644)
            if owner is not None and os.geteuid() == 0:
                shutil.chown(target, owner, owner)
        return copies


def _openssl(*args: str | Path) -> None:
    run = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {run.stderr}")


def make_certificates(dir: Path | None = None) -> Certificates:
    """A new CA and a server certificate it signed, valid two days, in ``dir`` (default: a
    new world-traversable temp dir, so servers running as other users can reach it)."""
    if shutil.which("openssl") is None:
        missing("openssl is not installed (apt-get install openssl)")
    if dir is None:
        dir = Path(tempfile.mkdtemp(prefix="gq-certs-"))
        dir.chmod(0o755)
    ca, ca_key = dir / "ca.pem", dir / "ca.key"
    cert, key, request = dir / "server.pem", dir / "server.key", dir / "server.csr"
    extensions = dir / "server.ext"
    extensions.write_text(SERVER_EXTENSIONS)
    _openssl(
        *("req", "-x509", *EC_KEY, "-keyout", ca_key, "-out", ca, "-days", "2"),
        *("-subj", "/CN=genqueue test CA", "-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )
    _openssl("req", *EC_KEY, "-keyout", key, "-out", request, "-subj", "/CN=localhost")
    _openssl(
        *("x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial"),
        *("-out", cert, "-days", "2", "-extfile", extensions),
    )
    return Certificates(ca, cert, key)
