"""``debug.*`` kinds: small, predictable handlers for tests, benchmarks and demos."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from genqueue.inputs import InputFile
from genqueue.kinds import TaskContext, kind
from genqueue.retry import RetryPolicy

QUICK_RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.2, max_delay_s=2.0)


class EchoPayload(BaseModel):
    model_config = ConfigDict(extra="allow")


@kind("debug.echo", payload=EchoPayload, queue="debug", timeout_s=30.0)
async def echo(payload: EchoPayload, ctx: TaskContext) -> dict[str, Any]:
    """Return the payload as the result (no-op tasks for benchmarks)."""
    return payload.model_dump()


class SleepPayload(BaseModel):
    seconds: float = Field(1.0, ge=0.0, le=3600.0)
    steps: int = Field(10, ge=1, le=1000)


@kind("debug.sleep", payload=SleepPayload, queue="debug", timeout_s=3600.0, retry=QUICK_RETRY)
async def sleep(payload: SleepPayload, ctx: TaskContext) -> dict[str, Any]:
    """Sleep in steps, reporting progress after each (cancellable at any moment)."""
    for step in range(1, payload.steps + 1):
        await asyncio.sleep(payload.seconds / payload.steps)
        ctx.progress(step / payload.steps, f"step {step}/{payload.steps}")
    return {"slept_s": payload.seconds}


class FailPayload(BaseModel):
    message: str = "failed on purpose"
    fail_times: int = Field(1_000_000, ge=0, description="attempts that fail before success")


@kind("debug.fail", payload=FailPayload, queue="debug", timeout_s=30.0, retry=QUICK_RETRY)
async def fail(payload: FailPayload, ctx: TaskContext) -> dict[str, Any]:
    """Raise on the first ``fail_times`` attempts, then succeed (exercises retries)."""
    if ctx.attempt <= payload.fail_times:
        raise RuntimeError(f"{payload.message} (attempt {ctx.attempt})")
    return {"succeeded_on_attempt": ctx.attempt}


class HangPayload(BaseModel):
    seconds: float = Field(60.0, ge=0.0, le=3600.0)


@kind(
    "debug.hang",
    payload=HangPayload,
    queue="debug",
    timeout_s=1.0,
    retry=RetryPolicy(max_attempts=2, base_delay_s=0.1, max_delay_s=0.2),
)
async def hang(payload: HangPayload, ctx: TaskContext) -> dict[str, Any]:
    """Sleep past the kind's 1 s timeout (exercises timeouts)."""
    await asyncio.sleep(payload.seconds)
    return {}


class SpinPayload(BaseModel):
    seconds: float = Field(5.0, ge=0.0, le=3600.0)


@kind("debug.spin", payload=SpinPayload, queue="debug", timeout_s=3600.0, executor="process")
def spin(payload: SpinPayload, ctx: TaskContext) -> dict[str, Any]:
    """Burn CPU in a pool process without ever looking at cancellation (needs a hard stop)."""
    deadline = time.monotonic() + payload.seconds
    loops = 0
    while time.monotonic() < deadline:
        loops += 1
        if loops % 200_000 == 0:
            ctx.progress(1 - (deadline - time.monotonic()) / max(payload.seconds, 1e-9))
    return {"loops": loops}


class InspectPayload(BaseModel):
    file: InputFile
    as_image: bool = False


@kind("debug.inspect", payload=InspectPayload, queue="debug", timeout_s=30.0)
def inspect(payload: InspectPayload, ctx: TaskContext) -> dict[str, Any]:
    """Read an input file (upload, path under the input root, or inline) and describe it."""
    data = ctx.inputs.read(payload.file)
    found: dict[str, Any] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if payload.as_image:
        image = ctx.inputs.image(payload.file, "file")
        found |= {"format": image.format, "width": image.width, "height": image.height}
    return found


class EmitPayload(BaseModel):
    event_type: str = Field("debug.note", max_length=100)
    count: int = Field(1, ge=0, le=100)


@kind("debug.emit", payload=EmitPayload, queue="debug", timeout_s=30.0, executor="process")
def emit(payload: EmitPayload, ctx: TaskContext) -> dict[str, Any]:
    """Raise ``count`` events of ``event_type`` from a pool process (exercises ctx.emit)."""
    for n in range(payload.count):
        ctx.emit(payload.event_type, {"n": n})
    return {"emitted": payload.count}


KINDS = [echo, sleep, fail, hang, spin, inspect, emit]
