"""The landscape layers, back to front: sky and its bodies, terrain, objects and weather."""

import numpy as np

from genqueue.handlers.render_kit import (
    FIRE,
    FLOWERS,
    blur,
    composite,
    f32,
    hsv,
    mix,
    noise,
    shift,
)
from genqueue.handlers.render_scene import Scene


class SceneLayers(Scene):
    """Each method paints one layer onto the canvas; ``stages()`` picks which ones and in what
    order, so a layer never needs to know what else is in the picture."""

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
        field = f32(np.bincount(rng.integers(0, h * w, n), rng.random(n) ** 5 * 2.2, h * w))
        field = field.reshape(h, w)
        fade = np.clip((self.h0 - self.yy) / (0.45 * self.h0), 0, 1)
        band = np.abs((self.yy / h - 0.15) - (self.xx / w) * (0.7 * self.u[6] - 0.35)) / 0.16
        dust = np.clip(self.fbm("milky", h, w, 3, gain=0.6) * 0.35 + 0.5, 0, 1)
        glow = np.exp(-band * band) * dust * 0.16 * fade
        self.canvas += glow[..., None] * mix(self.pal["mid"], (0.6, 0.6, 0.8), 0.6)
        self.canvas += ((field + blur(field, 3) * 2.5) * fade)[..., None] * 0.97
        nebulae = (((0.55, 0.12, 0.62), 0.1), ((0.05, 0.45, 0.62), 0.0)) if space else ()
        for i, (col, bias) in enumerate(nebulae):
            neb = np.clip(self.fbm(f"neb{i}", h, w, 2.5 - i / 2, gain=0.6) * 0.45 + bias, 0, 1)
            self.canvas += (neb * neb)[..., None] * hsv(col, self.u[2] - 0.5)

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
        surf = mix(hsv((0.85, 0.55, 0.35), u[10] - 0.5), (0.35, 0.3, 0.55), bands)
        self.over(np.s_[:], surf * (0.03 + lam[..., None]), np.clip((1 - rad) * r + 0.5, 0, 1))
        rim = np.exp(-np.abs(rad - 1) * r / (0.02 * s)) * np.clip(lam + 0.2, 0, 1)
        self.canvas += rim[..., None] * f32((0.15, 0.28, 0.5))

    def clouds(self) -> None:
        """Fractal clouds lit from the sun's side: density minus density toward the light."""
        top, p = max(8, int(self.h0 * 0.92)), self.pal
        n = self.fbm("clouds", top, self.w, 2.5, aspect=0.45)
        cover = {"grey": -0.5, "day": 0.45, "sunset": 0.3}.get(self.time, 0.7)
        dens = np.clip((n - cover) * 0.9, 0, 1) * np.clip((1 - self.yy[:top] / top) * 4, 0, 1)
        if self.style == "cartoon":
            dens = np.clip((dens - 0.3) * 8, 0, 1)
        d = int(0.012 * self.s) + 1
        lit = np.clip(0.55 + (n - shift(n, -d, self.side * d)) * 0.8, 0, 1)[..., None]
        bright = mix(p["light"], p["hor"], 0.3) * self.amb**0.7
        shade = mix(p["top"], p["mid"], 0.5) * (0.55 + 0.45 * self.amb)
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
        shade = np.clip(0.75 + (tex - shift(tex, -d, self.side * d)) * 0.45 - below * 0.35, 0, 1.3)
        col = self.lit(mix(self.pal["rock"], self.pal["grass"], 0.5 * (1 - far) * (i > 0)), shade)
        if far > 0.3 or snowy:  # snow above a noisy snowline
            line = h0 - amp * (0.45 if snowy else 0.72) + 0.05 * amp * tex
            snow = self.lit(self.pal["snow"], np.clip(shade + 0.15, 0, 1.2))
            composite(col, snow, np.clip((line - yy) * 0.5, 0, 1))
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
            glow = mix(tone, self.pal["window"], 0.6 + 0.4 * layer) if night else tone * 1.4
            alpha = np.ones(win.shape, np.float32)
            alpha[:, :1] = alpha[:, -1:] = alpha[:1] = 0.5
            self.over(np.s_[ya:h0, xa:xb], np.where(win[..., None], glow, tone), alpha)

    def flowers(self) -> None:
        """Drifts of flowers: patches from low-frequency noise, sized by perspective."""
        rng, s, h0 = self.rng("flowers"), self.s, self.h0
        n = int(1500 * self.w * (self.h - h0) / s**2)
        depth, xs = rng.random(n) ** 0.8, rng.random(n) * self.w
        cell = ((depth * 31).astype(int), (xs * 31 / self.w).astype(int))
        keep = noise(rng, 32, 32, 3, 6)[cell] > 0.5
        kinds = (noise(rng, 32, 32, 2, 4)[cell] * 5).astype(int)[keep]
        depth, xs = depth[keep], xs[keep]
        for k in np.argsort(depth):
            d, x, y = depth[k], xs[k], h0 + depth[k] * (self.h - h0)
            r = (0.002 + 0.012 * d) * s + 0.6
            at = self.box(x, y, r)
            dist = np.hypot(self.yy[at[0]] - y, self.xx[:, at[1]] - x)
            col = self.hazed(self.lit(FLOWERS[kinds[k] % 5]), 0.4 * (1 - d) ** 3)
            self.over(at, col, np.clip(r - dist + 0.5, 0, 1), ink=r > 3)
            if r > 2.5:
                self.over(at, (1.0, 0.8, 0.2), np.clip(r * 0.3 - dist + 0.5, 0, 1), ink=False)

    def fire(self) -> None:
        """Vertically stretched noise thresholded by height, mapped through a heat ramp."""
        y0 = int(self.h * 0.42)
        n = self.fbm("flame", self.h - y0, self.w, 4, aspect=3.0)
        heat = np.clip(n * 0.3 + (self.yy[y0:] - y0) / (self.h - y0) * 1.6 - 0.75, 0, 1)
        col = np.stack([np.interp(heat, np.linspace(0, 1, 5), FIRE[:, c]) for c in range(3)], -1)
        c = self.canvas[y0:]
        c[:] = 1 - (1 - c) * (1 - col)  # screen blend: flames only ever brighten
        self.canvas += (np.exp((self.yy - self.h) / (0.35 * self.h)) * 0.18)[..., None] * FIRE[2]

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
            flakes = f32(np.bincount(rng.integers(0, h * w, n), rng.random(n), h * w))
            self.canvas += np.clip(blur(flakes.reshape(h, w), s // 200 + 1) * 3, 0, 0.8)[..., None]
        if self.tags & {"cloud", "rain"}:
            band = np.exp(-(((self.yy - self.h0) / (0.12 * h)) ** 2))
            mist = np.clip(self.fbm("mist", h, w, 2, aspect=0.3) * 0.3 + 0.5, 0, 1) * band * 0.6
            composite(self.canvas, self.pal["hor"], mist)
