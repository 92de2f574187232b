"""The fault injectors: what can go wrong in one pairing, one fault at a time, each one
undone by the injector that caused it."""

from __future__ import annotations

import random
import re
import subprocess
import threading
import time
from collections.abc import Callable

from bench.soak.deployment import Backends, Deployment
from bench.soak.outcome import Fault, Outcome
from genqueue.backends.sqlite.db import BUSY_TIMEOUT_MS
from tests.helpers import rabbitmq_back_up, rabbitmqctl
from tests.servers import SqliteLock

SQLITE_BUSY_S = BUSY_TIMEOUT_MS / 1000


class Faults:
    """What can go wrong in one pairing, injected one at a time until the load ends. Each
    fault returns a note; outages last 5-30 s (not much past the end of the load), and
    whatever a fault takes down it brings back, even if it fails half-way."""

    def __init__(
        self, backends: Backends, deployment: Deployment, rng: random.Random, load_end: float
    ) -> None:
        self.backends, self.deployment, self.rng = backends, deployment, rng
        self.load_end = load_end
        self.rabbit_down = False

    def menu(self) -> list[tuple[Callable[[], str], int]]:
        """Each fault this pairing can suffer, with its weight."""
        kinds = self.backends.kinds
        menu = [(self.worker_sigkill, 3), (self.api_sigkill, 2)]
        if "sqlite" in kinds:
            menu.append((self.sqlite_write_lock, 2))
        if self.backends.redis:
            menu += [(self.redis_sigkill, 2), (self.redis_client_kill, 1)]
        if self.backends.postgres:
            menu += [(self.postgres_stop_immediate, 2), (self.postgres_terminate, 2)]
        if "amqp" in kinds:
            menu.append((self.amqp_connections_closed, 1))
        return menu

    def run(self, outcome: Outcome, rabbit_outage: bool, stop: threading.Event) -> None:
        """Every kind of fault once in a random order (a short soak still meets each), then
        drawn by weight; RabbitMQ stops once, at a random time."""
        menu = self.menu()
        first = self.rng.sample([f for f, _ in menu], len(menu))
        phase_s = self.load_end - time.monotonic()
        rabbit_at = time.monotonic() + phase_s * self.rng.uniform(0.2, 0.6)
        while not stop.wait(self.rng.uniform(2, 6)) and time.monotonic() < self.load_end:
            if rabbit_outage and time.monotonic() >= rabbit_at:
                fault, rabbit_outage = self.rabbitmq_stop_app, False
            elif first:
                fault = first.pop()
            else:
                fault = self.rng.choices([f for f, _ in menu], [w for _, w in menu])[0]
            started = time.time()
            try:
                note = fault()
            except Exception as exc:  # the harness carries on; the table says what failed
                note = f"HARNESS ERROR {exc!r}"
            outcome.faults.append(Fault(fault.__name__, started, time.time(), note))

    def _down_s(self) -> float:
        return self.rng.uniform(5, max(5, min(30, self.load_end - time.monotonic())))

    def worker_sigkill(self) -> str:
        return self.deployment.kill_worker(self.rng)

    def api_sigkill(self) -> str:
        self.deployment.kill_api(self.rng.uniform(0.5, 3))
        return ""

    def sqlite_write_lock(self) -> str:
        """Another process holds BEGIN IMMEDIATE past genqueue's busy timeout."""
        hold_s = self.rng.uniform(SQLITE_BUSY_S + 1, SQLITE_BUSY_S + 10)
        lock = SqliteLock(self.deployment.cluster.data_dir / "genqueue.db")
        lock.take()
        try:
            time.sleep(hold_s)  # the outage itself
        finally:
            lock.release()
        return f"held {hold_s:.0f} s"

    def redis_sigkill(self) -> str:
        assert self.backends.redis is not None
        self.backends.redis.kill()
        try:
            time.sleep(self._down_s())  # the outage itself
        finally:
            self.backends.redis.start()
        return ""

    def redis_client_kill(self) -> str:
        import redis

        assert self.backends.redis is not None
        with redis.Redis.from_url(self.backends.redis.url) as client:
            return f"{client.client_kill_filter(_type='normal', skipme=True)} clients"

    def postgres_stop_immediate(self) -> str:
        assert self.backends.postgres is not None
        self.backends.postgres.stop("immediate")
        try:
            time.sleep(self._down_s())  # the outage itself
        finally:
            self.backends.postgres.start()
        return ""

    def postgres_terminate(self) -> str:
        assert self.backends.postgres is not None
        return f"{self.backends.postgres.terminate_connections()} sessions"

    def amqp_connections_closed(self) -> str:
        """Only our processes' connections (found by local port): others share the server."""
        sockets = subprocess.run(
            ["ss", "-tnpH", "state", "established", "( dport = :5672 )"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        pids, ours = self.deployment.pids(), set()
        for line in sockets.splitlines():
            owner = re.search(r"pid=(\d+)", line)
            if owner and int(owner.group(1)) in pids:
                ours.add(line.split()[2].rsplit(":", 1)[1])
        listed = rabbitmqctl("list_connections", "pid", "peer_port", "-q", "--no-table-headers")
        closed = 0
        for row in listed.splitlines():
            conn, _, port = row.strip().partition("\t")
            if port.strip() in ours:
                rabbitmqctl("close_connection", conn, "genqueue soak")
                closed += 1
        return f"{closed} connections"

    def rabbitmq_stop_app(self) -> str:
        """The shared RabbitMQ stops for everyone: once per pairing, 5-10 s."""
        self.rabbit_down = True
        try:
            rabbitmqctl("stop_app")
            time.sleep(self.rng.uniform(5, 10))  # the outage itself
        finally:
            self.restore_rabbit()
        return ""

    def restore_rabbit(self) -> None:
        if self.rabbit_down:
            rabbitmq_back_up()
            self.rabbit_down = False
