"""Soak: real deployments under a mixed load while processes and servers fail at random.

    python -m bench.soak [--minutes 10] [--pairings sqlite,redis] [--seed N] [--rate 5]

For each store/broker pairing, an API process and two workers (``python -m genqueue``, as
tests/helpers.py ``Cluster`` runs them, fast leases) on PRIVATE Redis/PostgreSQL servers
(tests/servers.py; RabbitMQ is the shared one, with unique queues). A submitter POSTs single
tasks and batches (``debug.sleep`` 0.01-2 s, ``debug.fail`` that succeeds on a retry or never,
``debug.echo``) and cancels a few; a fault thread, one fault at a time, SIGKILLs a worker or
the API (and restarts it), takes a server down (Redis SIGKILL, PostgreSQL immediate stop,
RabbitMQ stop_app once per pairing) for 5-30 s, drops genqueue's connections, or holds the
SQLite write lock past the busy timeout. The minutes are shared evenly by the pairings; the
drain that follows each is extra (bounded).

Then every accepted (201) task must be finished, and recorded succeeded at most once (the
store's own event log, read by ``Cluster.succeeded_counts``). The table counts lost tasks
(accepted, not finished or unknown), tasks recorded twice, workers that exited on their own
(never restarted: that is a finding), the longest submit-to-start wait (of the last attempt),
and per fault the time from its end to the next task start and success. Exit status 1 if a
task was lost or recorded twice, or a pairing could not be run; logs and each pairing's
tasks.json are then kept.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import AMQP_START, AMQP_URL, Cluster, require_service, unique_name, wait_until
from tests.servers import PrivatePostgres, PrivateRedis

PAIRINGS = {  # name -> (store, broker)
    "sqlite": ("sqlite", "sqlite"),
    "redis": ("redis", "redis"),
    "postgres": ("postgres", "postgres"),
    "postgres+amqp": ("postgres", "amqp"),
    "redis+amqp": ("redis", "amqp"),
}
FINISHED = {"succeeded", "failed", "cancelled"}
WORKERS, CONCURRENCY = 2, 4
SQLITE_BUSY_S = 15.0  # genqueue/backends/sqlite/db.py BUSY_TIMEOUT_MS
STALL_S = 60.0  # the drain gives up once nothing finished for this long
FRAME = re.compile(r"(genqueue/[\w/]+\.py)(?::|\", line )(\d+),? in (\w+)")
NOISE = re.compile(r"[│╭╰^]|File |\d{4}-\d\d-\d\d |During handling|Traceback")


@dataclass
class Fault:
    name: str
    started: float  # wall clock (time.time()), like the tasks' timestamps
    ended: float
    note: str = ""


@dataclass
class Outcome:
    pairing: str
    started: float
    accepted: set[str] = field(default_factory=set)
    final: dict[str, dict[str, Any]] = field(default_factory=dict)
    succeeded_counts: dict[str, int] = field(default_factory=dict)
    submit_errors: Counter[str] = field(default_factory=Counter)
    unanswered: Counter[str] = field(default_factory=Counter)  # ran, though refused: why
    faults: list[Fault] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)  # processes that ended on their own
    skipped: str = ""

    @property
    def lost(self) -> set[str]:
        return {t for t in self.accepted if self.final.get(t, {}).get("status") not in FINISHED}

    @property
    def twice(self) -> set[str]:
        return {t for t, n in self.succeeded_counts.items() if n > 1}

    def count(self, status: str) -> int:
        return sum(1 for t in self.accepted if self.final.get(t, {}).get("status") == status)


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


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


def rabbitmqctl(*args: str) -> str:
    run = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=120)
    run.check_returncode()
    return run.stdout


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
        code = (
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], timeout=120, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True)\n"
            "time.sleep(float(sys.argv[2])); c.rollback()\n"
        )
        db = self.deployment.cluster.data_dir / "genqueue.db"
        command = [sys.executable, "-c", code, str(db), str(hold_s)]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as holder:
            assert holder.stdout is not None
            holder.stdout.readline()
            holder.wait(hold_s + 150)
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
            rabbitmqctl("start_app")
            rabbitmqctl("await_startup")
            self.rabbit_down = False


class Load:
    """The submitter: single tasks and batches at about ``rate`` tasks/s, a few cancels;
    remembers every id answered 201, counts every refusal and error."""

    def __init__(self, url: str, rng: random.Random, rate: float) -> None:
        self.url, self.rng, self.rate = url, rng, rate
        self.accepted: list[str] = []
        self.errors: Counter[str] = Counter()
        self.failures: list[tuple[float, float, str]] = []  # refused submits: from, to, why

    def task(self) -> dict[str, Any]:
        roll = self.rng.random()
        if roll < 0.7:
            payload = {"seconds": round(self.rng.uniform(0.01, 2), 3), "steps": 2}
            return {"kind": "debug.sleep", "payload": payload}
        if roll < 0.8:  # fails, then succeeds on a retry
            return {"kind": "debug.fail", "payload": {"fail_times": self.rng.choice([1, 2])}}
        if roll < 0.85:
            return {"kind": "debug.fail", "payload": {}}  # fails every attempt
        return {"kind": "debug.echo", "payload": {"n": len(self.accepted)}}

    def post(self, http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to a 200/201; else None, the failure counted and, for a submit, its
        time window kept (a task that runs anyway is matched to it by created_at)."""
        sent = time.time()
        try:
            reply = http.post(path, json=body)
            failure = "" if reply.status_code in (200, 201) else str(reply.status_code)
        except httpx.TimeoutException:
            failure = "timeout"  # indeterminate: may or may not have been stored
        except httpx.TransportError:
            failure = "conn"
        except httpx.HTTPError as exc:
            failure = type(exc).__name__
        if not failure:
            answer: dict[str, Any] = reply.json()
            return answer
        self.errors[failure] += 1
        if not path.endswith("/cancel"):
            self.failures.append((sent, time.time(), failure))
        return None

    def run(self, stop: threading.Event) -> None:
        # Longer than SQLite's busy timeout: see what the API answers, not our impatience.
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not stop.is_set():
                if self.rng.random() < 0.6:
                    size, created = 1, self.post(http, "/v1/tasks", self.task())
                    ids = [created["id"]] if created else []
                else:
                    size = self.rng.randint(2, 20)
                    body = {"tasks": [self.task() for _ in range(size)]}
                    created = self.post(http, "/v1/batches", body)
                    ids = list(created["task_ids"]) if created else []
                self.accepted += ids
                if ids and self.rng.random() < 0.03:
                    victim = self.rng.choice(self.accepted[-50:])
                    self.post(http, f"/v1/tasks/{victim}/cancel", {})
                # Pacing, not synchronisation: the load's rate is the subject here.
                stop.wait(size / self.rate * self.rng.uniform(0.5, 1.5) if ids else 0.2)


@contextmanager
def running(target: Callable[[threading.Event], None]) -> Iterator[threading.Event]:
    """Run ``target(stop)`` in a thread for the block; set ``stop`` and join at its end."""
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join()


def drain(deployment: Deployment, outcome: Outcome, drain_s: float) -> None:
    """Wait until every accepted task is finished, reading each through the API; give up at
    the deadline, after ``STALL_S`` without progress, or once no worker is left."""
    pending = set(outcome.accepted)
    progress = [time.monotonic(), float(len(pending))]
    with httpx.Client(base_url=deployment.url, timeout=10) as http:

        def settled() -> bool:
            for task_id in sorted(pending):
                try:
                    reply = http.get(f"/v1/tasks/{task_id}")
                except httpx.HTTPError:
                    return False  # the API is down or restarting: next round
                if reply.status_code == 404:
                    outcome.final[task_id] = {"status": "unknown"}
                elif reply.status_code == 200:
                    outcome.final[task_id] = reply.json()
                else:
                    return False
                if outcome.final[task_id]["status"] in FINISHED | {"unknown"}:
                    pending.discard(task_id)
            if len(pending) < progress[1]:
                progress[:] = [time.monotonic(), len(pending)]
            stalled = time.monotonic() - progress[0] > STALL_S
            return not pending or stalled or deployment.alive_workers() == 0

        # What is still pending at the deadline counts as lost.
        with suppress(AssertionError):
            wait_until(settled, drain_s, 0.5, "every accepted task to finish")


def run_pairing(
    name: str, root: Path, phase_s: float, seed: int, args: argparse.Namespace
) -> Outcome:
    store, broker = PAIRINGS[name]
    outcome = Outcome(name, time.time())
    root.mkdir(parents=True)
    with ExitStack() as stack:
        try:
            backends = Backends(store, broker, root, stack)
        except (pytest.skip.Exception, pytest.fail.Exception) as exc:
            outcome.skipped = str(exc)
            return outcome
        deployment = Deployment(root, backends.urls[store], backends.urls[broker], outcome.started)
        stack.callback(_teardown, deployment.cluster.stop)
        deployment.start_api()
        wait_until(deployment.healthy, 60, 0.1, "the API to answer /health")
        for slot in range(WORKERS):
            deployment.start_worker(slot)
        online = deployment.cluster.online_workers
        wait_until(lambda: online() == WORKERS, 60, 0.1, "the workers to be online")
        load = Load(deployment.url, random.Random(f"{seed}-{name}-load"), args.rate)
        rng = random.Random(f"{seed}-{name}-faults")
        faults = Faults(backends, deployment, rng, time.monotonic() + phase_s)
        stack.callback(_teardown, faults.restore_rabbit)  # runs first: stop() needs it
        rabbit = "amqp" in backends.kinds and not args.no_rabbitmq_stop

        def inject(stop: threading.Event) -> None:
            faults.run(outcome, rabbit, stop)

        def monitor(stop: threading.Event) -> None:
            while not stop.wait(0.2):
                deployment.check()

        with running(monitor):
            with running(load.run), running(inject):
                time.sleep(phase_s)  # the load phase's length is the subject
            print(f"  load done: {len(load.accepted)} accepted; draining", flush=True)
            outcome.accepted = set(load.accepted)
            drain(deployment, outcome, args.drain_s)
            deployment.check()  # an exit the drain saw, before the monitor stops
        outcome.succeeded_counts = deployment.cluster.succeeded_counts()
        extra = set(outcome.succeeded_counts) - outcome.accepted
        outcome.unanswered = unanswered(deployment.url, extra, load.failures)
        (root / "tasks.json").write_text(json.dumps(outcome.final, indent=1))  # post-mortems
        outcome.exits = deployment.exits
        outcome.submit_errors = load.errors
    return outcome


def unanswered(url: str, ids: set[str], failures: list[tuple[float, float, str]]) -> Counter[str]:
    """Tasks that ran though their submit was not answered 201, by what it got instead
    (found by created_at within that submit's time window): after a 503 that is a finding,
    after a dropped connection it is the expected indeterminate case."""
    found: Counter[str] = Counter()
    with httpx.Client(base_url=url, timeout=10) as http:
        for task_id in ids:
            try:
                created = _ts(http.get(f"/v1/tasks/{task_id}").json().get("created_at")) or 0
            except httpx.HTTPError:
                created = 0
            why = [f for start, end, f in failures if start - 0.05 <= created <= end + 0.05]
            found[why[0] if why else "unmatched"] += 1
    return found


def _teardown(step: Callable[[], None]) -> None:
    try:
        step()
    except Exception as exc:  # report it, and let the other teardown steps run
        print(f"teardown: {step.__qualname__}: {exc!r}", file=sys.stderr)


def recovery(outcome: Outcome, fault: Fault) -> tuple[str, str]:
    """Seconds from the fault's end to the next task start and the next success; "never"
    if work was waiting and none came, "idle" if there was nothing left to do."""
    starts, successes, unstarted, unfinished = [], [], False, False
    for task in outcome.final.values():
        started, finished = _ts(task.get("started_at")), _ts(task.get("finished_at"))
        unstarted |= started is None and task["status"] not in FINISHED
        unfinished |= finished is None or finished >= fault.ended
        if started is not None and started >= fault.ended:
            starts.append(started - fault.ended)
        if task["status"] == "succeeded" and finished is not None and finished >= fault.ended:
            successes.append(finished - fault.ended)

    def shown(delays: list[float], waiting: bool) -> str:
        return f"{min(delays):.1f}" if delays else "never" if waiting else "idle"

    return shown(starts, unstarted), shown(successes, unfinished)


def max_wait_s(outcome: Outcome) -> float:
    waits = [
        started - created
        for t in outcome.final.values()
        if (started := _ts(t.get("started_at"))) and (created := _ts(t.get("created_at")))
    ]
    return max(waits, default=0.0)


def report(outcomes: list[Outcome]) -> dict[str, Any]:
    """Print the tables and the findings; return the figures as one JSON-able dict."""
    head = ["accepted", "succeeded", "failed", "cancelled", "lost", "twice", "max wait s"]
    head += ["worker exits", "api exits", "503s", "errors"]
    print(f"\n{'pairing':<15}" + "".join(f"{h:>{len(h) + 2}}" for h in head))
    figures: dict[str, Any] = {}
    for o in outcomes:
        if o.skipped:
            print(f"{o.pairing:<15}  skipped: {o.skipped}")
            figures[o.pairing] = {"skipped": o.skipped}
            continue
        worker_exits = sum(1 for e in o.exits if e.startswith("worker"))
        errors = sum(n for k, n in o.submit_errors.items() if k != "503")
        row = {
            "accepted": len(o.accepted),
            "succeeded": o.count("succeeded"),
            "failed": o.count("failed"),
            "cancelled": o.count("cancelled"),
            "lost": len(o.lost),
            "twice": len(o.twice),
            "max wait s": round(max_wait_s(o), 1),
            "worker exits": worker_exits,
            "api exits": len(o.exits) - worker_exits,
            "503s": o.submit_errors["503"],
            "errors": errors,
        }
        figures[o.pairing] = row
        print(f"{o.pairing:<15}" + "".join(f"{row[h]!s:>{len(h) + 2}}" for h in head))
    print(
        f"\n{'pairing':<15}{'at s':>6}  {'fault':<24}{'lasted s':>9}{'next start s':>14}"
        f"{'next success s':>16}  note"
    )
    for o in outcomes:
        for f in o.faults:
            start, success = recovery(o, f)
            print(
                f"{o.pairing:<15}{f.started - o.started:>6.0f}  {f.name:<24}"
                f"{f.ended - f.started:>9.1f}{start:>14}{success:>16}  {f.note}"
            )
            figures[o.pairing].setdefault("faults", []).append(
                {
                    "fault": f.name,
                    "lasted_s": round(f.ended - f.started, 1),
                    "next_start_s": start,
                    "next_success_s": success,
                }
            )
    print_findings(outcomes)
    return figures


def print_findings(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        if o.skipped:
            continue
        lines = [*o.exits]
        if o.lost:
            states = Counter(o.final.get(t, {}).get("status", "never read") for t in o.lost)
            lines.append(f"lost {len(o.lost)} by status {dict(states)}: {sorted(o.lost)[:5]}")
        if o.twice:
            lines.append(
                f"recorded twice: { {t: o.succeeded_counts[t] for t in sorted(o.twice)[:5]} }"
            )
        silent = [
            t
            for t in o.accepted
            if o.final.get(t, {}).get("status") == "succeeded" and t not in o.succeeded_counts
        ]
        if silent:
            lines.append(f"succeeded without a succeeded event: {len(silent)}: {silent[:5]}")
        if o.unanswered:
            lines.append(f"ran though not answered 201, by answer: {dict(o.unanswered)}")
        if o.submit_errors:
            lines.append(f"submit/cancel refusals and errors: {dict(o.submit_errors)}")
        if lines:
            print(f"\n[{o.pairing}]")
            for line in lines:
                print(f"  - {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 10)))
    parser.add_argument("--pairings", default=",".join(PAIRINGS), help=", ".join(PAIRINGS))
    parser.add_argument("--seed", type=int, default=random.randrange(2**31))
    parser.add_argument("--rate", type=float, default=5.0, help="tasks submitted per second")
    parser.add_argument("--drain-s", type=float, default=300.0, help="deadline of each drain")
    parser.add_argument(
        "--no-rabbitmq-stop", action="store_true", help="never stop the shared RabbitMQ"
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs even when all is well")
    args = parser.parse_args()
    names = args.pairings.split(",")
    if unknown := set(names) - set(PAIRINGS):
        parser.error(f"unknown pairings {sorted(unknown)}; known: {', '.join(PAIRINGS)}")
    phase_s = args.minutes * 60 / len(names)
    print(f"soak: {args.minutes:g} min, {phase_s:.0f} s of load per pairing, seed {args.seed}")
    root = Path(tempfile.mkdtemp(prefix="genqueue-soak-"))
    outcomes, failed = [], False
    for name in names:
        print(f"[{name}] {time.strftime('%H:%M:%S')}", flush=True)
        try:
            outcomes.append(run_pairing(name, root / name, phase_s, args.seed, args))
        except Exception as exc:  # the harness could not run this pairing: say so, go on
            failed = True
            outcomes.append(Outcome(name, time.time(), skipped=f"HARNESS ERROR {exc!r}"))
    figures = report(outcomes)
    failed = failed or any(o.lost or o.twice for o in outcomes)
    print(json.dumps({"seed": args.seed, "minutes": args.minutes, **figures}))
    if failed or args.keep:
        print(f"logs kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
