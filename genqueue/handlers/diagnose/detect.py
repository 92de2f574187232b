"""Faces and people, with the detectors that ship inside ``opencv-python-headless`` 4.x (no
model download): a Haar cascade for frontal faces and the HOG + linear SVM people detector.

Both are the zero-extra-wheel choice (see shared research note (c)): Haar finds frontal faces
only, HOG misses people under ~128 px tall and has false positives; BlazeFace and an SSDLite
person model would be better when their wheels are added. Boxes come back in the coordinates
of the frame they were given; the caller scales them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

FACE_CASCADE = "haarcascade_frontalface_default.xml"
# The cascade needs about this many overlapping hits to call a face; 5 is OpenCV's usual value
# and keeps textured backgrounds quiet (none on the synthetic scenes, none on the sample photos
# without a face).
FACE_NEIGHBOURS = 5
FACE_MIN_SIDE = 24
# Pyramid steps: 1.2 for faces and 1.1 for HOG halve the detectors' time against OpenCV's
# usual 1.1 and 1.05 (about 40 ms each at 640 px instead of 60-100) and still find the face on
# the test portrait; bulk diagnosis of camera frames is paid per frame.
FACE_SCALE_STEP = 1.2
PEOPLE_SCALE_STEP = 1.1
# HOG keeps a window whose SVM margin is over this; 0.5 is where the research note's sample
# photos lost most of their false positives while the pedestrians of a CCTV clip stayed.
PEOPLE_MIN_WEIGHT = 0.5


@dataclass(frozen=True)
class Detection:
    x: int
    y: int
    width: int
    height: int
    score: float


@cache
def _face_cascade() -> Any:
    """Loaded once per process (tens of ms); cv2's classes are only loosely typed."""
    folder = str(cv2.data.haarcascades)  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(folder + FACE_CASCADE)
    if cascade.empty():
        raise RuntimeError(f"OpenCV has no {FACE_CASCADE}: install opencv-python-headless 4.x")
    return cascade


@cache
def _people_detector() -> Any:
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
    return hog


def faces(gray: NDArray[np.uint8]) -> list[Detection]:
    """Frontal faces; the score is the number of overlapping raw hits (more is surer)."""
    equalised = cv2.equalizeHist(gray)
    boxes, hits = _face_cascade().detectMultiScale2(
        equalised,
        scaleFactor=FACE_SCALE_STEP,
        minNeighbors=FACE_NEIGHBOURS,
        minSize=(FACE_MIN_SIDE, FACE_MIN_SIDE),
    )
    return [
        Detection(int(x), int(y), int(w), int(h), float(n))
        for (x, y, w, h), n in zip(boxes, np.ravel(hits), strict=True)
    ]


def people(rgb: NDArray[np.uint8]) -> list[Detection]:
    """Standing people; the score is the SVM margin."""
    if min(rgb.shape[:2]) < 128:
        return []  # smaller than one detection window
    boxes, weights = _people_detector().detectMultiScale(
        rgb, winStride=(8, 8), padding=(8, 8), scale=PEOPLE_SCALE_STEP
    )
    return [
        Detection(int(x), int(y), int(w), int(h), float(s))
        for (x, y, w, h), s in zip(boxes, np.ravel(weights), strict=True)
        if s >= PEOPLE_MIN_WEIGHT
    ]
