"""Images for the feature tests and benchmark: the astronaut photo the repo ships, procedural
scenes from the built-in renderer, and the edits a copy of a picture goes through (rotated,
rescaled, brightened) that must not stop it finding its original."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageEnhance

from genqueue.handlers.render import render_image
from genqueue.handlers.render_kit import Style

ASTRONAUT = Path(__file__).parent / "data" / "astronaut.jpg"
PROMPTS = [
    "a lighthouse at sunset",
    "snowy mountains at night",
    "a red fox in an autumn forest",
    "a city skyline in the rain",
    "ocean waves on a rocky shore",
    "desert dunes under a blue sky",
    "a field of sunflowers",
    "an abstract neon spiral",
    "a green tropical island",
]
STYLES: list[Style] = ["photorealistic", "artistic", "cartoon", "abstract", "default"]


def astronaut() -> Image.Image:
    with Image.open(ASTRONAUT) as image:
        return image.convert("RGB")


def scene(i: int, size: int = 320) -> Image.Image:
    """A distinct picture per ``i`` (prompt, style and seed all vary)."""
    prompt = PROMPTS[i % len(PROMPTS)]
    return render_image(prompt, size, size, STYLES[i % len(STYLES)], seed=1000 + i, steps=12)


def gallery(n: int) -> list[Image.Image]:
    """The astronaut and ``n - 1`` scenes."""
    return [astronaut(), *(scene(i) for i in range(n - 1))]


def edited(image: Image.Image) -> Image.Image:
    """The same picture rotated 8 degrees, scaled to 3/4 and brightened by 20 %."""
    rotated = image.rotate(8, resample=Image.Resampling.BILINEAR, expand=False)
    smaller = rotated.resize((image.width * 3 // 4, image.height * 3 // 4))
    return ImageEnhance.Brightness(smaller).enhance(1.2)


def encode(image: Image.Image, format: str = "JPEG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=format, quality=90)
    return out.getvalue()


def clock_face(size: int = 256) -> Image.Image:
    """A drawn analog clock: dial, twelve ticks, two hands; EfficientNet calls it one."""
    import math

    from PIL import ImageDraw

    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    c = size / 2
    draw.ellipse((c - 98, c - 98, c + 98, c + 98), fill="white", outline="black", width=6)
    for hour in range(12):
        t = hour / 12 * 2 * math.pi
        inner, outer = (
            (c + 80 * math.sin(t), c - 80 * math.cos(t)),
            (
                c + 95 * math.sin(t),
                c - 95 * math.cos(t),
            ),
        )
        draw.line((*inner, *outer), fill="black", width=5)
    draw.line((c, c, c, c - 68), fill="black", width=7)
    draw.line((c, c, c + 52, c), fill="black", width=7)
    return image
