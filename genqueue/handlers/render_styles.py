"""Style passes: painterly strokes, cartoon cels, the photographic finish, and the abstract
style's own composition, each applied to a scene's canvas after (or instead of) its layers.
"""

import colorsys

import numpy as np
from PIL import Image, ImageDraw

from genqueue.handlers.render_kit import LUMA, blur, composite, f32, hsv, mix, noise, resize, to_u8
from genqueue.handlers.render_scene import Scene


class StylePasses(Scene):
    """The passes that turn the same layers into a different style, kept apart from the layers
    so a style can change without touching what the scene contains."""

    def strokes(self, name: str, spacing: float, fine: bool) -> None:
        """Impressionist dabs along edges or a gentle flow; the fine pass repaints only where
        the coarse pass lost detail (Hertzmann-style layered painting)."""
        rng, h, w = self.rng(name), self.h, self.w
        self.ref = self.ref if fine else self.canvas.copy()
        sp = max(2.0, spacing * self.s)
        gy, gx = np.mgrid[sp / 2 : h : sp, sp / 2 : w : sp]
        ys = np.clip(gy.ravel() + rng.uniform(-0.5, 0.5, gy.size) * sp, 0, h - 1).astype(int)
        xs = np.clip(gx.ravel() + rng.uniform(-0.5, 0.5, gx.size) * sp, 0, w - 1).astype(int)
        src = blur(self.ref, int(sp / 2)) if sp >= 4 else self.ref  # paint the big shapes
        if fine:
            keep = np.abs(self.canvas[ys, xs] - src[ys, xs]).sum(axis=1) > 0.15
            ys, xs = ys[keep], xs[keep]
        lum, k = src @ LUMA, max(1, int(sp / 2))
        dy = lum[np.minimum(ys + k, h - 1), xs] - lum[np.maximum(ys - k, 0), xs]
        dx = lum[ys, np.minimum(xs + k, w - 1)] - lum[ys, np.maximum(xs - k, 0)]
        flow = (noise(rng, 32, 32, 2, 2)[ys * 32 // h, xs * 32 // w] - 0.5) * 1.6
        angle = np.where(np.hypot(dx, dy) > 0.05, np.arctan2(dy, dx) + np.pi / 2, flow)
        length = sp * rng.uniform(*((0.3, 0.8) if fine else (0.9, 1.8)), len(ys))
        ex, ey = np.cos(angle) * length, np.sin(angle) * length
        jitter = rng.uniform(0.94, 1.07, (len(ys), 1)) + rng.normal(0, 0.012, (len(ys), 3))
        rgb = to_u8(src[ys, xs] * jitter)
        img = Image.fromarray(to_u8(self.canvas))
        draw, width = ImageDraw.Draw(img), max(1, int(sp * 0.9))
        for i in rng.permutation(len(ys)):
            x0, y0, fill = float(xs[i]), float(ys[i]), tuple(int(v) for v in rgb[i])
            draw.line([(x0 - ex[i], y0 - ey[i]), (x0 + ex[i], y0 + ey[i])], fill, width)
        self.canvas = f32(img) / 255
        if fine:  # canvas weave and a little extra saturation, as oils would have
            weave = noise(rng, h, w, h / 3, w / 3) - 0.5
            mean = self.canvas.mean(axis=2, keepdims=True)
            self.canvas = (mean + (self.canvas - mean) * 1.2) * (1 + weave[..., None] * 0.08)

    def cartoon(self) -> None:
        """Cel look: luminance posterised into flat bands, silhouettes inked in dark outline."""
        lum = np.maximum(self.canvas @ LUMA, 1e-3)
        q = ((np.floor(np.sqrt(np.clip(lum, 0, 1)) * 6) + 0.5) / 6) ** 2
        c = np.clip(self.canvas * (q / lum)[..., None], 0, 1)
        mean = c.mean(axis=2, keepdims=True)
        c = mean + (c - mean) * 1.35
        ink = self.ink > 0.5
        for _ in range(max(1, self.s // 400)):
            ink[1:] |= ink[:-1]
            ink[:, 1:] |= ink[:, :-1]
        composite(c, c * 0.12, f32(ink))
        self.canvas = c

    def finish(self) -> None:
        """Photographic bloom and tone curve, vignette, and grain (which also hides banding)."""
        c, rng = self.canvas, self.rng("grain")
        if self.style == "photorealistic":
            c += blur(np.clip(c - 0.7, 0, None), 12) * 0.8
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
        cols = [hsv(self.pal[k], 0, 1.4, 0.35) for k in keys]
        cols += [f32(colorsys.hsv_to_rgb(hue + 0.5, 0.8, 0.9)), f32((0.93, 0.93, 0.93))]
        self.swatches, ang = cols, self.u[11] * np.pi
        t = (xx / w - 0.5) * np.cos(ang) + (yy / h - 0.5) * np.sin(ang) + 0.5
        self.canvas[:] = mix(cols[0], cols[2] * 0.8, np.clip(t, 0, 1)[..., None])
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
        field = noise(rng, h // 4 + 1, w // 4 + 1, 2.5, 2.5) * (4 * np.pi)
        px, py, ci = rng.random(n) * (w - 1), rng.random(n) * (h - 1), rng.integers(0, len(cols), n)
        idx = []
        for _ in range(length):
            ang = field[(py // 4).astype(int), (px // 4).astype(int)]
            px, py = np.clip(px + np.cos(ang), 0, w - 1), np.clip(py + np.sin(ang), 0, h - 1)
            idx.append(py.astype(int) * w + px.astype(int))
        flat, who = np.concatenate(idx), np.tile(ci, length)
        cnt = f32(np.bincount(flat, minlength=h * w)).reshape(h, w) + 1e-6
        rgb = np.stack([np.bincount(flat, cols[who, c], h * w) for c in range(3)], -1)
        colour = resize(
            rgb.reshape(h, w, 3) / cnt[..., None], self.w, self.h, Image.Resampling.BICUBIC
        )
        alpha = resize(1 - np.exp(-cnt * 0.8), self.w, self.h, Image.Resampling.BICUBIC)
        composite(self.canvas, colour, np.clip(alpha, 0, 1) * 0.85)
