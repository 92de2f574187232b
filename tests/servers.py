"""Private Redis and PostgreSQL servers that a test (or the soak) may kill and restart.

The shared servers on 6379 and 5432 serve every other test and must never go down, so
outage tests start their own on a free port in a temp dir. Each server keeps its port and
its data across a kill and a start, so a restart looks to genqueue like the same server
coming back: Redis replays its append-only file (fsync on every write), PostgreSQL runs
crash recovery after ``stop("immediate")``.

    with PrivateRedis(tmp_path) as redis:      # started
        redis.kill(); redis.start()            # SIGKILL, then back with its data
    with PrivatePostgres(tmp_path) as pg:      # started; pg.url has db "postgres"
        pg.stop("immediate"); pg.start()
        pg.terminate_connections()             # genqueue's sessions, server stays up

TLS: ``PrivateRedis(dir, tls=certs)`` listens on TLS only (``rediss://...?ssl_ca_certs=``),
``PrivatePostgres(dir, tls=certs)`` refuses TCP clients without it (``hostssl``;
``?sslmode=verify-full&sslrootcert=``) and ``PrivateRabbitMQ(dir, tls=certs)`` is a node of its
own (``amqps://...?cafile=``); ``certs`` come from ``tests.certs.make_certificates()``.
``PrivateRedis(dir, password=...)`` asks for AUTH (``requirepass``).

A missing binary skips loudly (fails under CI=true), like ``require_service``.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import functools
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, NoReturn, Self
from urllib.parse import quote

import pytest

from tests.helpers import free_port, unique_name, wait_until

if TYPE_CHECKING:
    from tests.certs import Certificates

START_TIMEOUT_S = 30.0
POSTGRES_ROOT = Path("/usr/lib/postgresql")
SOCKET_PATH_MAX = 90  # a Unix socket path may hold 107 bytes; ".s.PGSQL.<port>" follows


def missing(reason: str) -> NoReturn:
    """Skip the test (fail under CI=true): the server cannot be started on this machine."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


class PrivateServer(abc.ABC):
    """A server a test starts for itself: ``with`` starts it and closes it (stopped, its
    files removed)."""

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class PrivateRedis(PrivateServer):
    """``redis-server`` on a free port, AOF with ``appendfsync always`` in ``dir``: a SIGKILL
    loses nothing that was acknowledged, and ``start()`` brings it back on the same port."""

    def __init__(
        self, dir: Path, tls: Certificates | None = None, password: str | None = None
    ) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            missing("redis-server is not installed (apt-get install redis-server)")
        self.dir = dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls = tls
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        if self.tls is None:
            return f"redis://{auth}127.0.0.1:{self.port}/0"
        return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls.ca}"

    def _listen(self) -> list[str]:
        if self.tls is None:
            listen = ["--port", str(self.port)]
        else:  # TLS only: a plain client cannot talk to it at all
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            listen += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            listen += ["--tls-ca-cert-file", str(self.tls.ca)]
        return listen + (["--requirepass", self.password] if self.password else [])

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start it and return once it answers PING (after loading its AOF)."""
        assert self.binary is not None and not self.running
        command = [
            self.binary,
            *self._listen(),
            *("--bind", "127.0.0.1", "--dir", str(self.dir)),
            *("--appendonly", "yes", "--appendfsync", "always", "--save", ""),
            *("--daemonize", "no", "--logfile", str(self.dir / "redis.log")),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def answers() -> bool:
            if self.process is not None and self.process.poll() is not None:
                stderr = self.process.stderr.read() if self.process.stderr else b""
                raise RuntimeError(
                    f"redis-server on port {self.port} exited ({self.process.returncode}): "
                    f"{stderr.decode(errors='replace')}{self.log()}"
                )
            return self._pong()

        try:
            wait_until(answers, timeout_s, 0.02, f"redis-server on port {self.port} to answer")
        except AssertionError:
            self.kill()
            raise

    def _pong(self) -> bool:
        # A bare socket: redis-py's own retries would only slow the polling down.
        auth = b""
        if self.password:
            secret = self.password.encode()
            auth = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(secret), secret)
        try:
            with contextlib.ExitStack() as stack:
                s = stack.enter_context(socket.create_connection(("127.0.0.1", self.port), 0.5))
                if self.tls is not None:
                    context = ssl.create_default_context(cafile=str(self.tls.ca))
                    s = stack.enter_context(context.wrap_socket(s, server_hostname="127.0.0.1"))
                s.sendall(auth + b"PING\r\n")
                replies = b""
                while replies.count(b"\r\n") < (2 if auth else 1):
                    if not (chunk := s.recv(256)):
                        return False
                    replies += chunk
                return replies.endswith(b"+PONG\r\n")  # not "-LOADING": AOF replayed
        except OSError:  # ssl.SSLError included
            return False

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to write anything more."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: a clean shutdown."""
        self._end(signal.SIGTERM)

    def _end(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stderr:
            self.process.stderr.close()

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        self.kill()


def _postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin dir (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = [p for p in POSTGRES_ROOT.glob("*/bin") if (p / "pg_ctl").exists()]
    return max(found, key=lambda p: int(p.parent.name)) if found else None


def _as_postgres(*command: str | Path, timeout_s: float = 60.0) -> str:
    """Run a PostgreSQL tool as the ``postgres`` OS user: initdb and postgres refuse root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    out = subprocess.run(
        [*prefix, *map(str, command)], capture_output=True, text=True, timeout=timeout_s
    )
    if out.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({out.returncode}): {out.stdout}{out.stderr}")
    return out.stdout


def _traversable(path: Path) -> bool:
    """Whether any user (postgres, here) can walk down to ``path``."""
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def _fresh_base(preferred: Path, owner: str = "postgres") -> Path:
    """A new directory owned by ``owner`` for one server: inside ``preferred`` if that user
    can reach it there, else in the system temp dir (pytest's tmp_path can be 0700, or too
    deep for a socket path)."""
    preferred.mkdir(parents=True, exist_ok=True)
    if _traversable(preferred) and len(str(preferred)) < SOCKET_PATH_MAX - 30:
        base = Path(tempfile.mkdtemp(prefix="pg-" if owner == "postgres" else "", dir=preferred))
    else:
        base = Path(tempfile.mkdtemp(prefix=f"gq-{owner}-"))
    base.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(base, owner, owner)
    return base


@functools.cache
def _template(bin_dir: Path) -> Path:
    """One initdb per process; every cluster starts as a copy of it (cp -a keeps owners)."""
    base = _fresh_base(Path(tempfile.gettempdir()))
    atexit.register(shutil.rmtree, base, True)
    _as_postgres(bin_dir / "initdb", "-D", base / "data", "-U", "postgres", "--auth=trust")
    return base / "data"


class PrivatePostgres(PrivateServer):
    """A throwaway PostgreSQL cluster on a free port: ``stop("immediate")`` is a crash (the
    next ``start()`` runs recovery), ``terminate_connections()`` drops genqueue's sessions
    while the server stays up."""

    def __init__(self, dir: Path, tls: Certificates | None = None) -> None:
        bin_dir = _postgres_bin()
        if bin_dir is None:
            missing(f"no PostgreSQL server under {POSTGRES_ROOT} (apt-get install postgresql)")
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            missing("runuser is missing: PostgreSQL cannot be started as root")
        self.bin = bin_dir
        self.base = _fresh_base(dir)
        self.data = self.base / "data"
        self.port = free_port()
        self.running = False
        subprocess.run(["cp", "-a", str(_template(bin_dir)), str(self.data)], check=True)
        # TLS: the server's key owned by postgres (it refuses one others can read), and TCP
        # clients without TLS refused, so a connection that works is a TLS connection.
        self.tls = tls.copy_to(self.base, "postgres") if tls is not None else None
        if self.tls is not None:
            hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\n"
            (self.data / "pg_hba.conf").write_text(hba)

    @property
    def url(self) -> str:
        plain = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if self.tls is None:
            return plain
        return f"{plain}?sslmode=verify-full&sslrootcert={self.tls.ca}"

    def start(self) -> None:
        """Start it (recovering after a crash) and return once it accepts connections."""
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1"
        if self.tls is not None:
            options += f" -c ssl=on -c ssl_cert_file={self.tls.cert} -c ssl_key_file={self.tls.key}"
        log = self.base / "postgres.log"
        _as_postgres(
            *(self.bin / "pg_ctl", "-D", self.data, "-l", log, "-o", options),
            *("-w", "-t", str(int(START_TIMEOUT_S)), "start"),
            timeout_s=START_TIMEOUT_S + 10,
        )
        self.running = True

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """``fast``: a clean shutdown; ``immediate``: every process quits at once, as in a
        crash, and the next start replays the WAL."""
        _as_postgres(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")
        self.running = False

    def psql(self, sql: str, **variables: str) -> list[str]:
        """Run SQL (``:'name'`` for a quoted variable) and return the unaligned rows."""
        bound = [f"--set={name}={value}" for name, value in variables.items()]
        out = subprocess.run(
            ["psql", self.url, "-qAt", "-v", "ON_ERROR_STOP=1", *bound, "-f", "-"],
            input=sql,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return [line for line in out.stdout.splitlines() if line]

    def terminate_connections(self, application_name_prefix: str = "genqueue") -> int:
        """End every other session whose application_name starts with the prefix (genqueue
        names its sessions ``genqueue:<schema>``); returns how many were ended."""
        rows = self.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE starts_with(application_name, :'prefix') AND pid <> pg_backend_pid();",
            prefix=application_name_prefix,
        )
        return int(rows[0])

    def log(self) -> str:
        path = self.base / "postgres.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        """Crash-stop it if running and remove its files."""
        if self.running or (self.data / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except RuntimeError:
                self.running = False  # it was not running after all
        shutil.rmtree(self.base, ignore_errors=True)


RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
RABBITMQ_CONFIG = """\
listeners.tcp = none
listeners.ssl.default = {port}
ssl_options.cacertfile = {tls.ca}
ssl_options.certfile = {tls.cert}
ssl_options.keyfile = {tls.key}
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
"""


class PrivateRabbitMQ(PrivateServer):
    """A RabbitMQ node of its own (``gq-<id>@localhost``, its own ports, data and config,
    no plugins) listening on TLS only, beside the shared node that every other test uses."""

    def __init__(self, dir: Path, tls: Certificates) -> None:
        if not RABBITMQ_SERVER.exists() or shutil.which("rabbitmqctl") is None:
            missing(f"no RabbitMQ server at {RABBITMQ_SERVER} (apt-get install rabbitmq-server)")
        if os.geteuid() != 0 or shutil.which("runuser") is None:
            missing(
                "a private RabbitMQ node is started as the rabbitmq user: needs root and runuser"
            )
        self.node = f"{unique_name('gq')}@localhost"
        self.port = free_port()
        self.base = _fresh_base(dir, owner="rabbitmq")
        self.tls = tls.copy_to(self.base, "rabbitmq")
        config = self.base / "rabbitmq.conf"
        config.write_text(RABBITMQ_CONFIG.format(port=self.port, tls=self.tls))
        (self.base / "enabled_plugins").write_text("[].\n")
        for path in (config, self.base / "enabled_plugins"):
            shutil.chown(path, "rabbitmq", "rabbitmq")
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.base / "rabbitmq.pid"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqps://guest:guest@127.0.0.1:{self.port}/?cafile={self.tls.ca}"

    def start(self, timeout_s: float = 90.0) -> None:
        """Start the node and return once it accepts TLS connections."""
        with open(self.base / "server.out", "wb") as out:
            self.process = subprocess.Popen(
                ["runuser", "-u", "rabbitmq", "--", str(RABBITMQ_SERVER)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def accepts() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"RabbitMQ node {self.node} exited: {self.log()}")
            context = ssl.create_default_context(cafile=str(self.tls.ca))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw:
                    context.wrap_socket(raw, server_hostname="127.0.0.1").close()
                return True
            except OSError:
                return False

        wait_until(accepts, timeout_s, 0.2, f"RabbitMQ node {self.node} to accept TLS")

    def log(self) -> str:
        path = self.base / "server.out"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        """Stop the node (rabbitmqctl stop; SIGKILL if it will not) and remove its files."""
        if self.process is not None and self.process.poll() is None:
            subprocess.run(
                ["rabbitmqctl", "-n", self.node, "stop"], capture_output=True, timeout=60
            )
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)


__all__ = ["PrivatePostgres", "PrivateRabbitMQ", "PrivateRedis", "missing"]


HOLD_LOCK = """
import sqlite3, sys
# A long timeout: under load it waits its turn for the lock it is to hold.
conn = sqlite3.connect(sys.argv[1], timeout=120, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


class SqliteLock:
    """Another process holding a SQLite file's write lock from :meth:`take` until
    :meth:`release`: the embedded backend's outage (writers wait, then give up)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.process: subprocess.Popen[str] | None = None

    def take(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.communicate("\n", timeout=30)
            assert process.returncode == 0

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.communicate()
            self.process = None
