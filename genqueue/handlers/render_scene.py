"""The state of one render: prompt analysis, palette and layout, and the drawing primitives
(seeded noise, compositing, lighting, haze) that every layer and style pass paints with.
"""

import colorsys
import hashlib
import re
import zlib

import numpy as np

from genqueue.handlers.render_kit import (
    COMBOS,
    F32,
    HUES,
    MATERIALS,
    RGB,
    SKIES,
    TAGS,
    Arr,
    Idx,
    Style,
    composite,
    f32,
    hsv,
    mix,
    noise,
)


class Scene:
    """One render's analysed prompt and canvas; subclasses add the stages that paint it."""

    def __init__(self, prompt: str, w: int, h: int, style: Style, seed: int | None, steps: int):
        self.w, self.h, self.style, self.s = w, h, style, min(w, h)
        words = re.findall(r"[a-z]+", prompt.lower())
        self.tags = {t for t, v in TAGS.items() if any(x in v or x[:-1] in v for x in words)}
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
            self.tags |= set() if self.time == "space" else set(COMBOS[int(u[1] * 7)].split())
        top, mid, hor, light, self.amb = SKIES[self.time]
        if "fire" in self.tags and self.time != "night":
            mid, hor = (0.55, 0.2, 0.15), (0.95, 0.5, 0.2)
        named = {"top": top, "mid": mid, "hor": hor, "light": light, **MATERIALS}
        self.pal = {k: hsv(c, (u[2] - 0.5) * 0.08) for k, c in named.items()}
        hue = next((HUES[x] for x in words if x in HUES), None)
        if hue is not None:  # a named colour pulls the whole palette toward it
            for k, c in self.pal.items():
                v = max(colorsys.rgb_to_hsv(*(float(x) for x in c))[2], 0.05)
                self.pal[k] = mix(c, colorsys.hsv_to_rgb(hue, 0.7, v), 0.4)
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
        self.dist = f32(np.hypot(self.xx - self.sun[0], self.yy - self.sun[1]))
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
            total += amp * noise(rng, h, w, cy, cx)
            amp, cy, cx = amp * gain, cy * 2, cx * 2
        return f32((total - total.mean()) / (total.std() + 1e-6))

    def profile(self, name: str, cells: float, gain: float, octaves: int = 9) -> F32:
        p = self.fbm(name, 1, self.w, cells, octaves=octaves, gain=gain)[0]
        return f32((p - p.min()) / (p.max() - p.min() + 1e-6))

    def over(self, at: Idx, col: Arr | RGB, alpha: Arr, ink: bool = True) -> None:
        """Composite onto the canvas; for cartoons also track silhouette rims as ink lines."""
        composite(self.canvas[at], col, alpha)
        if self.style == "cartoon":
            inside = np.broadcast_to(alpha > 0.5, self.ink[at].shape)
            rim = np.zeros_like(inside)  # the 50% contour, one pixel wide
            rim[1:] = inside[1:] != inside[:-1]
            rim[:, 1:] |= inside[:, 1:] != inside[:, :-1]
            self.ink[at] = np.where(rim & ink, 1.0, self.ink[at] * (1 - alpha))

    def lit(self, base: RGB | Arr, shade: float | Arr = 1.0) -> F32:
        """Material colour under the scene's light: sky-tinted fill (purple shadows at dusk,
        blue by day) plus direct light from the sun or moon."""
        fill = 0.4 + 0.6 * mix(self.pal["top"], self.pal["mid"], 0.5)
        direct = self.pal["light"] * (0.75 * self.amb)
        return f32(f32(base) * (0.3 * self.amb * fill + direct * f32(shade)[..., None]))

    def hazed(self, col: Arr, amount: Arr | float) -> F32:
        """Atmospheric perspective: distant things fade toward the horizon colour."""
        a = np.clip(f32(amount) * self.haze, 0, 0.92)
        haze = mix(self.pal["hor"], self.pal["mid"], 0.35)
        return f32(col + (haze - col) * (a[..., None] if a.ndim else a))

    def box(self, cx: float, cy: float, r: float) -> tuple[slice, slice]:
        y0, x0 = max(0, int(cy - r)), max(0, int(cx - r))
        return np.s_[y0 : max(y0, min(self.h, int(cy + r) + 2)), x0 : min(self.w, int(cx + r) + 2)]
