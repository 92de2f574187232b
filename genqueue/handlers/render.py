"""Procedural text-to-image renderer: the engine behind the ``image.generate`` kind.

No model and no network on purpose: the prompt's words choose a palette and scene elements, a
seed drives fractal value noise, and layers are composited with vectorised NumPy (noise lattices
are upsampled by Pillow in C), so renders are deterministic and even 2048x2048 takes seconds.

The engine is split by job: ``render_kit`` (vocabulary, palettes, array helpers),
``render_scene`` (prompt analysis and drawing primitives), ``render_layers`` (landscape layers)
and ``render_styles`` (style passes). This module composes them and holds the public API.
"""

from collections.abc import Callable
from functools import partial
from typing import Any

from PIL import Image

from genqueue.handlers.render_kit import STYLES, Style, to_u8
from genqueue.handlers.render_layers import SceneLayers
from genqueue.handlers.render_styles import StylePasses

__all__ = ["STYLES", "Style", "render_image"]


class _Scene(SceneLayers, StylePasses):
    """One render: the layers and style passes its prompt and style call for, in order."""

    def stages(self) -> list[Callable[[], None]]:
        """The layers, back to front; render_image spreads them over the requested steps."""
        t, h0, h = self.tags, self.h0, self.h
        if self.style == "abstract":
            return [self.abstract, self.flow, self.finish]
        out: list[Callable[[], None]] = [self.sky]
        out += [self.stars] if self.time in ("night", "space") else []
        out += [self.celestial, self.planet if self.time == "space" and h0 == h else self.clouds]
        n = 3 if t & {"mountain", "snow"} else int(bool(t & {"forest", "flower", "water"}))
        out += [partial(self.mountains, i, n) for i in range(n)]
        out += [partial(self.city, 0), partial(self.city, 1)] if "city" in t else []
        if {"water", "forest"} <= t:
            out.append(partial(self.trees, "shore", h0 + 1, 80, (0.02, 0.06), 0.4))
        out += [self.water if "water" in t else self.ground] if h0 < h else []
        out += [partial(self.dunes, i, 3) for i in range(3)] if "desert" in t else []
        if "forest" in t and "water" not in t:
            out.append(partial(self.trees, "mid", h0 + 0.04 * h, 45, (0.05, 0.1), 0.45))
            out.append(partial(self.trees, "near", h0 + 0.16 * h, 15, (0.12, 0.24), 0.1))
        out += [self.flowers] if "flower" in t else []
        out += [self.fire] if "fire" in t else []
        out += [self.weather] if t & {"rain", "snow", "cloud"} else []
        if self.style == "artistic":
            out += [
                partial(self.strokes, "coarse", 0.03, False),
                partial(self.strokes, "fine", 0.012, True),
            ]
        out += [self.cartoon] if self.style == "cartoon" else []
        return [*out, self.finish]


def render_image(
    prompt: str,
    width: int,
    height: int,
    style: Style = "default",
    seed: int | None = None,
    steps: int = 20,
    on_step: Callable[[int, int], None] | None = None,
    on_preview: Callable[[Any], None] | None = None,
) -> Image.Image:
    """Paint ``prompt`` deterministically and return an RGB image of exactly width x height.

    The scene's layers (back to front) are spread over ``steps``, and more steps also buy finer
    noise octaves. ``on_step(step, steps)`` runs after each step; anything it raises (e.g. a
    cancellation) propagates and abandons the render. ``on_preview(canvas)`` runs after each
    step too, before ``on_step``, with the canvas so far (h x w x 3 float32, about 0..1; the
    canvas itself, painted over by later steps: ``ctx.preview`` reads it only when it sends).
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-blank string")
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or not 64 <= value <= 2048:
            raise ValueError(f"{name} must be an integer in 64..2048, got {value!r}")
    if not isinstance(steps, int) or not 1 <= steps <= 150:
        raise ValueError(f"steps must be an integer in 1..150, got {steps!r}")
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    scene = _Scene(prompt, width, height, style, seed, steps)
    stages, done = scene.stages(), 0
    for step in range(1, steps + 1):
        while done < -(-len(stages) * step // steps):  # ceil: stages spread evenly
            stages[done]()
            done += 1
        if on_preview is not None:
            on_preview(scene.canvas)
        if on_step is not None:
            on_step(step, steps)
    return Image.fromarray(to_u8(scene.canvas))
