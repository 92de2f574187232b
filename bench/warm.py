"""Warm processes: how long a local ``video.generate`` waits before its render starts, in a new
process per video (how it ran before ``genqueue.pools``) and in the worker's warm one.

    python -m bench.warm [--videos 10]

Each figure is the time from asking the pool to run the render to its first progress report
(the keyframe starting): process start-up plus the imports of the renderer (PyAV, NumPy,
Pillow and the procedural renderer), then the first call. Ratios matter more than absolutes on
a shared machine; the first video of the warm pool pays what every video paid before.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from genqueue.artifacts import ArtifactStore
from genqueue.handlers.video.local import render_in_pool
from genqueue.handlers.video.models import VideoGenerate
from genqueue.inputs import InputReader
from genqueue.pools import KillablePool
from genqueue.settings import load_settings
from genqueue.worker.execution import LocalContext

PAYLOAD = VideoGenerate(prompt="a lighthouse", duration_s=1, resolution="240p", fps=12)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--videos", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cold, warm = asyncio.run(measure(args.videos, Path(tmp)))
    print(f"video.generate local, {args.videos} videos: wait from run to the render's start")
    print(f"  a new process per video (before): median {statistics.median(cold) * 1e3:.0f} ms")
    print(f"  warm pool (now): first {warm[0] * 1e3:.0f} ms, tenth {warm[-1] * 1e3:.0f} ms,")
    print(f"    median of the later ones {statistics.median(warm[1:]) * 1e3:.0f} ms")
    print(
        f"  later videos start {statistics.median(cold) / statistics.median(warm[1:]):.0f}x sooner"
    )


if __name__ == "__main__":
    main()
