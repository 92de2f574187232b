"""Warm processes and resources: how long a task waits before its work starts, in a new process
per task (a cold start, as every task paid before genqueue.pools and resources) and in the
worker's warm pool.

    python -m bench.warm [--tasks 10]

Two subjects, each timed from asking the pool to run to the run's first progress report:

* ``video.generate`` local (``genqueue.pools.KillablePool``): process start-up plus the imports
  of the renderer (PyAV, NumPy, Pillow, the procedural renderer);
* ``image.generate`` guided (the worker's ``ProcessPool``): process start-up plus the
  ``guided-models`` resource (torch, EfficientNet-Lite0, MiniLM and the class embeddings),
  which the pool process sets up once and keeps.

Ratios matter more than absolutes on a shared machine; the first task of a warm pool pays
what every task paid in a new process.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from genqueue.artifacts import ArtifactStore
from genqueue.handlers.image import ImageGenerate, generate
from genqueue.handlers.video.local import render_in_pool
from genqueue.handlers.video.models import VideoGenerate
from genqueue.inputs import InputReader
from genqueue.pools import KillablePool
from genqueue.settings import load_settings
from genqueue.worker.execution import LocalContext
from genqueue.worker.procpool import Job, ProcessPool

PAYLOAD = VideoGenerate(prompt="a lighthouse", duration_s=1, resolution="240p", fps=12)
GUIDED = ImageGenerate(
    prompt="a red fox", width=96, height=96, steps=2, engine="guided"
).model_dump(mode="json")


class Timed(LocalContext):
    """A context that notes when the first progress report came."""

    first: float | None = None

    def progress(self, fraction: float, message: str = "") -> None:
        if self.first is None:
            self.first = time.perf_counter()
        super().progress(fraction, message)


def _timed(folder: Path, task_id: str) -> Timed:
    root = str(folder / "artifacts")
    return Timed(task_id, 1, ArtifactStore(root), InputReader(root, None, 10**8))


async def video_start(pool: Any, folder: Path, n: int) -> float:
    ctx = _timed(folder, f"v{n}")
    asked = time.perf_counter()
    await pool.run(render_in_pool, PAYLOAD.model_dump(mode="json"), ctx)
    assert ctx.first is not None
    return ctx.first - asked


async def guided_start(pool: Any, folder: Path, n: int) -> float:
    ctx = _timed(folder, f"g{n}")
    root = str(folder / "artifacts")
    job = Job(generate.import_path, GUIDED, f"g{n}", 1, root, ctx.inputs, load_settings())
    asked = time.perf_counter()
    await pool.run(job, ctx)
    assert ctx.first is not None
    return ctx.first - asked


Start = Callable[[Any, Path, int], Awaitable[float]]


async def measure(
    new_pool: Callable[[], Any], start: Start, tasks: int, cold_runs: int, folder: Path
) -> tuple[list[float], list[float]]:
    """Waits of ``cold_runs`` tasks each in a new pool (before), then of ``tasks`` in one."""
    cold = []
    for n in range(cold_runs):
        pool = new_pool()
        try:
            cold.append(await start(pool, folder, n))
        finally:
            await pool.aclose()
    warm_pool = new_pool()
    try:
        warm = [await start(warm_pool, folder, n) for n in range(tasks)]
    finally:
        await warm_pool.aclose()
    return cold, warm


def report(subject: str, cold: list[float], warm: list[float]) -> None:
    print(f"{subject}: wait from run to the work's start")
    print(f"  a new process per task (before): median {statistics.median(cold) * 1e3:.0f} ms")
    print(f"  warm pool (now): first {warm[0] * 1e3:.0f} ms, last {warm[-1] * 1e3:.0f} ms,")
    print(f"    median of the later ones {statistics.median(warm[1:]) * 1e3:.0f} ms")
    print(
        f"  later tasks start {statistics.median(cold) / statistics.median(warm[1:]):.0f}x sooner"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=10)
    args = parser.parse_args()
    settings, n = load_settings(), args.tasks
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video = asyncio.run(measure(lambda: KillablePool(1, settings), video_start, n, n, folder))
        report(f"video.generate local, {n} videos", *video)
        # A cold guided start costs seconds: three tell the median.
        guided = asyncio.run(
            measure(lambda: ProcessPool(1, settings), guided_start, n, min(n, 3), folder)
        )
        report(f"image.generate guided, {n} images", *guided)


if __name__ == "__main__":
    main()
