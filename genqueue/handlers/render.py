"""Procedural text-to-image renderer: the engine behind the ``image.generate`` kind.

No model and no network on purpose: the prompt's words choose a palette and scene elements, a
seed drives fractal value noise, and layers are composited with vectorised NumPy (noise lattices
are upsampled by Pillow in C), so renders are deterministic and even 2048x2048 takes seconds.
"""

import colorsys
import hashlib
import re
import zlib
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

Style = Literal["default", "photorealistic", "artistic", "cartoon", "abstract"]
STYLES: tuple[Style, ...] = ("default", "photorealistic", "artistic", "cartoon", "abstract")

F32 = npt.NDArray[np.float32]
Arr = npt.NDArray[np.floating[Any]]  # what float32 arithmetic is typed as by NumPy's stubs
RGB = tuple[float, float, float]
Idx = slice | tuple[slice, slice]

_VOCAB = """
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
_TAGS = {k: frozenset(v.split()) for k, v in (ln.split(":") for ln in _VOCAB.split("\n")[1:])}
_HUES = dict(
    red=0.0, orange=0.07, gold=0.12, yellow=0.15, green=0.33, teal=0.47, cyan=0.5,
    blue=0.6, violet=0.74, purple=0.77, magenta=0.86, pink=0.92,
)  # fmt: skip
# Sky stops (top, middle, horizon), light colour and ambient level per time of day.
_SKIES: dict[str, tuple[RGB, RGB, RGB, RGB, float]] = {
    "day": ((0.15, 0.36, 0.78), (0.40, 0.62, 0.91), (0.80, 0.89, 0.97), (1.0, 0.97, 0.88), 1.0),
    "sunset": ((0.13, 0.12, 0.34), (0.80, 0.38, 0.42), (1.0, 0.70, 0.36), (1.0, 0.8, 0.62), 0.7),
    "night": ((0.01, 0.015, 0.05), (0.03, 0.05, 0.13), (0.10, 0.14, 0.27), (0.9, 0.92, 1.0), 0.3),
    "space": ((0.0, 0.0, 0.015), (0.02, 0.01, 0.05), (0.05, 0.03, 0.10), (1.0, 0.93, 0.85), 0.4),
    "grey": ((0.34, 0.38, 0.44), (0.52, 0.56, 0.61), (0.72, 0.74, 0.77), (0.9, 0.9, 0.92), 0.65),
}
_MATERIALS: dict[str, RGB] = dict(
    rock=(0.36, 0.38, 0.46), snow=(0.92, 0.95, 1.0), grass=(0.26, 0.46, 0.18),
    tree=(0.09, 0.24, 0.15), sand=(0.93, 0.72, 0.46), water=(0.07, 0.20, 0.30),
    city=(0.26, 0.28, 0.34), window=(1.0, 0.82, 0.48), ember=(0.2, 0.15, 0.12),
)  # fmt: skip
_FIRE = np.array([(0, 0, 0), (0.5, 0.03, 0), (0.95, 0.32, 0.03), (1, 0.72, 0.22), (1, 0.96, 0.75)])
_FLOWERS: list[RGB] = [(0.95, 0.2, 0.3), (1, 0.8, 0.2), (0.95, 0.5, 0.8), (1, 1, 1), (0.6, 0.4, 1)]
_COMBOS = ["mountain water", "mountain forest", "water forest", "desert", "city water",
           "flower mountain", "forest snow mountain"]  # fmt: skip
_LUMA = np.array([0.3, 0.59, 0.11], np.float32)


def _c(x: object) -> F32:
    """Anything array-like (tuples, arrays, PIL images) as float32."""
    return np.asarray(x, dtype=np.float32)


def _noise(rng: np.random.Generator, h: int, w: int, cy: float, cx: float) -> F32:
    """Smooth value noise: a random lattice upsampled bicubically by Pillow (fast, in C)."""
    gy, gx = max(1, round(cy)), max(1, round(cx))
    lattice = Image.fromarray(rng.random((gy + 3, gx + 3), dtype=np.float32))
    return _c(lattice.resize((w, h), Image.Resampling.BICUBIC, box=(1, 1, gx + 1, gy + 1)))


def _resize(a: Arr, w: int, h: int, method: Image.Resampling) -> F32:
    planes = [a] if a.ndim == 2 else [a[..., c] for c in range(a.shape[2])]
    out = [_c(Image.fromarray(np.ascontiguousarray(p, np.float32)).resize((w, h), method))
           for p in planes]  # fmt: skip
    return out[0] if a.ndim == 2 else np.stack(out, axis=-1)


def _blur(a: Arr, factor: int) -> F32:
    """Cheap wide blur (box downsample, bicubic upsample): plenty for glows and bloom."""
    h, w = a.shape[:2]
    small = _resize(a, max(1, w // factor), max(1, h // factor), Image.Resampling.BOX)
    return _resize(small, w, h, Image.Resampling.BICUBIC)


def _shift(a: Arr, dy: int, dx: int) -> Arr:
    """``a`` sampled at (y + dy, x + dx) with clamped edges (np.roll would wrap around)."""
    ys = np.clip(np.arange(a.shape[0]) + dy, 0, a.shape[0] - 1)
    return a[ys][:, np.clip(np.arange(a.shape[1]) + dx, 0, a.shape[1] - 1)]


def _over(dst: Arr, col: Arr | RGB, alpha: Arr) -> None:
    """Alpha-composite ``col`` over ``dst`` in place (in place keeps 2048px renders lean)."""
    dst += (_c(col) - dst) * alpha[..., None]


def _mix(a: RGB | Arr, b: RGB | Arr, t: float | Arr) -> F32:
    return _c(_c(a) + (_c(b) - _c(a)) * t)


def _hsv(col: Arr | RGB, hue: float = 0.0, sat: float = 1.0, lift: float = 0.0) -> F32:
    """Rotate hue and scale saturation: every prompt word shifts the palette a little."""
    h, s, v = colorsys.rgb_to_hsv(*(float(x) for x in _c(col)))
    return _c(colorsys.hsv_to_rgb((h + hue) % 1.0, min(1.0, s * sat), max(v, lift)))


def _to_u8(canvas: Arr) -> npt.NDArray[np.uint8]:
    return np.asarray(np.clip(canvas * 255 + 0.5, 0, 255), np.uint8)


class _Scene:
    """One render: prompt analysis, palette, layout, and the layer stages that paint it."""

    def __init__(self, prompt: str, w: int, h: int, style: Style, seed: int | None, steps: int):
        self.w, self.h, self.style, self.s = w, h, style, min(w, h)
        words = re.findall(r"[a-z]+", prompt.lower())
        self.tags = {t for t, v in _TAGS.items() if any(x in v or x[:-1] in v for x in words)}
        self.key = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")
        self.seed = self.key if seed is None else seed % 2**64
        u = self.u = self.rng("layout").random(16)
        fallback = ("day", "sunset", "day", "night")[int(u[0] * 4)]
        if self.tags & {"rain", "cloud"}:
            fallback = "grey"
        elif self.tags & {"flower", "desert", "snow"}:
            fallback = "day"
        times = ("space", "night", "sunset", "day")
        self.time = next((t for t in times if t in self.tags), fallback)
        if not self.tags - {"night", "day", "sunset", "rain", "cloud", "space"}:
            self.tags |= set() if self.time == "space" else set(_COMBOS[int(u[1] * 7)].split())
        top, mid, hor, light, self.amb = _SKIES[self.time]
        if "fire" in self.tags and self.time != "night":
            mid, hor = (0.55, 0.2, 0.15), (0.95, 0.5, 0.2)
        named = {"top": top, "mid": mid, "hor": hor, "light": light, **_MATERIALS}
        self.pal = {k: _hsv(c, (u[2] - 0.5) * 0.08) for k, c in named.items()}
        hue = next((_HUES[x] for x in words if x in _HUES), None)
        if hue is not None:  # a named colour pulls the whole palette toward it
            for k, c in self.pal.items():
                v = max(colorsys.rgb_to_hsv(*(float(x) for x in c))[2], 0.05)
                self.pal[k] = _mix(c, colorsys.hsv_to_rgb(hue, 0.7, v), 0.4)
        # More steps buy finer noise octaves, like a sampler refining detail.
        self.octaves = min({"cartoon": 4, "abstract": 6}.get(style, 9), 3 + steps // 4)
        self.haze = 1.35 if style == "photorealistic" else 1.0
        bare = self.tags <= {"space", "night", "day", "sunset"}
        self.h0 = h if bare else int(h * (0.56 + 0.12 * u[3]))
        self.yy = np.arange(h, dtype=np.float32)[:, None]
        self.xx = np.arange(w, dtype=np.float32)[None, :]
        up = {"sunset": 0.86, "day": 0.35}.get(self.time, 0.3) - 0.12 * u[5]
        self.sun = (w * (0.2 + 0.6 * u[4]), max(self.h0, h * 0.5) * up)
        self.side = 1 if self.sun[0] > w / 2 else -1
        self.dist = _c(np.hypot(self.xx - self.sun[0], self.yy - self.sun[1]))
        self.canvas: Arr = np.zeros((h, w, 3), np.float32)
        self.ink, self.ref = np.zeros((h, w), np.float32), self.canvas

    def rng(self, name: str) -> np.random.Generator:
        """Independent stream per layer, so image size or octave caps never shift other layers."""
        return np.random.default_rng([self.seed, self.key, zlib.crc32(name.encode())])

    def fbm(self, name: str, h: int, w: int, cells: float, aspect: float = 1.0,
            octaves: int = 0, gain: float = 0.5) -> F32:  # fmt: skip
        """Fractal value noise normalised to zero mean, unit deviation."""
        rng, total, amp = self.rng(name), np.zeros((h, w), np.float32), 1.0
        cy, cx = cells * h / self.s, cells * w / self.s * aspect
        for _ in range(octaves or self.octaves):
            if (cy > h / 2 and h > 1) or cx > w / 2:
                break
            total += amp * _noise(rng, h, w, cy, cx)
            amp, cy, cx = amp * gain, cy * 2, cx * 2
        return _c((total - total.mean()) / (total.std() + 1e-6))

    def profile(self, name: str, cells: float, gain: float, octaves: int = 9) -> F32:
        p = self.fbm(name, 1, self.w, cells, octaves=octaves, gain=gain)[0]
        return _c((p - p.min()) / (p.max() - p.min() + 1e-6))

    def over(self, at: Idx, col: Arr | RGB, alpha: Arr, ink: bool = True) -> None:
        """Composite onto the canvas; for cartoons also track silhouette rims as ink lines."""
        _over(self.canvas[at], col, alpha)
        if self.style == "cartoon":
            inside = np.broadcast_to(alpha > 0.5, self.ink[at].shape)
            rim = np.zeros_like(inside)  # the 50% contour, one pixel wide
            rim[1:] = inside[1:] != inside[:-1]
            rim[:, 1:] |= inside[:, 1:] != inside[:, :-1]
            self.ink[at] = np.where(rim & ink, 1.0, self.ink[at] * (1 - alpha))

    def lit(self, base: RGB | Arr, shade: float | Arr = 1.0) -> F32:
        """Material colour under the scene's light: sky-tinted fill (purple shadows at dusk,
        blue by day) plus direct light from the sun or moon."""
        fill = 0.4 + 0.6 * _mix(self.pal["top"], self.pal["mid"], 0.5)
        direct = self.pal["light"] * (0.75 * self.amb)
        return _c(_c(base) * (0.3 * self.amb * fill + direct * _c(shade)[..., None]))

    def hazed(self, col: Arr, amount: Arr | float) -> F32:
        """Atmospheric perspective: distant things fade toward the horizon colour."""
        a = np.clip(_c(amount) * self.haze, 0, 0.92)
        haze = _mix(self.pal["hor"], self.pal["mid"], 0.35)
        return _c(col + (haze - col) * (a[..., None] if a.ndim else a))

    def box(self, cx: float, cy: float, r: float) -> tuple[slice, slice]:
        y0, x0 = max(0, int(cy - r)), max(0, int(cx - r))
        return np.s_[y0 : max(y0, min(self.h, int(cy + r) + 2)), x0 : min(self.w, int(cx + r) + 2)]

    # ---- sky ---------------------------------------------------------------------------------
    def sky(self) -> None:
        p, t = self.pal, np.clip(np.arange(self.h) / max(self.h0, 1), 0, 1) ** 0.9
        stops = np.stack([p["top"], p["mid"], p["hor"]])
        grad = np.stack([np.interp(t, [0, 0.6, 1], stops[:, c]) for c in range(3)], axis=1)
        self.canvas[:] = grad[:, None, :]
        strength = {"sunset": 0.6, "day": 0.35}.get(self.time, 0.1)
        self.canvas += (np.exp(-self.dist / (0.22 * self.s)) * strength)[..., None] * p["light"]

    def stars(self) -> None:
        """Star field (a few bright ones with halos), a Milky Way band, and nebulae in space."""
        rng, h, w, space = self.rng("stars"), self.h, self.w, self.time == "space"
        n = h * w // (250 if space else 450)
        field = _c(np.bincount(rng.integers(0, h * w, n), rng.random(n) ** 5 * 2.2, h * w))
        field = field.reshape(h, w)
        fade = np.clip((self.h0 - self.yy) / (0.45 * self.h0), 0, 1)
        band = np.abs((self.yy / h - 0.15) - (self.xx / w) * (0.7 * self.u[6] - 0.35)) / 0.16
        dust = np.clip(self.fbm("milky", h, w, 3, gain=0.6) * 0.35 + 0.5, 0, 1)
        glow = np.exp(-band * band) * dust * 0.16 * fade
        self.canvas += glow[..., None] * _mix(self.pal["mid"], (0.6, 0.6, 0.8), 0.6)
        self.canvas += ((field + _blur(field, 3) * 2.5) * fade)[..., None] * 0.97
        nebulae = (((0.55, 0.12, 0.62), 0.1), ((0.05, 0.45, 0.62), 0.0)) if space else ()
        for i, (col, bias) in enumerate(nebulae):
            neb = np.clip(self.fbm(f"neb{i}", h, w, 2.5 - i / 2, gain=0.6) * 0.45 + bias, 0, 1)
            self.canvas += (neb * neb)[..., None] * _hsv(col, self.u[2] - 0.5)

    def celestial(self) -> None:
        r = self.s * {"sunset": 0.085, "space": 0.03}.get(self.time, 0.055)
        at = self.box(*self.sun, r + 0.2 * self.s)
        col = self.pal["light"] * (1.0 if self.time in ("night", "grey") else 1.15)
        dist = self.dist[at]
        if self.time in ("night", "grey"):
            h, w = dist.shape
            craters = np.clip(self.fbm("moon", h, w, 1.5 * self.s / r, octaves=3), -2, 2)
            col = col * (0.86 + 0.08 * craters)[..., None]
        self.over(at, col, np.clip(r - dist + 0.5, 0, 1))
        corona = np.exp(-np.maximum(dist - r, 0) / (0.025 * self.s))
        self.canvas[at] += corona[..., None] * self.pal["light"] * 0.35

    def planet(self) -> None:
        u, s = self.u, self.s
        r, cx, cy = (
            s * (0.28 + 0.12 * u[7]),
            self.w * (0.25 + 0.5 * u[8]),
            self.h * (0.8 + u[9] / 10),
        )
        nx, ny = (self.xx - cx) / r, (self.yy - cy) / r
        rad = np.sqrt(nx * nx + ny * ny)
        lx, ly = (self.sun[0] - cx) / self.w, (self.sun[1] - cy) / self.h
        nz = np.sqrt(np.clip(1 - rad * rad, 0, 1))
        lam = np.clip((nx * lx + ny * ly + nz * 0.7) / np.sqrt(lx * lx + ly * ly + 0.5), 0, 1)
        warp = self.fbm("bands", self.h, self.w, 3, aspect=0.25, octaves=4)
        bands = (0.5 + 0.5 * np.sin(ny * 9 + warp * 0.8))[..., None]
        surf = _mix(_hsv((0.85, 0.55, 0.35), u[10] - 0.5), (0.35, 0.3, 0.55), bands)
        self.over(np.s_[:], surf * (0.03 + lam[..., None]), np.clip((1 - rad) * r + 0.5, 0, 1))
        rim = np.exp(-np.abs(rad - 1) * r / (0.02 * s)) * np.clip(lam + 0.2, 0, 1)
        self.canvas += rim[..., None] * _c((0.15, 0.28, 0.5))

    def clouds(self) -> None:
        """Fractal clouds lit from the sun's side: density minus density toward the light."""
        top, p = max(8, int(self.h0 * 0.92)), self.pal
        n = self.fbm("clouds", top, self.w, 2.5, aspect=0.45)
        cover = {"grey": -0.5, "day": 0.45, "sunset": 0.3}.get(self.time, 0.7)
        dens = np.clip((n - cover) * 0.9, 0, 1) * np.clip((1 - self.yy[:top] / top) * 4, 0, 1)
        if self.style == "cartoon":
            dens = np.clip((dens - 0.3) * 8, 0, 1)
        d = int(0.012 * self.s) + 1
        lit = np.clip(0.55 + (n - _shift(n, -d, self.side * d)) * 0.8, 0, 1)[..., None]
        bright = _mix(p["light"], p["hor"], 0.3) * self.amb**0.7
        shade = _mix(p["top"], p["mid"], 0.5) * (0.55 + 0.45 * self.amb)
        self.over(np.s_[:top], shade + (bright - shade) * lit, dens * 0.95)

    # ---- terrain -----------------------------------------------------------------------------
    def mountains(self, i: int, n: int) -> None:
        """Fractal ridge ``i`` of ``n``: the farther, the taller, snowier and hazier."""
        far, h0, snowy = 1 - i / n, self.h0, "snow" in self.tags
        amp = h0 * (0.16 + 0.28 * far) * (1.25 if snowy else 1.0)
        top = h0 - amp * (0.25 + 0.75 * self.profile(f"ridge{i}", 2 + 2 * i, 0.55 - 0.05 * i))
        r0 = int(top.min())
        yy = self.yy[r0 : h0 + 2]
        tex = self.fbm(f"rock{i}", len(yy), self.w, 10, aspect=0.6)
        d, below = max(1, int(0.006 * self.s)), np.clip((yy - top) / amp, 0, 1)
        shade = np.clip(0.75 + (tex - _shift(tex, -d, self.side * d)) * 0.45 - below * 0.35, 0, 1.3)
        col = self.lit(_mix(self.pal["rock"], self.pal["grass"], 0.5 * (1 - far) * (i > 0)), shade)
        if far > 0.3 or snowy:  # snow above a noisy snowline
            line = h0 - amp * (0.45 if snowy else 0.72) + 0.05 * amp * tex
            snow = self.lit(self.pal["snow"], np.clip(shade + 0.15, 0, 1.2))
            _over(col, snow, np.clip((line - yy) * 0.5, 0, 1))
        col = self.hazed(col, far * 0.55 + 0.35 * below**2 * far + 0.08)
        self.over(np.s_[r0 : h0 + 2], col, np.clip(yy - top + 0.5, 0, 1))

    def water(self) -> None:
        """Mirror everything above the horizon through perspective ripples, plus sun glints."""
        h0, rows, s = self.h0, self.h - self.h0, self.s
        depth = (self.yy[h0:] - h0 + 1) / rows
        rip = self.fbm("ripples", rows, self.w, 20, aspect=0.12)
        rip = rip[((rows - 1) * np.sqrt(depth[:, 0])).astype(int)]
        sx = np.clip(self.xx + rip * (1 + 0.015 * s * depth), 0, self.w - 1).astype(int)
        sy = np.clip(2 * h0 - 1 - self.yy[h0:] + rip * 0.01 * s * depth, 0, h0 - 1).astype(int)
        fres = (0.2 + 0.45 * depth)[..., None]
        col = self.canvas[sy, sx] * (1 - fres) * 0.92 + self.lit(self.pal["water"]) * fres
        path = np.exp(-(((self.xx - self.sun[0]) / (0.02 * s + 0.14 * s * depth)) ** 2))
        glint = np.clip(rip - 1.0, 0, 1.5) * (1.2 - depth) * path * (0.5 + 0.4 * self.amb)
        self.canvas[h0:] = col + glint[..., None] * self.pal["light"] + rip[..., None] * 0.02
        self.ink[h0] = 1.0

    def ground(self) -> None:
        h0, h, t = self.h0, self.h, self.tags
        top = h0 - self.profile("ground", 3, 0.5, 5) * 0.03 * self.s
        r0 = int(top.min())
        yy = self.yy[r0:]
        depth = np.clip((yy - h0) / (h - h0), 0, 1)
        kinds = {"snow": "snow", "desert": "sand", "fire": "ember"}
        kind = next((m for tag, m in kinds.items() if tag in t), "grass")
        tex = self.fbm("grass", len(yy), self.w, 12, aspect=0.25)
        col = self.lit(self.pal[kind], 0.9 + 0.07 * tex - 0.25 * depth)
        self.over(np.s_[r0:], self.hazed(col, 0.55 * (1 - depth) ** 4), np.clip(yy - top, 0, 1))

    def dunes(self, i: int, n: int) -> None:
        """Rolling dunes: the sun-facing flank is lit, the lee side falls into soft shadow."""
        base = self.h0 + (self.h - self.h0) * (0.05 + 0.85 * i / n)
        top = base - (0.03 + 0.05 * i) * self.s * self.profile(f"d{i}", 2 + i, 0.3, 3) ** 1.5
        r0 = int(top.min())
        yy = self.yy[r0:]
        slope = np.tanh(np.gradient(top) * self.side * 5)
        fall = np.exp(-(yy - top) / (0.08 * self.s))
        ripples = np.sin((yy - top * 0.7) * (80 / self.s) * np.pi) * (1 - fall)
        shade = 0.85 + 0.35 * slope * fall + ripples * 0.03 * (self.style != "cartoon") - fall / 10
        col = self.hazed(self.lit(self.pal["sand"], shade), 0.35 * (1 - (i + 1) / n))
        self.over(np.s_[r0:], col, np.clip(yy - top, 0, 1))

    # ---- objects -----------------------------------------------------------------------------
    def trees(
        self, name: str, base: float, count: int, size: tuple[float, float], far: float
    ) -> None:
        """Conifer silhouettes with tiered branches; each tree varies in colour and height."""
        rng, s = self.rng(name), self.s
        for _ in range(int(count * self.w / s)):
            cx, th = self.w * rng.random(), s * rng.uniform(*size)
            tw, y1 = th * rng.uniform(0.3, 0.42), base + rng.uniform(0, 0.01) * s
            at = self.box(cx, y1 - th / 2, max(th / 2, tw / 2 + 1))
            yy, xx = self.yy[at[0]], self.xx[:, at[1]]
            d = np.clip((yy - y1 + th) / th, 0, 1)
            half = tw / 2 * d * (0.62 + 0.38 * ((d * rng.uniform(4, 7)) % 1))
            alpha = np.clip(half - np.abs(xx - cx) + 0.5, 0, 1) * (yy < y1)
            shade = 0.8 + 0.3 * self.side * (xx - cx) / tw + rng.uniform(-0.1, 0.15)
            self.over(at, self.hazed(self.lit(self.pal["tree"], shade), far), alpha)

    def city(self, layer: int) -> None:
        """Two rows of towers; lit windows at dusk and night, sky reflections by day."""
        rng, s, h0 = self.rng(f"city{layer}"), self.s, self.h0
        x, night = -rng.uniform(0, 0.05) * s, self.time in ("night", "sunset", "space")
        py, px = max(2, int(s * 0.016)), max(2, int(s * 0.013))
        while x < self.w:
            bw = s * rng.uniform(0.04, 0.09) * (1 + 0.4 * layer)
            bh = h0 * rng.uniform(0.06, 0.45) * (1.1 - 0.4 * layer)
            xa, xb, ya = max(0, int(x)), min(self.w, int(x + bw)), max(0, int(h0 - bh))
            x += bw * rng.uniform(0.75, 1.05)
            tone = self.hazed(self.lit(self.pal["city"], rng.uniform(0.6, 1.1)), 0.3 - 0.25 * layer)
            yy, xx = np.arange(h0 - ya)[:, None], np.arange(max(0, xb - xa))[None, :]
            on = rng.random(((h0 - ya) // py + 1, (xb - xa) // px + 1)) < rng.uniform(0, 0.5)
            win = (yy % py < py * 0.55) & (xx % px < px * 0.5) & on[yy // py, xx // px]
            glow = _mix(tone, self.pal["window"], 0.6 + 0.4 * layer) if night else tone * 1.4
            alpha = np.ones(win.shape, np.float32)
            alpha[:, :1] = alpha[:, -1:] = alpha[:1] = 0.5
            self.over(np.s_[ya:h0, xa:xb], np.where(win[..., None], glow, tone), alpha)

    def flowers(self) -> None:
        """Drifts of flowers: patches from low-frequency noise, sized by perspective."""
        rng, s, h0 = self.rng("flowers"), self.s, self.h0
        n = int(1500 * self.w * (self.h - h0) / s**2)
        depth, xs = rng.random(n) ** 0.8, rng.random(n) * self.w
        cell = ((depth * 31).astype(int), (xs * 31 / self.w).astype(int))
        keep = _noise(rng, 32, 32, 3, 6)[cell] > 0.5
        kinds = (_noise(rng, 32, 32, 2, 4)[cell] * 5).astype(int)[keep]
        depth, xs = depth[keep], xs[keep]
        for k in np.argsort(depth):
            d, x, y = depth[k], xs[k], h0 + depth[k] * (self.h - h0)
            r = (0.002 + 0.012 * d) * s + 0.6
            at = self.box(x, y, r)
            dist = np.hypot(self.yy[at[0]] - y, self.xx[:, at[1]] - x)
            col = self.hazed(self.lit(_FLOWERS[kinds[k] % 5]), 0.4 * (1 - d) ** 3)
            self.over(at, col, np.clip(r - dist + 0.5, 0, 1), ink=r > 3)
            if r > 2.5:
                self.over(at, (1.0, 0.8, 0.2), np.clip(r * 0.3 - dist + 0.5, 0, 1), ink=False)

    def fire(self) -> None:
        """Vertically stretched noise thresholded by height, mapped through a heat ramp."""
        y0 = int(self.h * 0.42)
        n = self.fbm("flame", self.h - y0, self.w, 4, aspect=3.0)
        heat = np.clip(n * 0.3 + (self.yy[y0:] - y0) / (self.h - y0) * 1.6 - 0.75, 0, 1)
        col = np.stack([np.interp(heat, np.linspace(0, 1, 5), _FIRE[:, c]) for c in range(3)], -1)
        c = self.canvas[y0:]
        c[:] = 1 - (1 - c) * (1 - col)  # screen blend: flames only ever brighten
        self.canvas += (np.exp((self.yy - self.h) / (0.35 * self.h)) * 0.18)[..., None] * _FIRE[2]

    def weather(self) -> None:
        """Rain streaks or snowflakes over everything, and mist banks along the horizon."""
        rng, h, w, s = self.rng("weather"), self.h, self.w, self.s
        if "rain" in self.tags:  # sparse drops smeared into slanted streaks by a running sum
            acc = np.cumsum(rng.random((h, w), dtype=np.float32) > 1 - 1.15 / s, axis=0)
            n, streak = max(3, int(0.05 * s)), np.zeros((h, w), np.float32)
            streak[n:] = acc[n:] - acc[:-n]
            shear = (self.xx + self.yy * 0.2).astype(int) % w
            self.canvas *= 0.88
            self.canvas += (streak[np.arange(h)[:, None], shear] * 0.25)[..., None]
        elif "snow" in self.tags:
            n = int(400 * h * w / s**2)
            flakes = _c(np.bincount(rng.integers(0, h * w, n), rng.random(n), h * w))
            self.canvas += np.clip(_blur(flakes.reshape(h, w), s // 200 + 1) * 3, 0, 0.8)[..., None]
        if self.tags & {"cloud", "rain"}:
            band = np.exp(-(((self.yy - self.h0) / (0.12 * h)) ** 2))
            mist = np.clip(self.fbm("mist", h, w, 2, aspect=0.3) * 0.3 + 0.5, 0, 1) * band * 0.6
            _over(self.canvas, self.pal["hor"], mist)

    # ---- styles ------------------------------------------------------------------------------
    def strokes(self, name: str, spacing: float, fine: bool) -> None:
        """Impressionist dabs along edges or a gentle flow; the fine pass repaints only where
        the coarse pass lost detail (Hertzmann-style layered painting)."""
        rng, h, w = self.rng(name), self.h, self.w
        self.ref = self.ref if fine else self.canvas.copy()
        sp = max(2.0, spacing * self.s)
        gy, gx = np.mgrid[sp / 2 : h : sp, sp / 2 : w : sp]
        ys = np.clip(gy.ravel() + rng.uniform(-0.5, 0.5, gy.size) * sp, 0, h - 1).astype(int)
        xs = np.clip(gx.ravel() + rng.uniform(-0.5, 0.5, gx.size) * sp, 0, w - 1).astype(int)
        src = _blur(self.ref, int(sp / 2)) if sp >= 4 else self.ref  # paint the big shapes
        if fine:
            keep = np.abs(self.canvas[ys, xs] - src[ys, xs]).sum(axis=1) > 0.15
            ys, xs = ys[keep], xs[keep]
        lum, k = src @ _LUMA, max(1, int(sp / 2))
        dy = lum[np.minimum(ys + k, h - 1), xs] - lum[np.maximum(ys - k, 0), xs]
        dx = lum[ys, np.minimum(xs + k, w - 1)] - lum[ys, np.maximum(xs - k, 0)]
        flow = (_noise(rng, 32, 32, 2, 2)[ys * 32 // h, xs * 32 // w] - 0.5) * 1.6
        angle = np.where(np.hypot(dx, dy) > 0.05, np.arctan2(dy, dx) + np.pi / 2, flow)
        length = sp * rng.uniform(*((0.3, 0.8) if fine else (0.9, 1.8)), len(ys))
        ex, ey = np.cos(angle) * length, np.sin(angle) * length
        jitter = rng.uniform(0.94, 1.07, (len(ys), 1)) + rng.normal(0, 0.012, (len(ys), 3))
        rgb = _to_u8(src[ys, xs] * jitter)
        img = Image.fromarray(_to_u8(self.canvas))
        draw, width = ImageDraw.Draw(img), max(1, int(sp * 0.9))
        for i in rng.permutation(len(ys)):
            x0, y0, fill = float(xs[i]), float(ys[i]), tuple(int(v) for v in rgb[i])
            draw.line([(x0 - ex[i], y0 - ey[i]), (x0 + ex[i], y0 + ey[i])], fill, width)
        self.canvas = _c(img) / 255
        if fine:  # canvas weave and a little extra saturation, as oils would have
            weave = _noise(rng, h, w, h / 3, w / 3) - 0.5
            mean = self.canvas.mean(axis=2, keepdims=True)
            self.canvas = (mean + (self.canvas - mean) * 1.2) * (1 + weave[..., None] * 0.08)

    def cartoon(self) -> None:
        """Cel look: luminance posterised into flat bands, silhouettes inked in dark outline."""
        lum = np.maximum(self.canvas @ _LUMA, 1e-3)
        q = ((np.floor(np.sqrt(np.clip(lum, 0, 1)) * 6) + 0.5) / 6) ** 2
        c = np.clip(self.canvas * (q / lum)[..., None], 0, 1)
        mean = c.mean(axis=2, keepdims=True)
        c = mean + (c - mean) * 1.35
        ink = self.ink > 0.5
        for _ in range(max(1, self.s // 400)):
            ink[1:] |= ink[:-1]
            ink[:, 1:] |= ink[:, :-1]
        _over(c, c * 0.12, _c(ink))
        self.canvas = c

    def finish(self) -> None:
        """Photographic bloom and tone curve, vignette, and grain (which also hides banding)."""
        c, rng = self.canvas, self.rng("grain")
        if self.style == "photorealistic":
            c += _blur(np.clip(c - 0.7, 0, None), 12) * 0.8
            k = np.clip(c, 0, 1)
            c += (k * k * (3 - 2 * k) - c) * 0.35
        if self.style in ("default", "photorealistic"):
            r2 = (self.xx / self.w - 0.5) ** 2 + (self.yy / self.h - 0.5) ** 2
            c *= (1 - 0.9 * r2**1.5)[..., None]
        amount = 0.045 if self.style == "photorealistic" else 0.012
        c += (rng.random((self.h, self.w, 1), dtype=np.float32) - 0.5) * amount

    # ---- abstract ----------------------------------------------------------------------------
    def abstract(self) -> None:
        """Bauhaus-like composition: motifs chosen by the prompt's scene words, in its palette."""
        rng, s, xx, yy, h, w = self.rng("shapes"), self.s, self.xx, self.yy, self.h, self.w
        keys = ["top", "mid", "hor", "light", "rock", "water", "grass", "sand"]
        keys = keys[: 4 + len(self.tags & {"forest", "water", "desert", "mountain"})]
        hue = colorsys.rgb_to_hsv(*(float(x) for x in self.pal["mid"]))[0]
        cols = [_hsv(self.pal[k], 0, 1.4, 0.35) for k in keys]
        cols += [_c(colorsys.hsv_to_rgb(hue + 0.5, 0.8, 0.9)), _c((0.93, 0.93, 0.93))]
        self.swatches, ang = cols, self.u[11] * np.pi
        t = (xx / w - 0.5) * np.cos(ang) + (yy / h - 0.5) * np.sin(ang) + 0.5
        self.canvas[:] = _mix(cols[0], cols[2] * 0.8, np.clip(t, 0, 1)[..., None])
        motifs = dict(mountain="tri", water="wave", city="rect", forest="tri", flower="dots",
                      fire="wave", snow="dots", space="ring", night="ring", desert="circle",
                      sunset="circle", day="circle")  # fmt: skip
        kinds = [m for tag, m in motifs.items() if tag in self.tags] or ["circle", "tri", "rect"]
        for k in range(int(rng.integers(7, 11))):
            kind = kinds[k] if k < len(kinds) else str(rng.choice([*kinds, "ring", "rect"]))
            cx, cy = w * ((k % 3 + rng.random()) / 3), h * ((k // 3 % 3 + rng.random()) / 3)
            r, dx, dy = s * rng.uniform(0.12, 0.32), xx - cx, yy - cy
            if kind in ("circle", "ring"):
                a = r - np.hypot(dx, dy)
                a = a if kind == "circle" else r * 0.07 - np.abs(a)
            elif kind == "rect":
                a = np.minimum(r * 0.35 - np.abs(dx), r - np.abs(dy))
            elif kind == "wave":
                a = r * 0.1 - np.abs(dy - r * 0.3 * np.sin(xx / r * 3 + rng.uniform(0, 6)))
            elif kind == "dots":
                g = r * 0.3
                a = np.minimum(g * 0.3 - np.hypot(dx % g - g / 2, dy % g - g / 2),
                               r - np.maximum(np.abs(dx), np.abs(dy)))  # fmt: skip
            else:
                a = np.minimum(r * 0.6 - dy, ((dy + r) * 0.56 - np.abs(dx)) * 0.87)
            col = cols[int(rng.integers(0, len(cols)))]
            self.over(np.s_[:], col, np.clip(a + 0.5, 0, 1) * rng.uniform(0.75, 1.0))

    def flow(self) -> None:
        """Particles traced through a noise angle field and splatted with bincount at reduced
        scale, then upsampled: smooth flowing strands in the palette's colours."""
        rng, k = self.rng("flow"), max(1, self.s // 400)
        h, w, cols = self.h // k, self.w // k, np.stack(self.swatches)
        n, length = int(h * w / min(h, w) * 1.7), int(0.15 * min(h, w))
        field = _noise(rng, h // 4 + 1, w // 4 + 1, 2.5, 2.5) * (4 * np.pi)
        px, py, ci = rng.random(n) * (w - 1), rng.random(n) * (h - 1), rng.integers(0, len(cols), n)
        idx = []
        for _ in range(length):
            ang = field[(py // 4).astype(int), (px // 4).astype(int)]
            px, py = np.clip(px + np.cos(ang), 0, w - 1), np.clip(py + np.sin(ang), 0, h - 1)
            idx.append(py.astype(int) * w + px.astype(int))
        flat, who = np.concatenate(idx), np.tile(ci, length)
        cnt = _c(np.bincount(flat, minlength=h * w)).reshape(h, w) + 1e-6
        rgb = np.stack([np.bincount(flat, cols[who, c], h * w) for c in range(3)], -1)
        colour = _resize(
            rgb.reshape(h, w, 3) / cnt[..., None], self.w, self.h, Image.Resampling.BICUBIC
        )
        alpha = _resize(1 - np.exp(-cnt * 0.8), self.w, self.h, Image.Resampling.BICUBIC)
        _over(self.canvas, colour, np.clip(alpha, 0, 1) * 0.85)

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
) -> Image.Image:
    """Paint ``prompt`` deterministically and return an RGB image of exactly width x height.

    The scene's layers (back to front) are spread over ``steps``, and more steps also buy finer
    noise octaves. ``on_step(step, steps)`` runs after each step; anything it raises (e.g. a
    cancellation) propagates and abandons the render.
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
        if on_step is not None:
            on_step(step, steps)
    return Image.fromarray(_to_u8(scene.canvas))
