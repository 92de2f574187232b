"""The picture checks of ``image.diagnose``: each measures one defect of one frame.

Frames are reduced to the analysis size first (long side 640 by default), so a measure does not
depend on the camera's resolution; noise is the exception and is measured on a full-resolution
crop, because reducing a frame averages its noise away. Blur and occlusion look at a
contrast-normalised copy, so a dark or washed-out frame is reported as dark or low-contrast and
not also as blurred or covered: each check flips for its own defect only.

The default thresholds (``DiagnosisSettings``) were chosen on the synthetic frames of
``tests/test_diagnose.py`` and on the photos of the scikit-image wheel; the measured values are
listed in each docstring. They are absolute: a per-camera baseline would do better on scenes
that are naturally dark, flat or colourful (a night sky reads as occlusion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]

BLUR_PRESMOOTH = 0.7  # px, Gaussian sigma before the Laplacian
MAX_GAIN = 8.0  # contrast normalisation never amplifies more than this (noise would dominate)
NOISE_CROP = 512  # side of the full-resolution crop the noise is measured on
UNIFORM_BAND = 6  # signal loss: grey levels either side of the most common level
CELL = 32  # occlusion: texture cells of about this many pixels at analysis size
FLAT_STD = 6.0  # a cell whose smoothed, normalised luma varies less than this...
FLAT_EDGES = 0.01  # ...and has fewer edge pixels than this share, is flat


@dataclass(frozen=True)
class Frame:
    """One frame, prepared once for every check."""

    rgb: U8  # analysis size
    gray: U8
    norm: F32  # gray stretched from its 1st..99th percentile to 0..255, gain capped
    crop: U8  # full-resolution grey crop from the centre, for noise


@dataclass(frozen=True)
class Measure:
    score: float
    detail: str


def prepare(rgb: U8, side: int) -> Frame:
    """Reduce to the analysis size (area averaging: no aliasing) and derive what checks share."""
    height, width = rgb.shape[:2]
    scale = min(1.0, side / max(height, width))
    small = rgb
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.uint8)
    gray = np.asarray(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), np.uint8)
    top, left = max(0, (height - NOISE_CROP) // 2), max(0, (width - NOISE_CROP) // 2)
    crop = np.asarray(
        cv2.cvtColor(
            np.ascontiguousarray(rgb[top : top + NOISE_CROP, left : left + NOISE_CROP]),
            cv2.COLOR_RGB2GRAY,
        ),
        np.uint8,
    )
    return Frame(rgb=small, gray=gray, norm=_normalise(gray), crop=crop)


def _normalise(gray: U8) -> F32:
    low, high = np.percentile(gray, (1, 99))
    span = max(float(high - low), 255.0 / MAX_GAIN)
    out = (gray.astype(np.float32) - np.float32(low)) * np.float32(255.0 / span)
    return np.asarray(np.clip(out, 0.0, 255.0), np.float32)


def blur(frame: Frame) -> Measure:
    """Variance of the Laplacian of the contrast-normalised frame, after a Gaussian of
    0.7 px: the energy of fine detail. The light smoothing removes the pixel noise and the
    quantisation steps that normalisation amplifies in a dark frame (without it a blurred dark
    frame scores like a sharp one). Alert below 15: the sharp synthetic scene gives ~260 (also
    when dark), the scikit-image photos 150-350, a plain synthetic landscape 40; the scene under
    a Gaussian blur of sigma 1.5 gives 28, of sigma 2 gives 12, of sigma 4 gives 1."""
    smooth = cv2.GaussianBlur(frame.norm, (0, 0), BLUR_PRESMOOTH)
    value = float(cv2.Laplacian(smooth, cv2.CV_32F).var())
    return Measure(value, f"Laplacian variance {value:.1f} (fine detail; low when out of focus)")


def dark(frame: Frame) -> Measure:
    """Mean luma (0..255). Alert below 40: a frame at 15 % of normal exposure reads ~19,
    healthy scenes 60-130; below ~40 a camera has lost its light (night without IR, a cap)."""
    value = float(frame.gray.mean())
    return Measure(value, f"mean luma {value:.1f} of 255")


def bright(frame: Frame) -> Measure:
    """Mean luma (0..255). Alert above 215: an over-exposed frame (gain 1.6, +90) reads ~240,
    healthy scenes stay under ~150; above 215 most of the picture is burnt out."""
    value = float(frame.gray.mean())
    return Measure(value, f"mean luma {value:.1f} of 255")


def contrast(frame: Frame) -> Measure:
    """Luma spread (5th to 95th percentile) over the room the exposure leaves (twice the
    distance from the mean to black or to white), 0..1. Unlike a plain spread it does not
    penalise dark or bright frames, which have checks of their own. Alert below 0.2: a scene
    squeezed to 15 % of its contrast (fog, a dirty dome) reads 0.08, healthy ones 0.35-1 (the
    scikit-image moon photo, grey on grey, reads 0.12)."""
    p5, p95 = np.percentile(frame.gray, (5, 95))
    mean = float(frame.gray.mean())
    room = 2.0 * max(1.0, min(mean, 255.0 - mean))
    value = min(1.0, float(p95 - p5) / room)
    return Measure(value, f"luma spread {float(p95 - p5):.0f} grey levels around {mean:.0f}")


_HUES = ("red", "orange", "yellow", "yellow-green", "green", "cyan", "blue", "purple")


def colour_cast(frame: Frame) -> Measure:
    """Distance of the mean chroma (a*, b*) from neutral grey, in CIELAB units (a colour
    difference: ~2 is just visible). Alert above 30: a white-balance fault (blue gain 0.45)
    reads ~45, neutral scenes 0-20, the warm-lit coffee photo 42 (a real, if wanted, cast)."""
    lab = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2LAB)
    a = float(lab[..., 1].mean()) - 128.0
    b = float(lab[..., 2].mean()) - 128.0
    value = math.hypot(a, b)
    hue = _HUES[round(math.degrees(math.atan2(b, a)) % 360 / 45) % 8]
    return Measure(value, f"mean chroma offset {value:.1f} towards {hue}")


_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def noise(frame: Frame) -> Measure:
    """Noise sigma in grey levels, by Immerkaer's estimator (a Laplacian-difference kernel that
    cancels smooth shading) over the half of the pixels with the weakest gradient, so texture
    and edges are not counted as noise; on a full-resolution crop. Alert above 10: clean
    synthetic scenes read 0.3, the scikit-image photos 0.3-1.6 but a close-up of grass 9.4
    (pixel-fine texture is indistinguishable from noise), added Gaussian noise of sigma 8 reads
    5 and of sigma 25 reads 16 (the estimate runs low: it ignores the busiest pixels)."""
    gray = frame.crop.astype(np.float32)
    if min(gray.shape) < 3:
        return Measure(0.0, "frame too small to estimate noise")
    response = np.abs(cv2.filter2D(gray, -1, _IMMERKAER))[1:-1, 1:-1]
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    gradient = cv2.magnitude(gx, gy)[1:-1, 1:-1]
    calm = gradient <= np.median(gradient)
    value = float(math.sqrt(math.pi / 2) * response[calm].mean() / 6.0) if calm.any() else 0.0
    return Measure(value, f"estimated noise sigma {value:.1f} grey levels")


def signal_loss(frame: Frame) -> Measure:
    """Share of the frame (0..1) within 13 grey levels of its most common level: a black,
    blue or grey screen is ~1 even with an on-screen clock or a little noise on it. Alert above
    0.9: healthy scenes read 0.1-0.36, a frame at 15 % exposure 0.76, a burnt-out one 0.69.
    A colour-bar test pattern is not recognised (it reads as a high-contrast picture)."""
    hist = np.bincount(frame.gray.ravel(), minlength=256).astype(np.float64)
    window = np.convolve(hist, np.ones(2 * UNIFORM_BAND + 1), mode="same")
    level = int(window.argmax())
    value = float(window[level] / frame.gray.size)
    return Measure(value, f"{value:.0%} of the frame within {UNIFORM_BAND} levels of {level}")


def occlusion(frame: Frame) -> Measure:
    """Share of the frame (0..1) covered by the largest connected region of flat cells (about
    32 px, little luma variation, almost no edges) in the smoothed, contrast-normalised frame:
    tape, a board, spray paint or a lens cap over part of the view. Alert above 0.35: a frame
    half covered by a flat block reads ~0.47, busy scenes under 0.1, a blurred one 0.07, the
    synthetic landscape (plain grass) 0.33, the scikit-image cameraman (a big plain sky) 0.22,
    the night-sky rocket photo 0.51 (a false alarm no fixed threshold avoids)."""
    smooth = cv2.GaussianBlur(frame.norm, (5, 5), 0)
    edges = (cv2.Canny(smooth.astype(np.uint8), 50, 150) > 0).astype(np.float32)
    height, width = smooth.shape
    grid = (max(2, round(width / CELL)), max(2, round(height / CELL)))
    mean = cv2.resize(smooth, grid, interpolation=cv2.INTER_AREA)
    mean_sq = cv2.resize(smooth * smooth, grid, interpolation=cv2.INTER_AREA)
    std = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    edge_share = cv2.resize(edges, grid, interpolation=cv2.INTER_AREA)
    flat = ((std < FLAT_STD) & (edge_share < FLAT_EDGES)).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=4)
    largest = int(stats[1:, cv2.CC_STAT_AREA].max()) if count > 1 else 0
    value = largest / flat.size
    return Measure(value, f"largest flat region covers {value:.0%} of the frame")
