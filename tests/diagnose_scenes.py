"""Camera frames for the ``image.diagnose`` tests. Synthetic ones, drawn with NumPy and OpenCV:
a busy, colourful, textured scene and each defect applied to it, the way a camera shows it. Real
ones, from packages: the pedestrian clip of Debian's ``opencv-doc`` (``make test-data``
installs it) and the astronaut portrait of scikit-image (``tests/data``)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

Frame = NDArray[np.uint8]  # RGB, height x width x 3

# A real CCTV clip: 795 frames of 768 x 576 at 10 fps, a campus path seen from above, with
# 2-8 people walking through at 40-150 px tall. In Debian's opencv-doc (``make test-data``).
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
ASTRONAUT = Path(__file__).parent / "data" / "astronaut.jpg"  # 384 x 384, one frontal face


def _u8(values: Any) -> Frame:
    return np.asarray(np.clip(values, 0, 255), np.uint8)


def scene(seed: int = 0, width: int = 640, height: int = 480) -> Frame:
    """Shapes of every size and colour on a shaded background, captions, and a fine sensor
    grain: sharp, well exposed, neutral on average, with texture everywhere."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0.0, 1.0, height)[:, None, None]
    top, bottom = np.array([200, 170, 120]), np.array([60, 90, 70])
    image = _u8(np.ascontiguousarray((top * (1 - rows) + bottom * rows).repeat(width, axis=1)))
    for _ in range(70):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y, size = (
            int(rng.integers(0, width)),
            int(rng.integers(0, height)),
            int(rng.integers(8, 90)),
        )
        match int(rng.integers(0, 3)):
            case 0:
                cv2.rectangle(image, (x, y), (x + size, y + int(rng.integers(8, 90))), colour, -1)
            case 1:
                cv2.circle(image, (x, y), size // 2, colour, -1)
            case _:
                end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
                cv2.line(image, (x, y), end, colour, int(rng.integers(1, 4)))
    for n in range(8):
        at = (int(rng.integers(0, width - 200)), int(rng.integers(20, height)))
        cv2.putText(image, f"CAM {seed}-{n} 2026", at, cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255,) * 3, 2)
    return with_grain(image, rng)


def with_grain(image: Frame, rng: np.random.Generator, sigma: float = 6.0) -> Frame:
    """A fine grain, as every real sensor adds (different on every frame)."""
    grain = cv2.GaussianBlur(rng.normal(0.0, sigma, image.shape[:2]), (0, 0), 1.0)
    return _u8(image + grain[..., None])


def landscape(width: int = 640, height: int = 480) -> Frame:
    """Sky, sun, mountains, trees and grass: an outdoor view with nobody in it."""
    rng = np.random.default_rng(3)
    rows = np.linspace(0.0, 1.0, height)[:, None, None]
    sky = np.array([90, 150, 230]) * (1 - rows) + np.array([200, 220, 240]) * rows
    image = np.ascontiguousarray(sky.repeat(width, axis=1)).astype(np.uint8)
    cv2.circle(image, (width * 4 // 5, height // 6), 30, (255, 240, 180), -1)
    for n, shade in enumerate(((110, 110, 130), (80, 95, 90))):
        peaks = [
            (x, int(height * (0.35 + 0.1 * n + 0.12 * rng.random())))
            for x in range(0, width + 80, 80)
        ]
        cv2.fillPoly(image, [np.array([(0, height), *peaks, (width, height)], np.int32)], shade)
    ground = height * 2 // 3
    image[ground:] = (70, 130, 50)
    for x in range(10, width, 45):
        base = ground + int(rng.integers(0, 40))
        tree = np.array([(x, base - 60), (x - 18, base), (x + 18, base)], np.int32)
        cv2.fillPoly(image, [tree], (30, 90 + int(rng.integers(0, 40)), 40))
    return with_grain(image, rng, sigma=8.0)


def blurred(image: Frame) -> Frame:
    return np.asarray(cv2.GaussianBlur(image, (0, 0), 4), np.uint8)


def dark(image: Frame) -> Frame:
    return _u8(image * 0.15)


def overexposed(image: Frame) -> Frame:
    return _u8(image.astype(np.float32) * 1.6 + 90)


def low_contrast(image: Frame) -> Frame:
    return _u8(128 + (image.astype(np.float32) - 128) * 0.15)


def colour_cast(image: Frame) -> Frame:
    """A white-balance fault: blue gain far too low, red lifted (a strong yellow-orange)."""
    gains, offsets = np.array([1.0, 0.8, 0.45]), np.array([30, 10, 0])
    return _u8(image.astype(np.float32) * gains + offsets)


def noisy(image: Frame, sigma: float = 25.0) -> Frame:
    rng = np.random.default_rng(1)
    return _u8(image + rng.normal(0.0, sigma, image.shape))


def black(image: Frame) -> Frame:
    """No video: black with the faint noise of the capture card."""
    rng = np.random.default_rng(2)
    return _u8(rng.normal(3.0, 1.5, image.shape))


def uniform(image: Frame) -> Frame:
    """A grey screen, as some recorders show for a camera they cannot reach."""
    return np.full_like(image, 128)


def half_covered(image: Frame) -> Frame:
    """Something flat (tape, a board) over the left half of the lens."""
    covered = image.copy()
    covered[:, : image.shape[1] // 2] = (90, 80, 70)
    return covered


def vtest_frames(every: int = 100, count: int = 6) -> list[Frame]:
    """``count`` frames of the pedestrian clip, one every ``every``, from the first, as RGB."""
    if not VTEST.is_file():
        raise FileNotFoundError(f"{VTEST} is missing: run `make test-data` (Debian's opencv-doc)")
    capture = cv2.VideoCapture(str(VTEST))
    frames: list[Frame] = []
    try:
        for n in range(every * (count - 1) + 1):
            ok, bgr = capture.read()
            if not ok:
                raise ValueError(f"{VTEST} ended at frame {n}")
            if n % every == 0:
                frames.append(np.ascontiguousarray(bgr[..., ::-1]))
    finally:
        capture.release()
    return frames


def astronaut() -> Frame:
    return np.asarray(Image.open(ASTRONAUT).convert("RGB"), np.uint8)


def encode(image: Frame, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=format)
    return buffer.getvalue()


def inline(image: Frame) -> dict[str, str]:
    """An ``InputFile`` carrying the frame inline, as a client may send a small one."""
    return {"base64": base64.b64encode(encode(image)).decode()}
