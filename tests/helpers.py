"""Test helpers: waiting on conditions, real genqueue processes, the service gate."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from genqueue.models import WorkerInfo, utcnow

T = TypeVar("T")

REDIS_START = (
    "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no"
)

POSTGRES_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
AMQP_START = "rabbitmq-server -detached"

REDIS_URL = os.environ.get("GENQUEUE_TEST_REDIS", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("GENQUEUE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("GENQUEUE_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")


def backend_url(name: str, tmp_path: Path) -> str:
    """A fresh, isolated place on the named backend: a temp file, a unique Redis key prefix, a
    PostgreSQL schema of its own, or uniquely prefixed RabbitMQ queues."""
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'genqueue.db'}"
    if name == "redis":
        require_service("Redis", "127.0.0.1", 6379, REDIS_START)
        return f"{REDIS_URL}?prefix={unique_name('gqtest')}"
    if name == "postgres":
        require_service("PostgreSQL", "127.0.0.1", 5432, POSTGRES_START)
        return f"{POSTGRES_URL}?schema={unique_name('gqtest').replace('-', '_')}"
    if name == "amqp":
        require_service("RabbitMQ", "127.0.0.1", 5672, AMQP_START)
        return f"{AMQP_URL}?prefix={unique_name('gqtest')}"
    raise ValueError(f"unknown test backend {name!r}")


def pairing_urls(pairing: str, tmp_path: Path) -> tuple[str, str]:
    """``"redis"`` -> store and broker on one engine; ``"amqp-postgres"`` -> (store, broker)
    with the broker named first, as the pairings are spoken of (RabbitMQ + PostgreSQL)."""
    if "-" not in pairing:
        url = backend_url(pairing, tmp_path)
        return url, url
    broker, store = pairing.split("-")
    return backend_url(store, tmp_path), backend_url(broker, tmp_path)


def _drop_postgres_schema(url: str) -> None:
    from urllib.parse import parse_qs, urlsplit

    schema = parse_qs(urlsplit(url).query)["schema"][0]
    subprocess.run(
        ["psql", url.split("?")[0], "-qc", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'],
        check=True,
        capture_output=True,
    )


def _delete_amqp_queues(url: str) -> None:
    """Delete the test's queues (named ``<prefix>.*``) from the shared RabbitMQ."""
    from urllib.parse import parse_qs, urlsplit

    prefix = parse_qs(urlsplit(url).query)["prefix"][0]
    listed = subprocess.run(
        ["rabbitmqctl", "list_queues", "name", "--quiet", "--no-table-headers"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    names = [n for n in listed if n.startswith(f"{prefix}.")]
    if not names:
        return

    async def delete() -> None:
        import aio_pika

        connection = await aio_pika.connect(url.split("?")[0])
        async with connection:
            channel = await connection.channel()
            for name in names:
                await channel.queue_delete(name)

    # In a thread of its own: forget() is also called from inside running event loops.
    import threading

    worker = threading.Thread(target=asyncio.run, args=(delete(),))
    worker.start()
    worker.join(30)


def forget(url: str) -> None:
    """Delete what a test left on a shared server (its key prefix, schema or queues; never
    FLUSHALL)."""
    if url.startswith("postgres"):
        _drop_postgres_schema(url)
    elif url.startswith("amqp"):
        _delete_amqp_queues(url)
    elif url.startswith("redis"):
        import redis

        from genqueue.backends.redis.connection import split_url

        plain, prefix = split_url(url)
        with redis.Redis.from_url(plain) as client:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])


FAST_LEASES = {
    "GENQUEUE_LEASE_S": "3",
    "GENQUEUE_HEARTBEAT_S": "0.5",
    "GENQUEUE_SWEEP_S": "0.5",
}


def worker_info(worker_id: str, queues: tuple[str, ...] = ("q",)) -> WorkerInfo:
    """A worker as it registers, for tests that write the registry themselves."""
    now = utcnow()
    return WorkerInfo(
        id=worker_id,
        name=worker_id,
        host="h",
        pid=1,
        queues=list(queues),
        concurrency=1,
        started_at=now,
        last_seen=now,
    )


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(
    predicate: Callable[[], T | None],
    timeout_s: float = 10.0,
    every_s: float = 0.02,
    message: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {message}")
        time.sleep(every_s)


async def wait_for(
    predicate: Callable[[], Awaitable[T | None]],
    timeout_s: float = 10.0,
    every_s: float = 0.02,
    message: str = "condition",
) -> T:
    """Async :func:`wait_until`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {message}")
        await asyncio.sleep(every_s)


async def let_time_pass(seconds: float) -> None:
    """For tests whose subject is time itself (a lease running out): never use it to wait for
    another process or task, wait on a condition for that."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(min(0.01, max(0.0, deadline - time.monotonic())))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl`` on the shared RabbitMQ; its output, or CalledProcessError."""
    run = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=120)
    run.check_returncode()
    return run.stdout


def rabbitmq_back_up() -> None:
    """Start the shared RabbitMQ's app again and wait until it serves: a test that stopped it
    always leaves it running for whoever comes next."""
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")


def require_service(name: str, host: str, port: int, start_command: str) -> None:
    """Skip loudly when a server is unreachable; under CI=true, fail instead."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        reason = f"{name} is not reachable at {host}:{port} ({exc}); start it with: {start_command}"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def json_of(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The JSON object of a response that must have ``status``."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def stop_processes(procs: list[subprocess.Popen[bytes]], sigterms: int = 1) -> None:
    """SIGTERM each live process ``sigterms`` times (a second one tells a genqueue process to
    hand in-flight tasks back now), wait, and SIGKILL what is still running after 15 s."""
    for _ in range(sigterms):
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Cluster:
    """A real genqueue deployment for one test: an API process and worker processes that
    share one data directory (and so one SQLite file), with fast leases."""

    def __init__(
        self,
        data_dir: Path,
        extra_env: dict[str, str] | None = None,
        backend: str = "sqlite",
        urls: tuple[str, str] | None = None,
    ) -> None:
        """``urls`` (store, broker) instead of a ``backend`` pairing: private servers."""
        self.data_dir = data_dir
        self.backend = backend
        self.store_url, self.broker_url = urls or pairing_urls(backend, data_dir)
        self.backend_url = self.store_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "GENQUEUE_DATA_DIR": str(data_dir),
            "GENQUEUE_LOG_LEVEL": "WARNING",
            **FAST_LEASES,
            "GENQUEUE_STORE": self.store_url,
            "GENQUEUE_BROKER": self.broker_url,
            **(extra_env or {}),
        }
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.others: list[subprocess.Popen[bytes]] = []

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        with open(self.data_dir / f"{unique_name('proc')}.log", "wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "genqueue", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start_api(self, extra: list[str] | None = None) -> None:
        self.api = self._spawn("api", "--port", str(self.port), *(extra or []))
        self._wait_healthy(self.api, self.url)

    def start_another_api(self) -> str:
        """A second API process on the same backend (another "machine"); returns its URL."""
        port = free_port()
        proc = self._spawn("api", "--port", str(port))
        self.others.append(proc)
        url = f"http://127.0.0.1:{port}"
        self._wait_healthy(proc, url)
        return url

    def _wait_healthy(self, proc: subprocess.Popen[bytes], url: str) -> None:
        def healthy() -> bool:
            assert proc.poll() is None, self.logs()
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 30, 0.1, "the API to answer /health")

    def start_worker(
        self,
        name: str | None = None,
        concurrency: int = 4,
        queues: str | None = None,
        kinds: str | None = None,
        preload: bool = False,
        slots: str | None = None,
    ) -> subprocess.Popen[bytes]:
        args = ["worker", "--concurrency", str(concurrency), "--name", name or unique_name("w")]
        if queues:
            args += ["--queues", queues]
        if kinds:
            args += ["--kinds", kinds]
        if preload:
            args.append("--preload")
        if slots:
            args += ["--slots", slots]
        proc = self._spawn(*args)
        self.workers.append(proc)
        return proc

    def online_workers(self) -> int:
        workers = httpx.get(f"{self.url}/v1/workers", timeout=5).json()
        return sum(1 for w in workers if w["status"] == "online")

    def wait_exit(self, proc: subprocess.Popen[bytes], timeout_s: float) -> int:
        """The process's exit code; if it is still running after ``timeout_s``, ask it where
        its tasks are stuck (SIGUSR1), then fail with its log."""
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(2)
            raise AssertionError(f"still running after {timeout_s} s:\n{self.logs()}") from None

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in self.data_dir.glob("proc-*.log")
        )

    def stop(self) -> None:
        """Teardown: SIGTERM twice (stop now, hand in-flight tasks back), then SIGKILL."""
        stop_processes([*self.workers, *self.others, *([self.api] if self.api else [])], 2)
        forget(self.store_url)
        if self.broker_url != self.store_url:
            forget(self.broker_url)

    def succeeded_counts(self) -> dict[str, int]:
        """How many times the store recorded each task as succeeded, read from the store's own
        event log (the SQLite or PostgreSQL events table, the Redis events stream)."""
        url = self.store_url
        if url.startswith("sqlite"):
            import sqlite3

            with sqlite3.connect(self.data_dir / "genqueue.db") as conn:
                rows = conn.execute(
                    "SELECT task_id, count(*) FROM events WHERE type = 'task.succeeded'"
                    " GROUP BY task_id"
                ).fetchall()
            return dict(rows)
        if url.startswith("postgres"):
            from urllib.parse import parse_qs, urlsplit

            schema = parse_qs(urlsplit(url).query)["schema"][0]
            out = subprocess.run(
                [
                    "psql",
                    url.split("?")[0],
                    "-qAtF",
                    " ",
                    "-c",
                    f'SELECT task_id, count(*) FROM "{schema}".events'
                    " WHERE type = 'task.succeeded' GROUP BY task_id",
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            return {tid: int(n) for tid, n in (line.split() for line in out.splitlines() if line)}
        import redis

        from genqueue.backends.redis.connection import split_url

        plain, prefix = split_url(url)
        counts: dict[str, int] = {}
        with redis.Redis.from_url(plain, decode_responses=True) as client:
            for _, fields in client.xrange(f"{prefix}:events"):
                if fields["type"] == "task.succeeded":
                    counts[fields["task_id"]] = counts.get(fields["task_id"], 0) + 1
        return counts


PREVIEW_KINDS = "tests.preview_kinds"


@contextlib.contextmanager
def line_and_previews(data_dir: Path) -> Iterator[Cluster]:
    """A cluster for task pages: an API with the preview kinds, one worker taking one debug
    task at a time (so tasks wait in line behind it) and one worker for the previews queue."""
    cluster = Cluster(data_dir)
    try:
        cluster.start_api(["--kinds", PREVIEW_KINDS])
        cluster.start_worker(queues="debug", concurrency=1)
        cluster.start_worker(queues="previews", kinds=PREVIEW_KINDS, concurrency=1)
        yield cluster
    finally:
        cluster.stop()


def cli(cluster: Cluster, *args: str) -> str:
    """``genqueue <args>`` against the cluster's store; its stdout (exit 0 asserted)."""
    done = subprocess.run(
        [sys.executable, "-m", "genqueue", *args],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def cli_key(cluster: Cluster, user: str, role: str) -> str:
    """A key made by ``genqueue keys create``: the one line of its output that is the key."""
    out = cli(cluster, "keys", "create", "--user", user, "--role", role, "--label", "test")
    [key] = [line for line in out.splitlines() if line.startswith("gq_")]
    return key
