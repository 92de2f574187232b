"""The runs every bench shares: genqueue on any store and broker, a peer in its own
virtualenv, and the table that sets them beside a ceiling measured in the same run.

genqueue: workers (``python -m genqueue worker``, concurrency 16) start and run one warm-up
task first; then the clock runs from the first submit (``Dispatcher.submit_batch``
in-process, by 500) to the last success. Submit-to-start latency comes from single
submits to idle workers.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from genqueue.backends import open_broker, open_store
from genqueue.dispatch import Dispatcher, TaskRequest
from genqueue.kinds import load_kinds
from genqueue.models import TaskStatus
from genqueue.settings import load_settings


async def genqueue_run(
    store_url: str, broker_url: str, n: int, processes: int, latency_samples: int
) -> dict[str, float]:
    """tasks_per_s and enqueue_per_s, and p50_ms/p99_ms when ``latency_samples`` > 0."""
    settings = load_settings(store=store_url, broker=broker_url)
    store = await open_store(store_url, settings)
    broker = await open_broker(broker_url, settings)
    dispatcher = Dispatcher(store, broker, load_kinds())
    env = {
        **os.environ,
        "GENQUEUE_STORE": store_url,
        "GENQUEUE_BROKER": broker_url,
        "GENQUEUE_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "genqueue", "worker", "--queues", "debug"]
    workers = [
        subprocess.Popen([*command, "--concurrency", "16", "--name", f"bench-{i}"], env=env)
        for i in range(processes)
    ]

    async def succeeded() -> int:
        stats = {s.queue: s.counts for s in await store.queue_stats()}
        return stats.get("debug", {}).get(TaskStatus.SUCCEEDED, 0)

    delays: list[float] = []
    try:
        warm, _ = await dispatcher.submit(TaskRequest(kind="debug.echo"))
        while (await store.get(warm.id)).status != TaskStatus.SUCCEEDED:
            await asyncio.sleep(0.01)
        before = await succeeded()
        started = time.perf_counter()
        for start in range(0, n, 500):
            size = min(500, n - start)
            await dispatcher.submit_batch([TaskRequest(kind="debug.echo")] * size, None)
        enqueued = time.perf_counter()
        while await succeeded() < before + n:
            await asyncio.sleep(0.005)
        finished = time.perf_counter()
        for _ in range(latency_samples):
            task, _ = await dispatcher.submit(TaskRequest(kind="debug.echo"))
            while (now := await store.get(task.id)).started_at is None:
                await asyncio.sleep(0.001)
            delays.append((now.started_at - now.created_at).total_seconds())
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(30)
        await broker.aclose()
        await store.aclose()
    delays.sort()
    figures = {"enqueue_per_s": n / (enqueued - started), "tasks_per_s": n / (finished - started)}
    if delays:
        figures["p50_ms"] = statistics.median(delays) * 1000
        figures["p99_ms"] = delays[max(0, int(len(delays) * 0.99) - 1)] * 1000
    return figures


ROOT = Path(__file__).resolve().parents[1]
Row = tuple[str, int, float, float]  # system, processes, tasks/s, enqueue/s


def peer_run(
    peer: str, n: int, processes: int, env: dict[str, str], prequeued: bool = False
) -> dict[str, float]:
    """One peer end to end (bench/peer_apps/drive.py) from the peers' virtualenv; with
    ``prequeued``, all N are queued before its workers start and only the drain is timed."""
    python = ROOT / ".venv-bench" / "bin" / "python"
    mode = ["prequeued"] if prequeued else []
    out = subprocess.run(
        [str(python), "-m", "bench.peer_apps.drive", peer, str(n), str(processes), *mode],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def print_table(rows: list[Row], ceiling: float, ours: list[str], peers: list[str]) -> None:
    """Every row as tasks/s and a ratio to the ceiling; then each of ``ours`` against the
    fastest peer at the same number of processes."""
    print(f"{'system':<26}{'procs':>6}{'tasks/s':>10}{'x ceiling':>11}{'enqueue/s':>11}")
    for name, procs, rate, enqueue in rows:
        print(f"{name:<26}{procs:>6}{rate:>10.0f}{rate / ceiling:>11.3f}{enqueue:>11.0f}")
    print_ratios(rows, ceiling, ours, peers)


def print_ratios(rows: list[Row], ceiling: float, ours: list[str], peers: list[str]) -> None:
    """Each of ``ours`` against the ceiling and the fastest of ``peers``, per process count."""
    for procs in sorted({r[1] for r in rows if r[0] in ours}):
        contenders = [r for r in rows if r[0] in peers and r[1] == procs]
        for mine in [r for r in rows if r[0] in ours and r[1] == procs]:
            line = f"{procs} process(es): {mine[0]} / ceiling = {mine[2] / ceiling:.2f}"
            if contenders:
                best = max(contenders, key=lambda r: r[2])
                line += f"; / fastest peer ({best[0]}) = {mine[2] / best[2]:.2f}"
            print(line)
