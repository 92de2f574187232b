"""Per-kind speed on this machine: items/s and p50 latency of each built-in kind's handler,
called directly (no queue) with a real context, on real inputs made here.

    python -m bench.kinds [--runs 5] [--only image.diagnose,video.generate]

Each kind runs once to warm up (imports, model loads), then ``--runs`` times; figures are
sequential (one item at a time), so they are what one worker slot does. ``feature.extract``
has its own bench with batch sizes (bench/features.py).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genqueue.artifacts import ArtifactStore
from genqueue.inputs import InputReader
from genqueue.kinds import load_kinds
from genqueue.worker.execution import LocalContext
from tests import diagnose_scenes as scenes

Inputs = Callable[[Path], dict[str, Any]]


def camera_frame(inputs: Path) -> dict[str, Any]:
    (inputs / "cam.png").write_bytes(scenes.encode(scenes.dark(scenes.blurred(scenes.scene()))))
    return {"image": {"path": "cam.png"}, "camera_id": "bench"}


def product_photo(inputs: Path) -> dict[str, Any]:
    from PIL import Image, ImageDraw

    photo = Image.new("RGB", (400, 400), "white")
    ImageDraw.Draw(photo).ellipse((100, 80, 300, 330), fill=(200, 30, 40))
    photo.save(inputs / "product.png")
    return {"foreground": {"path": "product.png"}, "background": {"prompt": "a beach at dusk"}}


CASES: dict[str, tuple[str, Inputs]] = {
    "image.generate procedural 512": (
        "image.generate",
        lambda _: {"prompt": "a lighthouse at sunset", "width": 512, "height": 512},
    ),
    "image.generate guided 256": (
        "image.generate",
        lambda _: {"prompt": "a red fox", "width": 256, "height": 256, "engine": "guided"},
    ),
    "image.compose": ("image.compose", product_photo),
    "video.generate local 2s 360p": (
        "video.generate",
        lambda _: {"prompt": "snow over a village", "duration_s": 2, "resolution": "360p"},
    ),
    "image.diagnose 640x480": ("image.diagnose", camera_frame),
}


def run_case(kind_name: str, make_payload: Inputs, runs: int, folder: Path) -> list[float]:
    kind = load_kinds().get(kind_name)
    inputs = folder / "inputs"
    inputs.mkdir(exist_ok=True)
    payload = kind.validate_payload(make_payload(inputs))
    root = str(folder / "artifacts")
    times = []
    for n in range(runs + 1):
        ctx = LocalContext(
            f"bench-{n}", 1, ArtifactStore(root), InputReader(root, str(inputs), 10**8)
        )
        started = time.perf_counter()
        result = kind.handler(payload, ctx)
        if inspect.isawaitable(result):
            asyncio.run(_awaited(result))
        if n:  # the first run is the warm-up
            times.append(time.perf_counter() - started)
    return times


async def _awaited(result: Any) -> Any:
    return await result


def main() -> None:
    parser = argparse.ArgumentParser(description="items/s and p50 per built-in kind")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated kind names")
    args = parser.parse_args()
    wanted = {k for k in args.only.split(",") if k}
    print(f"{'kind':<34}{'items/s':>9}{'p50 ms':>9}{'runs':>6}")
    with tempfile.TemporaryDirectory() as folder:
        for label, (kind_name, make_payload) in CASES.items():
            if wanted and kind_name not in wanted:
                continue
            try:
                times = run_case(kind_name, make_payload, args.runs, Path(folder))
            except Exception as exc:  # a kind not installed here: say so, measure the rest
                print(f"{label:<34}  skipped: {type(exc).__name__}: {exc}"[:140])
                continue
            rate = len(times) / sum(times)
            p50 = statistics.median(times) * 1000
            print(f"{label:<34}{rate:>9.2f}{p50:>9.0f}{len(times):>6}")


if __name__ == "__main__":
    main()
