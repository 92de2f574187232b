"""``image.diagnose``'s detectors on real frames, beside the OpenCV ones they replaced (not a test).

    python -m bench.detectors [--frames 24] [--repeat 5]

Frames are reduced to the pipeline's analysis size (long side 640) first, as ``run_diagnosis``
does. ``--frames`` frames of opencv-doc's pedestrian clip (2-8 people in view), the astronaut
portrait (one person, one face), and 16 frames with nobody (12 opencv-doc photos of fruit,
buildings, a butterfly..., four synthetic scenes). For each detector: what it finds, the time
to load it, and ms per clip frame, one frame per call (median of ``--repeat`` passes). Then
SSDLite and BlazeFace one frame per call against the whole list in batches of
``detect.MAX_BATCH`` (one model run each).

HOG and Haar are kept here only, as the baseline: ``detect.py`` had them before.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from genqueue.handlers.diagnose import checks, detect
from genqueue.handlers.diagnose.detect import RGB, Detection
from tests import diagnose_scenes as scenes

Batch = Callable[[Sequence[RGB]], list[list[Detection]]]
PHOTOS = Path("/usr/share/doc/opencv-doc/examples/data")
NOBODY = [
    *("apple.jpg", "orange.jpg", "fruits.jpg", "building.jpg", "butterfly.jpg", "home.jpg"),
    *("starry_night.jpg", "smarties.png", "box_in_scene.png", "aero1.jpg", "leuvenA.jpg"),
    "stuff.jpg",
]
ANALYSIS_SIDE = 640


# -- the baseline: OpenCV's detectors, as genqueue/handlers/diagnose/detect.py ran them ---------
@cache
def _hog() -> Any:
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
    return hog


@cache
def _haar() -> Any:
    folder = str(cv2.data.haarcascades)  # type: ignore[attr-defined]
    return cv2.CascadeClassifier(folder + "haarcascade_frontalface_default.xml")


def hog_people(rgb: RGB) -> list[Detection]:
    """HOG + linear SVM, stride 8, pyramid step 1.1, SVM margin over 0.5."""
    if min(rgb.shape[:2]) < 128:
        return []
    boxes, weights = _hog().detectMultiScale(rgb, winStride=(8, 8), padding=(8, 8), scale=1.1)
    return [
        Detection(int(x), int(y), int(w), int(h), float(s))
        for (x, y, w, h), s in zip(boxes, np.ravel(weights), strict=True)
        if s >= 0.5
    ]


def haar_faces(rgb: RGB) -> list[Detection]:
    """Frontal-face cascade on the equalised grey frame, step 1.2, 5 neighbours, 24 px."""
    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    boxes, hits = _haar().detectMultiScale2(gray, scaleFactor=1.2, minNeighbors=5, minSize=(24, 24))
    return [
        Detection(int(x), int(y), int(w), int(h), float(n))
        for (x, y, w, h), n in zip(boxes, np.ravel(hits), strict=True)
    ]


def one_by_one(single: Callable[[RGB], list[Detection]]) -> Batch:
    return lambda frames: [single(f) for f in frames]


DETECTORS: list[tuple[str, str, Callable[[], object], Batch]] = [
    ("people", "SSDLite-MobileNetV2 (ONNX)", detect.load_people_detector, detect.detect_people),
    ("people", "HOG + SVM (OpenCV)", _hog, one_by_one(hog_people)),
    ("faces", "BlazeFace full range (LiteRT)", detect.load_face_detector, detect.detect_faces),
    ("faces", "Haar frontal face (OpenCV)", _haar, one_by_one(haar_faces)),
]


def analysis_size(rgb: RGB) -> RGB:
    return checks.prepare(rgb, ANALYSIS_SIDE).rgb


def read_photo(path: Path) -> RGB:
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise FileNotFoundError(f"{path} is missing: run `make test-data` (Debian's opencv-doc)")
    return np.ascontiguousarray(bgr[..., ::-1], np.uint8)


def nobody_frames() -> list[RGB]:
    photos = [read_photo(PHOTOS / name) for name in NOBODY]
    sharp = scenes.scene()
    synthetic = [sharp, scenes.landscape(), scenes.dark(sharp), scenes.colour_cast(sharp)]
    return [analysis_size(f) for f in photos + synthetic]


def ms_per_frame(run: Batch, frames: list[RGB], repeat: int, batched: bool) -> float:
    """Median over ``repeat`` passes of the time per frame: the whole list in one call
    (``batched``), or one frame per call."""
    passes = []
    for _ in range(repeat):
        started = time.perf_counter()
        if batched:
            run(frames)
        else:
            for frame in frames:
                run([frame])
        passes.append((time.perf_counter() - started) * 1000 / len(frames))
    return statistics.median(passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=24, help="pedestrian clip frames")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    clip = [analysis_size(f) for f in scenes.vtest_frames(every=30, count=args.frames)]
    portrait, nobody = scenes.astronaut(), nobody_frames()
    print(
        f"{len(clip)} frames of vtest.avi at {clip[0].shape[1]}x{clip[0].shape[0]} (one every"
        f" 30), astronaut {portrait.shape[1]}x{portrait.shape[0]}, {len(nobody)} frames with"
        " nobody; 'per clip frame': the first 6, then the mean over all\n"
    )
    print(
        f"{'finds':<7}{'detector':<31}{'per clip frame':>24}{'mean':>6}{'astro':>6}"
        f"{'nobody':>8}{'load ms':>9}{'ms/frame':>10}"
    )
    for finds, name, load, run in DETECTORS:
        started = time.perf_counter()
        load()
        load_ms = (time.perf_counter() - started) * 1000
        counts = [len(found) for found in run(clip)]  # also the warm-up of batched runs
        for frame in clip:  # and of single-frame runs
            run([frame])
        false_hits = sum(len(found) for found in run(nobody))
        shown = " ".join(str(n) for n in counts[:6])
        print(
            f"{finds:<7}{name:<31}{shown:>24}{statistics.mean(counts):>6.1f}"
            f"{len(run([portrait])[0]):>6}{false_hits:>8}{load_ms:>9.0f}"
            f"{ms_per_frame(run, clip, args.repeat, batched=False):>10.1f}"
        )
    print(f"\nbatched: the {len(clip)} clip frames, {detect.MAX_BATCH} frames per model run")
    print(f"{'detector':<31}{'one by one ms/frame':>21}{'batched ms/frame':>18}{'speed-up':>10}")
    for _, name, _, run in DETECTORS[::2]:
        single = ms_per_frame(run, clip, args.repeat, batched=False)
        batch = ms_per_frame(run, clip, args.repeat, batched=True)
        print(f"{name:<31}{single:>21.1f}{batch:>18.1f}{single / batch:>9.2f}x")


if __name__ == "__main__":
    main()
