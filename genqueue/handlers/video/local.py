"""Provider ``local``: a procedural animation of the prompt (animate.py) encoded to H.264 MP4 on
this machine, in a warm process of its own so that a cancel or a timeout kills it at once.

``video.generate`` is one async kind for both providers (the cloud one waits on HTTP for
minutes and must not hold a pool process), so the local render cannot ride on the worker's
process pool through ``executor="process"``. It runs in a pool of its own instead
(``genqueue.pools``, declared as a resource of the kind), and the MP4 comes back up the pipe
and is saved here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from genqueue.handlers.video.models import (
    LOCAL_DEFAULT_DURATION_S,
    LOCAL_DEFAULT_FPS,
    LOCAL_DEFAULT_RESOLUTION,
    VideoGenerate,
    VideoResult,
    frame_size,
)
from genqueue.kinds import TaskContext
from genqueue.pools import process_pool

# The render processes: one per worker (renders use every core through the encoder), kept
# warm between tasks so the imports (about a second) are paid once, not per video.
RENDERER = process_pool("video-render", size=1)

GENERATOR = "genqueue-procedural-video/1"


@dataclass(frozen=True)
class Rendered:
    """An encoded video and what went into it."""

    mp4: bytes
    width: int
    height: int
    fps: int
    frames: int
    seed: int


def render_video(
    payload: VideoGenerate,
    on_progress: Callable[[float, str], None] | None = None,
    on_preview: Callable[[Any], None] | None = None,
) -> Rendered:
    """Render and encode the whole video in this process. Progress: the keyframe up to 10 %,
    then frames (each rendered and handed to the encoder at once) up to 95 %, then muxing.
    ``on_preview(frame)`` sees every frame (``ctx.preview`` sends a few a second)."""
    from genqueue.handlers.video.animate import frames, keyframe, plan_shot, prompt_seed
    from genqueue.handlers.video.encode import encode_mp4

    report = on_progress or (lambda fraction, message: None)
    width, height = frame_size(payload.resolution or LOCAL_DEFAULT_RESOLUTION, payload.aspect_ratio)
    fps = payload.fps or LOCAL_DEFAULT_FPS
    count = max(1, round((payload.duration_s or LOCAL_DEFAULT_DURATION_S) * fps))
    seed = payload.seed if payload.seed is not None else prompt_seed(payload.prompt)
    report(0.01, "rendering the keyframe")
    still = keyframe(payload.prompt, width, height, seed=seed, style=payload.style)
    shot = plan_shot(payload.prompt, seed)
    report(0.1, f"animating {count} frames")
    chunk = max(1, count // 20)

    def on_frame(done: int) -> None:
        if done % chunk == 0 or done == count:
            report(0.1 + 0.85 * done / count, f"frame {done}/{count}")

    filmed = frames(still, shot, width, height, count, fps)
    mp4 = encode_mp4(
        filmed if on_preview is None else _shown(filmed, on_preview),
        width=width,
        height=height,
        fps=fps,
        on_frame=on_frame,
    )
    report(0.97, "muxed MP4")
    return Rendered(mp4, width, height, fps, count, seed)


def render_in_pool(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """The pool-side half of the local provider: runs in a warm process of ``RENDERER``."""
    return asdict(render_video(VideoGenerate.model_validate(payload), ctx.progress, ctx.preview))


def _shown(frames: Iterator[Any], show: Callable[[Any], None]) -> Iterator[Any]:
    """The frames, each shown to ``show`` as it goes to the encoder."""
    for frame in frames:
        show(frame)
        yield frame


async def generate_local(payload: VideoGenerate, ctx: TaskContext) -> VideoResult:
    """Render in a killable warm process, save the MP4, and measure what was saved."""
    from genqueue.handlers.video.encode import probe_mp4

    started = time.perf_counter()
    renderer = ctx.resource(RENDERER)
    out = Rendered(**await renderer.run(render_in_pool, payload.model_dump(mode="json"), ctx))
    info = await asyncio.to_thread(probe_mp4, out.mp4)
    url = await asyncio.to_thread(ctx.save_artifact, "video.mp4", out.mp4, "video/mp4")
    ctx.progress(1.0, "saved video.mp4")
    return VideoResult(
        video_url=url,
        duration_s=info.duration_s,
        width=info.width,
        height=info.height,
        fps=info.fps,
        frames=info.frames,
        file_size=len(out.mp4),
        provider="local",
        generator=GENERATOR,
        seed=out.seed,
        elapsed_s=round(time.perf_counter() - started, 3),
    )
