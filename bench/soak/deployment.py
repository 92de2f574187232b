"""One pairing deployed for the soak: its private servers, and the API and worker processes
that the faults kill and the harness restarts."""

from __future__ import annotations

import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, suppress
from pathlib import Path

import httpx

from tests.helpers import AMQP_START, AMQP_URL, Cluster, require_service, unique_name, wait_until
from tests.servers import PrivatePostgres, PrivateRedis

WORKERS, CONCURRENCY = 2, 4
FRAME = re.compile(r"(genqueue/[\w/]+\.py)(?::|\", line )(\d+),? in (\w+)")
NOISE = re.compile(r"[│╭╰^]|File |\d{4}-\d\d-\d\d |During handling|Traceback")


class Deployment:
    """One API and ``WORKERS`` worker processes; restarts only what the harness killed."""

    def __init__(self, data_dir: Path, store_url: str, broker_url: str, t0: float) -> None:
        self.cluster = Cluster(data_dir, urls=(store_url, broker_url))
        self.lock = threading.RLock()
        self.t0 = t0  # exits are timed from the pairing's start, like the faults
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * WORKERS
        self.killed: set[subprocess.Popen[bytes]] = set()  # by the harness, on purpose
        self.exits: list[str] = []
        self.logs: dict[subprocess.Popen[bytes], Path] = {}
        self._api_retry_at = 0.0
        self._api_backoff_s = 0.5

    @property
    def url(self) -> str:
        return self.cluster.url

    def pids(self) -> set[int]:
        with self.lock:
            procs = [self.cluster.api, *self.workers]
            return {p.pid for p in procs if p is not None and p.poll() is None}

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        # Not Cluster's own spawn: each process's log must be known, for tail().
        log = self.cluster.data_dir / f"{unique_name(args[0])}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "genqueue", *args],
                env=self.cluster.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.logs[proc] = log
        return proc

    def start_api(self) -> None:
        with self.lock:
            self.cluster.api = self._spawn("api", "--port", str(self.cluster.port))

    def start_worker(self, slot: int) -> None:
        with self.lock:
            args = ("--concurrency", str(CONCURRENCY), "--name", f"soak-w{slot}")
            proc = self._spawn("worker", *args)
            self.workers[slot] = proc
            self.cluster.workers.append(proc)

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def _sigkill(self, proc: subprocess.Popen[bytes], what: str) -> bool:
        """SIGKILL it; False (and a finding) if it had already ended on its own."""
        self.killed.add(proc)
        if proc.poll() is not None:
            self._exited(what, proc)
            return False
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        return True

    def kill_worker(self, rng: random.Random) -> str:
        with self.lock:
            alive = [i for i, p in enumerate(self.workers) if p is not None and p.poll() is None]
            if not alive:
                return "no worker alive"
            slot = rng.choice(alive)
            proc = self.workers[slot]
            assert proc is not None
            if not self._sigkill(proc, f"worker soak-w{slot}"):
                self.workers[slot] = None
                return f"soak-w{slot} had exited"
            self.start_worker(slot)
            return f"soak-w{slot}"

    def kill_api(self, down_s: float) -> None:
        with self.lock:
            if self.cluster.api is not None:
                self._sigkill(self.cluster.api, "api")
        time.sleep(down_s)  # the outage itself
        self.start_api()

    def alive_workers(self) -> int:
        with self.lock:
            return sum(1 for p in self.workers if p is not None and p.poll() is None)

    def tail(self, proc: subprocess.Popen[bytes]) -> str:
        """How a process's log ends, and the innermost genqueue frames of its last traceback
        (plain or rich): the evidence for a process that exited on its own."""
        text = self.logs[proc].read_text(errors="replace").splitlines()
        starts = [i for i, line in enumerate(text) if "Traceback" in line]
        frames = [
            f"{m[1]}:{m[2]} {m[3]}"
            for line in text[starts[-1] if starts else 0 :]
            if (m := FRAME.search(line))
        ]
        plain = [line.strip() for line in text if line.strip() and not NOISE.match(line.strip())]
        shown = f"log ends: {' '.join(plain[-2:])}"
        if frames:
            shown += f"\n      last traceback: {' <- '.join(reversed(frames[-3:]))}"
        return shown

    def _exited(self, what: str, proc: subprocess.Popen[bytes]) -> None:
        at_s = time.time() - self.t0
        self.exits.append(
            f"{what} exited {proc.returncode} at {at_s:.0f} s;\n      {self.tail(proc)}"
        )

    def check(self) -> None:
        """Record processes that ended on their own; a worker stays dead (the finding), the
        API is started again with backoff (without it nothing can be read back)."""
        with self.lock:
            for slot, proc in enumerate(self.workers):
                if proc is not None and proc.poll() is not None and proc not in self.killed:
                    self._exited(f"worker soak-w{slot}", proc)
                    self.workers[slot] = None
            api = self.cluster.api
            if api is None or api.poll() is None or api in self.killed:
                return
            if time.monotonic() < self._api_retry_at:
                return
            self._exited("api", api)
            self.start_api()
            self._api_retry_at = time.monotonic() + self._api_backoff_s
            self._api_backoff_s = min(10.0, self._api_backoff_s * 2)


class Backends:
    """The private servers of one pairing and the URLs genqueue gets."""

    def __init__(self, store: str, broker: str, root: Path, stack: ExitStack) -> None:
        self.kinds = {store, broker}
        self.redis = self.postgres = None
        if "redis" in self.kinds:
            self.redis = stack.enter_context(PrivateRedis(root / "redis"))
        if "postgres" in self.kinds:
            self.postgres = stack.enter_context(PrivatePostgres(root))
        if "amqp" in self.kinds:
            # Other tests stop the shared RabbitMQ for a few seconds too: wait that out first.
            with suppress(AssertionError):
                wait_until(rabbit_listens, 60, 0.5, "RabbitMQ to listen")
            require_service("RabbitMQ", "127.0.0.1", 5672, AMQP_START)
        self.urls = {
            "sqlite": f"sqlite:///{root / 'genqueue.db'}",
            "redis": f"{self.redis.url}?prefix=soak" if self.redis else "",
            "postgres": f"{self.postgres.url}?schema=soak" if self.postgres else "",
            "amqp": f"{AMQP_URL}?prefix={unique_name('soak')}",
        }


def rabbit_listens() -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", 5672)) == 0
