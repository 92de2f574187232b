"""``image.generate``: a prompt rendered to a PNG by one of two engines.

``procedural`` (the default; render.py): a fast deterministic painter, no model. ``guided``
(handlers/guided/): classifier-guided synthesis with EfficientNet-Lite0 and MiniLM, slower
and model-driven, DeepDream-like; not a diffusion model, and labelled as such in the result.
"""

from __future__ import annotations

import io
import time
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from genqueue.handlers.guided import GENERATOR, guided_models, render_guided
from genqueue.kinds import TaskContext, kind
from genqueue.resources import when
from genqueue.retry import RetryPolicy

Style = Literal["default", "photorealistic", "artistic", "cartoon", "abstract"]
Engine = Literal["procedural", "guided"]
MIN_SIDE, MAX_SIDE = 64, 2048
# "Not blank" as a JSON Schema pattern: some character that Python's str.strip() keeps (its
# whitespace spelled out, as regex engines disagree on \s). The validators give the message.
NOT_BLANK = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


class ImageGenerate(BaseModel):
    """What to draw. Sizes are bounded so one request cannot exhaust a worker."""

    prompt: str = Field(min_length=1, max_length=2000, json_schema_extra={"pattern": NOT_BLANK})
    width: int = Field(512, ge=MIN_SIDE, le=MAX_SIDE)
    height: int = Field(512, ge=MIN_SIDE, le=MAX_SIDE)
    style: Style = "default"
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    steps: int = Field(20, ge=1, le=150)
    engine: Engine = "procedural"

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must not be blank")
        return value


class MatchedClass(BaseModel):
    """An ImageNet class the guided engine matched the prompt to, and its weight in the
    objective (the weights sum to 1)."""

    index: int
    name: str
    similarity: float
    weight: float


class ImageResult(BaseModel):
    image_url: str
    width: int
    height: int
    file_size: int
    duration: float
    generator: str
    seed: int | None
    style: Style
    engine: Engine = "procedural"
    classes: list[MatchedClass] | None = None  # guided engine only


@kind(
    "image.generate",
    payload=ImageGenerate,
    result=ImageResult,
    queue="image",
    timeout_s=300.0,
    retry=RetryPolicy(max_attempts=2, base_delay_s=1.0, max_delay_s=10.0),
    executor="process",
    resources=[when(lambda payload: payload["engine"] == "guided", guided_models)],
    # Both engines draw the same picture for the same payload; without a seed they derive
    # one from the prompt (render_scene.Scene, guided.stable_seed), so those are cached too.
    deterministic=True,
)
def generate(payload: ImageGenerate, ctx: TaskContext) -> ImageResult:
    """Render the prompt (procedural or classifier-guided engine) and save it as a PNG."""
    from genqueue.handlers.render import render_image

    started = time.perf_counter()
    if payload.engine == "guided":
        return _generate_guided(payload, ctx, started)

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
        on_preview=ctx.preview,  # the canvas after each step; throttled and encoded by ctx
    )
    return _save_png(image, payload, ctx, started, generator="genqueue-procedural/1")


def _generate_guided(payload: ImageGenerate, ctx: TaskContext, started: float) -> ImageResult:
    done = render_guided(
        ctx.resource(guided_models),
        payload.prompt,
        payload.width,
        payload.height,
        style=payload.style,
        seed=payload.seed,
        steps=payload.steps,
        on_progress=ctx.progress,
        on_preview=ctx.preview,
    )
    return _save_png(
        done.image,
        payload,
        ctx,
        started,
        generator=GENERATOR,
        engine="guided",
        classes=[MatchedClass(**vars(c)) for c in done.classes],
    )


def _save_png(
    image: Any, payload: ImageGenerate, ctx: TaskContext, started: float, **result: Any
) -> ImageResult:
    """Encode the picture, store it as ``image.png`` and describe it."""
    ctx.progress(0.97, "encoding PNG")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    data = buffer.getvalue()
    return ImageResult(
        image_url=ctx.save_artifact("image.png", data, "image/png"),
        width=payload.width,
        height=payload.height,
        file_size=len(data),
        duration=round(time.perf_counter() - started, 3),
        seed=payload.seed,
        style=payload.style,
        **result,
    )


KINDS = [generate]
