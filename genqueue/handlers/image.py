"""``image.generate``: a prompt rendered to a PNG by the procedural engine (render.py)."""

from __future__ import annotations

import io
import time
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from genqueue.kinds import TaskContext, kind
from genqueue.retry import RetryPolicy

Style = Literal["default", "photorealistic", "artistic", "cartoon", "abstract"]
MIN_SIDE, MAX_SIDE = 64, 2048


class ImageGenerate(BaseModel):
    """What to draw. Sizes are bounded so one request cannot exhaust a worker."""

    prompt: str = Field(min_length=1, max_length=2000)
    width: int = Field(512, ge=MIN_SIDE, le=MAX_SIDE)
    height: int = Field(512, ge=MIN_SIDE, le=MAX_SIDE)
    style: Style = "default"
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    steps: int = Field(20, ge=1, le=150)

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must not be blank")
        return value


class ImageResult(BaseModel):
    image_url: str
    width: int
    height: int
    file_size: int
    duration: float
    generator: str
    seed: int | None
    style: Style


@kind(
    "image.generate",
    payload=ImageGenerate,
    result=ImageResult,
    queue="image",
    timeout_s=300.0,
    retry=RetryPolicy(max_attempts=2, base_delay_s=1.0, max_delay_s=10.0),
    executor="process",
)
def generate(payload: ImageGenerate, ctx: TaskContext) -> ImageResult:
    """Render the prompt procedurally, step by step, and save it as a PNG artifact."""
    from genqueue.handlers.render import render_image

    started = time.perf_counter()

    def on_step(step: int, steps: int) -> None:
        ctx.progress(0.95 * step / steps, f"step {step}/{steps}")

    image = render_image(
        payload.prompt,
        payload.width,
        payload.height,
        style=payload.style,
        seed=payload.seed,
        steps=payload.steps,
        on_step=on_step,
    )
    ctx.progress(0.97, "encoding PNG")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    data = buffer.getvalue()
    url = ctx.save_artifact("image.png", data, "image/png")
    return ImageResult(
        image_url=url,
        width=payload.width,
        height=payload.height,
        file_size=len(data),
        duration=round(time.perf_counter() - started, 3),
        generator="genqueue-procedural/1",
        seed=payload.seed,
        style=payload.style,
    )


KINDS = [generate]
