"""The renderer's toolbox: prompt vocabulary, palettes and small NumPy/Pillow array helpers.

Everything here is pure data or a pure function on arrays, shared by the ``render_*`` modules so
each of them can stay about one kind of picture-making.
"""

import colorsys
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

# The public names; render.py re-exports them (they live here so every module can see them).
Style = Literal["default", "photorealistic", "artistic", "cartoon", "abstract"]
STYLES: tuple[Style, ...] = ("default", "photorealistic", "artistic", "cartoon", "abstract")

F32 = npt.NDArray[np.float32]
Arr = npt.NDArray[np.floating[Any]]  # what float32 arithmetic is typed as by NumPy's stubs
RGB = tuple[float, float, float]
Idx = slice | tuple[slice, slice]

VOCAB = """
sunset: sunset sunrise dusk dawn evening twilight golden
night: night midnight moon moonlight moonlit star starry dark
space: space galaxy nebula cosmic cosmos universe planet astronaut
day: noon sunny day daylight morning bright summer
mountain: mountain peak alps hill valley cliff volcano range
water: ocean sea lake river beach water coast bay harbor harbour reflection wave pond
forest: forest tree wood woods pine jungle woodland
city: city town skyline building street urban cyberpunk downtown tower skyscraper
desert: desert dune sand sahara canyon
snow: snow snowy winter ice frozen glacier arctic
flower: flower garden meadow field tulip rose spring blossom bloom
fire: fire flame volcano lava burning inferno ember blaze
rain: rain rainy storm stormy thunder drizzle
cloud: cloud cloudy overcast fog foggy mist misty"""
TAGS = {k: frozenset(v.split()) for k, v in (ln.split(":") for ln in VOCAB.split("\n")[1:])}
HUES = dict(
    red=0.0, orange=0.07, gold=0.12, yellow=0.15, green=0.33, teal=0.47, cyan=0.5,
    blue=0.6, violet=0.74, purple=0.77, magenta=0.86, pink=0.92,
)  # fmt: skip
# Sky stops (top, middle, horizon), light colour and ambient level per time of day.
SKIES: dict[str, tuple[RGB, RGB, RGB, RGB, float]] = {
    "day": ((0.15, 0.36, 0.78), (0.40, 0.62, 0.91), (0.80, 0.89, 0.97), (1.0, 0.97, 0.88), 1.0),
    "sunset": ((0.13, 0.12, 0.34), (0.80, 0.38, 0.42), (1.0, 0.70, 0.36), (1.0, 0.8, 0.62), 0.7),
    "night": ((0.01, 0.015, 0.05), (0.03, 0.05, 0.13), (0.10, 0.14, 0.27), (0.9, 0.92, 1.0), 0.3),
    "space": ((0.0, 0.0, 0.015), (0.02, 0.01, 0.05), (0.05, 0.03, 0.10), (1.0, 0.93, 0.85), 0.4),
    "grey": ((0.34, 0.38, 0.44), (0.52, 0.56, 0.61), (0.72, 0.74, 0.77), (0.9, 0.9, 0.92), 0.65),
}
MATERIALS: dict[str, RGB] = dict(
    rock=(0.36, 0.38, 0.46), snow=(0.92, 0.95, 1.0), grass=(0.26, 0.46, 0.18),
    tree=(0.09, 0.24, 0.15), sand=(0.93, 0.72, 0.46), water=(0.07, 0.20, 0.30),
    city=(0.26, 0.28, 0.34), window=(1.0, 0.82, 0.48), ember=(0.2, 0.15, 0.12),
)  # fmt: skip
FIRE = np.array([(0, 0, 0), (0.5, 0.03, 0), (0.95, 0.32, 0.03), (1, 0.72, 0.22), (1, 0.96, 0.75)])
FLOWERS: list[RGB] = [(0.95, 0.2, 0.3), (1, 0.8, 0.2), (0.95, 0.5, 0.8), (1, 1, 1), (0.6, 0.4, 1)]
COMBOS = ["mountain water", "mountain forest", "water forest", "desert", "city water",
          "flower mountain", "forest snow mountain"]  # fmt: skip
LUMA = np.array([0.3, 0.59, 0.11], np.float32)


def f32(x: object) -> F32:
    """Anything array-like (tuples, arrays, PIL images) as float32."""
    return np.asarray(x, dtype=np.float32)


def noise(rng: np.random.Generator, h: int, w: int, cy: float, cx: float) -> F32:
    """Smooth value noise: a random lattice upsampled bicubically by Pillow (fast, in C)."""
    gy, gx = max(1, round(cy)), max(1, round(cx))
    lattice = Image.fromarray(rng.random((gy + 3, gx + 3), dtype=np.float32))
    return f32(lattice.resize((w, h), Image.Resampling.BICUBIC, box=(1, 1, gx + 1, gy + 1)))


def resize(a: Arr, w: int, h: int, method: Image.Resampling) -> F32:
    planes = [a] if a.ndim == 2 else [a[..., c] for c in range(a.shape[2])]
    out = [f32(Image.fromarray(np.ascontiguousarray(p, np.float32)).resize((w, h), method))
           for p in planes]  # fmt: skip
    return out[0] if a.ndim == 2 else np.stack(out, axis=-1)


def blur(a: Arr, factor: int) -> F32:
    """Cheap wide blur (box downsample, bicubic upsample): plenty for glows and bloom."""
    h, w = a.shape[:2]
    small = resize(a, max(1, w // factor), max(1, h // factor), Image.Resampling.BOX)
    return resize(small, w, h, Image.Resampling.BICUBIC)


def shift(a: Arr, dy: int, dx: int) -> Arr:
    """``a`` sampled at (y + dy, x + dx) with clamped edges (np.roll would wrap around)."""
    ys = np.clip(np.arange(a.shape[0]) + dy, 0, a.shape[0] - 1)
    return a[ys][:, np.clip(np.arange(a.shape[1]) + dx, 0, a.shape[1] - 1)]


def composite(dst: Arr, col: Arr | RGB, alpha: Arr) -> None:
    """Alpha-composite ``col`` over ``dst`` in place (in place keeps 2048px renders lean)."""
    dst += (f32(col) - dst) * alpha[..., None]


def mix(a: RGB | Arr, b: RGB | Arr, t: float | Arr) -> F32:
    return f32(f32(a) + (f32(b) - f32(a)) * t)


def hsv(col: Arr | RGB, hue: float = 0.0, sat: float = 1.0, lift: float = 0.0) -> F32:
    """Rotate hue and scale saturation: every prompt word shifts the palette a little."""
    h, s, v = colorsys.rgb_to_hsv(*(float(x) for x in f32(col)))
    return f32(colorsys.hsv_to_rgb((h + hue) % 1.0, min(1.0, s * sat), max(v, lift)))


def to_u8(canvas: Arr) -> npt.NDArray[np.uint8]:
    return np.asarray(np.clip(canvas * 255 + 0.5, 0, 255), np.uint8)
