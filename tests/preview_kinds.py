"""Test-only kinds module: ``test.preview-*`` show ``frames`` flat grey pictures (grey level
``10 * n + 5`` for frame n, so a decoded preview tells which frame it was), one every
``frame_s``, through ``ctx.preview``: on the event loop, in a thread and in a pool process
(``--kinds tests.preview_kinds`` on the API and the workers). With ``gate``, the run ends only
once that file exists, so a test holds a task running for exactly as long as it needs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from genqueue import TaskContext, kind
from tests.helpers import wait_for, wait_until

QUEUE = "previews"


class Frames(BaseModel):
    frames: int = Field(12, ge=1, le=25)
    frame_s: float = Field(0.1, ge=0.0, le=1.0)  # the work each frame stands for
    gate: str | None = None  # a file path: after its last frame, the run waits for it


def grey_of(frame: int) -> int:
    return 10 * frame + 5


def picture(frame: int) -> npt.NDArray[np.uint8]:
    return np.full((480, 640, 3), grey_of(frame), np.uint8)


def show(payload: Frames, ctx: TaskContext, n: int) -> None:
    ctx.preview(picture(n))
    ctx.progress((n + 1) / payload.frames, f"frame {n + 1}/{payload.frames}")


def film(payload: Frames, ctx: TaskContext) -> dict[str, Any]:
    for n in range(payload.frames):
        time.sleep(payload.frame_s)  # the work of one frame
        show(payload, ctx, n)
    if payload.gate:
        gate = Path(payload.gate)
        wait_until(gate.exists, timeout_s=50.0, message=f"gate {gate} opened")
    return {"frames": payload.frames}


@kind("test.preview-thread", payload=Frames, queue=QUEUE, executor="thread")
def in_thread(payload: Frames, ctx: TaskContext) -> dict[str, Any]:
    """Show the frames from a worker thread."""
    return film(payload, ctx)


@kind("test.preview-process", payload=Frames, queue=QUEUE, executor="process")
def in_process(payload: Frames, ctx: TaskContext) -> dict[str, Any]:
    """Show the frames from a pool process."""
    return film(payload, ctx)


@kind("test.preview-async", payload=Frames, queue=QUEUE)
async def on_loop(payload: Frames, ctx: TaskContext) -> dict[str, Any]:
    """Show the frames from the event loop."""
    for n in range(payload.frames):
        await asyncio.sleep(payload.frame_s)  # the work of one frame
        show(payload, ctx, n)
    if payload.gate:
        gate = Path(payload.gate)

        async def opened() -> bool:
            return gate.exists()

        await wait_for(opened, timeout_s=50.0, message=f"gate {gate} opened")
    return {"frames": payload.frames}
