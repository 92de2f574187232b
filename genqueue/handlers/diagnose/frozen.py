"""Frozen-frame detection: is this camera's picture the same as the last one seen?

Each camera keeps a fingerprint (a 32x32 grey thumbnail, the time and the task that made it)
in the artifact store, which every worker machine shares, in a folder of its own named
``cam-<sha1 of the camera id>``: a name no task or upload id can take (those are hex and
``u-<hex>``), and one that keeps any characters of the id out of paths. Retention purges the
folder of a camera silent for longer than the retention period, which is right: an old picture
says nothing about a frozen feed.

The fingerprint holds the last two frames, so a retried task (the same task id) compares with
the frame before its own first attempt rather than with itself. Two frames of one camera
diagnosed at the same moment on two workers race: the later write wins, and at worst one
comparison is made against an older frame.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from genqueue.artifacts import ArtifactStore
from genqueue.errors import GenqueueError

THUMB = 32
FINGERPRINT = "fingerprint.json"
FOLDER_PREFIX = "cam-"


@dataclass(frozen=True)
class Seen:
    task_id: str
    time: float
    thumb: NDArray[np.float32]


@dataclass(frozen=True)
class Comparison:
    difference: float | None  # None: nothing to compare with (first frame of this camera)
    age_s: float | None


def camera_folder(camera_id: str) -> str:
    return FOLDER_PREFIX + hashlib.sha1(camera_id.encode()).hexdigest()


def thumbnail(gray: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Area-averaged, in float: averaging ~300 pixels into one keeps sensor noise visible as
    small differences, while a frozen feed gives exactly the same numbers."""
    small = cv2.resize(gray.astype(np.float32), (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.float32)


def compare_and_remember(
    store: ArtifactStore, camera_id: str, task_id: str, thumb: NDArray[np.float32]
) -> Comparison:
    """Compare with the camera's last frame from another task, then remember this one.

    The difference is the mean absolute difference of the two thumbnails in grey levels; the
    check alerts below 0.05. A stuck feed repeats the very same pixels and reads 0.000; the
    same still view with the faint grain of a new exposure (sigma 1 to 2 grey levels) reads
    0.1-0.5, a different view ~25. Below 0.05 only a camera without any sensor noise and a
    perfectly still scene could be mistaken for a frozen one."""
    folder = camera_folder(camera_id)
    history = _load(store, folder)
    if history and history[0].task_id == task_id:
        history = history[1:]  # a retry of the task that wrote the newest entry
    now = time.time()
    previous = history[0] if history else None
    entries = [Seen(task_id, now, thumb), *([previous] if previous else [])]
    store.save(folder, FINGERPRINT, json.dumps([_dump(s) for s in entries]).encode())
    if previous is None:
        return Comparison(None, None)
    difference = float(np.abs(thumb - previous.thumb).mean())
    return Comparison(difference, max(0.0, now - previous.time))


def _dump(seen: Seen) -> dict[str, Any]:
    raw = base64.b64encode(seen.thumb.astype("<f4").tobytes()).decode()
    return {"task_id": seen.task_id, "time": seen.time, "thumb": raw}


def _load(store: ArtifactStore, folder: str) -> list[Seen]:
    """The stored history, newest first; a missing or unreadable file is no history."""
    try:
        items = json.loads(store.read(folder, FINGERPRINT))
        return [
            Seen(
                str(item["task_id"]),
                float(item["time"]),
                np.frombuffer(base64.b64decode(item["thumb"]), "<f4")
                .astype(np.float32)
                .reshape(THUMB, THUMB),
            )
            for item in items
        ]
    except (GenqueueError, ValueError, KeyError, TypeError, binascii.Error):
        return []
