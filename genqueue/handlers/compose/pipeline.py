"""One composition from start to end: load, cut out, background, layout, shadow, caption,
encode. Runs in a worker's pool process; everything comes from the payload and the context."""

from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image, ImageOps

from genqueue.handlers.compose import cutout, layout
from genqueue.handlers.compose.models import (
    Background,
    ComposePayload,
    ComposeResult,
    CutoutUsed,
)
from genqueue.kinds import TaskContext

DEFAULT_SIDE = 512
IMAGE, MASK = "image.png", "mask.png"


class _Stages:
    """Milliseconds per stage, and a progress report as each one starts."""

    ORDER = ("load", "cutout", "background", "layout", "shadow", "caption", "encode")

    def __init__(self, ctx: TaskContext) -> None:
        self.ctx = ctx
        self.ms: dict[str, float] = {}
        self._current: str | None = None
        self._since = time.perf_counter()

    def start(self, stage: str) -> None:
        self._close()
        self._current = stage
        self.ctx.progress(self.ORDER.index(stage) / len(self.ORDER), stage)

    def _close(self) -> None:
        now = time.perf_counter()
        if self._current is not None:
            self.ms[self._current] = round((now - self._since) * 1000, 2)
        self._since = now

    def finish(self) -> dict[str, float]:
        self._close()
        self._current = None
        return self.ms


def output_size(payload: ComposePayload, uploaded: Image.Image | None) -> tuple[int, int]:
    """The requested size; a missing side follows the uploaded background's aspect ratio (or
    is 512), and an upload larger than the 2048 px limit is fitted inside it."""
    if payload.width and payload.height:
        return payload.width, payload.height
    if uploaded is None:
        w = payload.width or payload.height or DEFAULT_SIDE
        return w, w
    ratio = uploaded.width / uploaded.height
    if payload.width:
        return payload.width, max(64, min(2048, round(payload.width / ratio)))
    if payload.height:
        return max(64, min(2048, round(payload.height * ratio))), payload.height
    fit = min(1.0, 2048 / max(uploaded.size))
    return max(64, round(uploaded.width * fit)), max(64, round(uploaded.height * fit))


def make_background(
    spec: Background, size: tuple[int, int], uploaded: Image.Image | None
) -> Image.Image:
    if uploaded is not None:
        return ImageOps.fit(uploaded.convert("RGB"), size, Image.Resampling.LANCZOS)
    if spec.colour is not None:
        return Image.new("RGB", size, layout.hex_rgb(spec.colour))
    from genqueue.handlers.render import render_image

    assert spec.prompt is not None
    return render_image(spec.prompt, size[0], size[1], style=spec.style, seed=spec.seed, steps=12)


def cut_out(image: Image.Image, payload: ComposePayload) -> tuple[Image.Image, CutoutUsed]:
    """The foreground as RGBA with its alpha, and how the alpha was obtained."""
    image = ImageOps.exif_transpose(image)
    alpha = np.asarray(image.getchannel("A")) if "A" in image.getbands() else None
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        alpha = np.asarray(image.getchannel("A"))
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    mode: CutoutUsed = "none"  # also when "alpha" is asked of an image without one
    mask = np.full(rgb.shape[:2], 255, np.uint8)
    wanted = payload.cutout
    if wanted == "auto":
        wanted = "alpha" if cutout.has_transparency(alpha) else "grabcut"
    if wanted == "alpha" and alpha is not None:
        mode, mask = "alpha", alpha
    elif wanted == "grabcut":
        mode, hard = "grabcut", cutout.grabcut_mask(rgb, "foreground")
        rgb = cutout.without_spill(rgb, hard, payload.feather)
        mask = cutout.feather(hard, payload.feather)
    rgba = np.dstack([rgb, mask]).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA"), mode


def run_compose(payload: ComposePayload, ctx: TaskContext) -> ComposeResult:
    started = time.perf_counter()
    stages = _Stages(ctx)
    stages.start("load")
    foreground = ctx.inputs.image(payload.foreground, "foreground")
    uploaded = None
    if payload.background.image is not None:
        uploaded = ctx.inputs.image(payload.background.image, "background.image")
    stages.start("cutout")
    rgba, mode = cut_out(foreground, payload)
    stages.start("background")
    size = output_size(payload, uploaded)
    canvas = make_background(payload.background, size, uploaded).convert("RGBA")
    stages.start("layout")
    cropped, visible = layout.crop_to_content(rgba)
    sprite = layout.transform(cropped, visible, size, payload.layout)
    at = layout.position(sprite, size, payload.layout)
    stages.start("shadow")
    if payload.shadow is not None and payload.shadow.opacity > 0:
        canvas = layout.drop_shadow(canvas, sprite, at, payload.shadow)
    canvas = layout.place(canvas, sprite, at)
    stages.start("caption")
    if payload.caption is not None:
        canvas = layout.draw_caption(canvas, payload.caption)
    stages.start("encode")
    data = _png(canvas.convert("RGB"))
    url = ctx.save_artifact(IMAGE, data, "image/png")
    mask_url = None
    if payload.save_mask:
        mask_url = ctx.save_artifact(MASK, _png(rgba.getchannel("A")), "image/png")
    ctx.progress(0.99, "saved")
    return ComposeResult(
        image_url=url,
        mask_url=mask_url,
        width=size[0],
        height=size[1],
        file_size=len(data),
        cutout=mode,
        foreground_box=layout.visible_box(sprite, at, size),
        duration=round(time.perf_counter() - started, 3),
        stage_ms=stages.finish(),
    )


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()
