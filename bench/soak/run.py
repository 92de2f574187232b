"""One pairing end to end (deploy, load under faults, drain, read back), and the CLI that
runs each pairing and exits 1 on a lost or twice-recorded task."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import httpx
import pytest

import bench.soak
from bench.soak.deployment import WORKERS, Backends, Deployment
from bench.soak.faults import Faults
from bench.soak.load import Load
from bench.soak.outcome import Outcome, epoch
from bench.soak.report import report
from genqueue.models import FINISHED
from tests.helpers import wait_until

PAIRINGS = {  # name -> (store, broker)
    "sqlite": ("sqlite", "sqlite"),
    "redis": ("redis", "redis"),
    "postgres": ("postgres", "postgres"),
    "postgres+amqp": ("postgres", "amqp"),
    "redis+amqp": ("redis", "amqp"),
}
STALL_S = 60.0  # the drain gives up once nothing finished for this long


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
                created = epoch(http.get(f"/v1/tasks/{task_id}").json().get("created_at")) or 0
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


def main() -> None:
    doc = bench.soak.__doc__
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=doc.split("\n")[0] if doc else None
    )
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
