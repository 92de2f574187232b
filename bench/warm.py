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
from pathlib import Path

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


async def wait_to_start(pool: KillablePool, folder: Path, n: int) -> float:
    root = str(folder / "artifacts")
    ctx = Timed(f"t{n}", 1, ArtifactStore(root), InputReader(root, None, 10**8))
    asked = time.perf_counter()
    await pool.run(render_in_pool, PAYLOAD.model_dump(mode="json"), ctx)
    assert ctx.first is not None
    return ctx.first - asked


async def guided_start(pool: ProcessPool, folder: Path, n: int) -> float:
    root = str(folder / "artifacts")
    ctx = Timed(f"g{n}", 1, ArtifactStore(root), InputReader(root, None, 10**8))
    job = Job(generate.import_path, GUIDED, f"g{n}", 1, root, ctx.inputs, load_settings())
    asked = time.perf_counter()
    await pool.run(job, ctx)
    assert ctx.first is not None
    return ctx.first - asked


async def measure_guided(tasks: int, folder: Path) -> tuple[list[float], list[float]]:
    settings = load_settings()
    cold = []
    for n in range(min(tasks, 3)):  # a cold start costs seconds: three tell the median
        pool = ProcessPool(1, settings)
        try:
            cold.append(await guided_start(pool, folder, n))
        finally:
            await pool.aclose()
    warm_pool = ProcessPool(1, settings)
    try:
        warm = [await guided_start(warm_pool, folder, n) for n in range(tasks)]
    finally:
        await warm_pool.aclose()
    return cold, warm


async def measure(videos: int, folder: Path) -> tuple[list[float], list[float]]:
    settings = load_settings()
    cold = []
    for n in range(videos):  # before: a process of its own per video
        pool = KillablePool(1, settings)
        try:
            cold.append(await wait_to_start(pool, folder, n))
        finally:
            await pool.aclose()
    warm_pool = KillablePool(1, settings)
    try:
        warm = [await wait_to_start(warm_pool, folder, n) for n in range(videos)]
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
    with tempfile.TemporaryDirectory() as tmp:
        cold, warm = asyncio.run(measure(args.tasks, Path(tmp)))
        report(f"video.generate local, {args.tasks} videos", cold, warm)
        cold, warm = asyncio.run(measure_guided(args.tasks, Path(tmp)))
        report(f"image.generate guided, {args.tasks} images", cold, warm)


if __name__ == "__main__":
    main()
