"""Procedural animation: a prompt's still (render.py) filmed by a moving camera, under a light
that drifts with the time of day, with particles that fit the scene (snow, rain, embers, stars).

Deterministic for (prompt, seed, size, fps, duration): the camera path, the grade and the
particles all come from one generator seeded by both, so a seed reproduces a video frame for
frame while another prompt gives another picture, palette, motion and weather. No model, no
network: the keyframe costs what one ``image.generate`` costs, each frame one resample of it
(Pillow, in C) plus a vectorised grade.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from genqueue.handlers.render import render_image
from genqueue.handlers.render_kit import TAGS, Style

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
MAX_KEYFRAME_SIDE = 2048  # render_image's limit; larger frames are upscaled from it
OVERSCAN = 1.35  # keyframe size over frame size: room for the camera to pan and zoom


def prompt_seed(prompt: str) -> int:
    """The seed used when none is given: stable for a prompt, across processes and runs."""
    return int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")


def scene_tags(prompt: str) -> set[str]:
    """The renderer's vocabulary tags (night, snow, fire, ...) the prompt's words hit."""
    words = {w.strip(".,;:!?\"'()").lower() for w in prompt.split()}
    return {t for t, vocab in TAGS.items() if any(w in vocab or w[:-1] in vocab for w in words)}


@dataclass(frozen=True)
class Shot:
    """One video's plan: camera path, light drift and particles, all drawn from its seed."""

    zoom: tuple[float, float]  # crop zoom at start and end (1 = the whole keyframe)
    centre: tuple[tuple[float, float], tuple[float, float]]  # crop centre, start and end (0..1)
    gain: tuple[F32, F32]  # RGB gain at start and end: the light drifting
    particles: str  # snow, rain, embers, stars or motes
    count: int
    positions: F32  # (count, 2) in 0..1
    velocity: F32  # (count, 2) in frame heights per second
    size: F32  # (count,) radius in frame heights
    phase: F32  # (count,) for twinkle and sway


def plan_shot(prompt: str, seed: int) -> Shot:
    tags = scene_tags(prompt)
    rng = np.random.default_rng([seed, prompt_seed(prompt)])
    push_in = rng.random() < 0.5
    z0, z1 = (1.0, 1.15 + 0.15 * rng.random()) if push_in else (1.3, 1.0 + 0.1 * rng.random())
    c0 = (0.5 + 0.2 * (rng.random() - 0.5), 0.5 + 0.1 * (rng.random() - 0.5))
    c1 = (0.5 + 0.4 * (rng.random() - 0.5), 0.5 + 0.2 * (rng.random() - 0.5))
    if "sunset" in tags:  # the sun goes down: warmer, then dimmer
        g0, g1 = (1.0, 1.0, 1.0), (1.08, 0.8, 0.62)
    elif tags & {"night", "space"}:  # a slow moonlit breath
        g0, g1 = (0.85, 0.9, 1.05), (1.0, 1.0, 1.15)
    elif tags & {"rain", "cloud"}:
        g0, g1 = (1.0, 1.0, 1.0), (0.78, 0.82, 0.9)
    else:  # daylight coming up
        g0, g1 = (0.9, 0.88, 0.85), (1.05, 1.04, 1.0)
    kind, count, speed, radius = _particles(tags)
    positions = rng.random((count, 2), dtype=np.float32)
    velocity = np.stack(
        [speed[0] * (rng.random(count, dtype=np.float32) - 0.5), np.full(count, speed[1])], 1
    ).astype(np.float32) * (0.6 + 0.8 * rng.random((count, 1), dtype=np.float32))
    return Shot(
        zoom=(z0, z1),
        centre=(c0, c1),
        gain=(np.array(g0, np.float32), np.array(g1, np.float32)),
        particles=kind,
        count=count,
        positions=positions,
        velocity=velocity,
        size=(radius * (0.4 + rng.random(count, dtype=np.float32))).astype(np.float32),
        phase=(rng.random(count, dtype=np.float32) * np.float32(2 * np.pi)),
    )


def _particles(tags: set[str]) -> tuple[str, int, tuple[float, float], float]:
    """(kind, count, (sideways spread, vertical speed), radius) for the scene's weather."""
    if "snow" in tags:
        return "snow", 160, (0.08, 0.12), 0.006
    if "rain" in tags:
        return "rain", 220, (0.05, 1.6), 0.03
    if "fire" in tags:
        return "embers", 90, (0.12, -0.25), 0.005
    if tags & {"night", "space"}:
        return "stars", 120, (0.0, 0.0), 0.004
    return "motes", 40, (0.06, -0.03), 0.008


def keyframe(
    prompt: str, width: int, height: int, *, seed: int, style: Style = "default"
) -> Image.Image:
    """The still the camera films: the prompt rendered with room around the frame."""
    scale = min(OVERSCAN, MAX_KEYFRAME_SIDE / max(width, height))
    kw, kh = max(64, round(width * scale)), max(64, round(height * scale))
    return render_image(prompt, kw, kh, style=style, seed=seed, steps=8)


def frames(
    still: Image.Image, shot: Shot, width: int, height: int, count: int, fps: float
) -> Iterator[U8]:
    """Yield ``count`` RGB frames (height x width x 3, uint8) filming ``still`` along ``shot``."""
    kw, kh = still.size
    for i in range(count):
        t = i / max(1, count - 1)
        e = t * t * (3 - 2 * t)  # smoothstep: the camera eases in and out
        zoom = shot.zoom[0] + (shot.zoom[1] - shot.zoom[0]) * e
        cw, ch = kw / (zoom * 1.1), kh / (zoom * 1.1)  # even zoom 1 leaves room to pan
        cx = _lerp(shot.centre[0][0], shot.centre[1][0], e) * kw
        cy = _lerp(shot.centre[0][1], shot.centre[1][1], e) * kh
        x0 = min(max(cx - cw / 2, 0.0), kw - cw)
        y0 = min(max(cy - ch / 2, 0.0), kh - ch)
        frame = still.resize((width, height), Image.Resampling.BILINEAR, (x0, y0, x0 + cw, y0 + ch))
        _draw_particles(frame, shot, i / fps)
        gain = shot.gain[0] + (shot.gain[1] - shot.gain[0]) * np.float32(e)
        # The grade is a per-channel gain, so a 3x256 lookup table (Pillow, in C) applies it.
        lut = np.clip(np.arange(256, dtype=np.float32)[None, :] * gain[:, None], 0, 255)
        yield np.asarray(frame.point(lut.astype(np.uint8).ravel().tolist()))


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def _draw_particles(frame: Image.Image, shot: Shot, time_s: float) -> None:
    w, h = frame.size
    draw = ImageDraw.Draw(frame, "RGBA")
    sway = np.sin(shot.phase + np.float32(time_s * 2.0)) * np.float32(0.01)
    pos = (shot.positions + shot.velocity * np.float32(time_s)) % np.float32(1.0)
    xs = ((pos[:, 0] + sway) % 1.0) * w
    ys = pos[:, 1] * h
    radii = np.maximum(shot.size * h, 0.6)
    twinkle = 0.5 + 0.5 * np.sin(shot.phase + np.float32(time_s * 5.0))
    for x, y, r, tw in zip(xs.tolist(), ys.tolist(), radii.tolist(), twinkle.tolist(), strict=True):
        match shot.particles:
            case "rain":
                draw.line((x, y, x - r * 0.15, y + r), fill=(190, 205, 230, 110), width=1)
            case "snow":
                draw.ellipse((x - r, y - r, x + r, y + r), fill=(250, 250, 255, 220))
            case "embers":
                draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 150, 40, int(120 + 130 * tw)))
            case "stars":
                a = int(60 + 195 * tw)
                draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 250, 235, a))
            case _:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 245, 220, int(40 + 60 * tw)))
