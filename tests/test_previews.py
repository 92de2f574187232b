"""Live previews (genqueue/previews.py): the encoder keeps every preview small, and the throttle
sends at most one per interval, always the latest picture, encoding only what it sends."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from itertools import pairwise

import numpy as np
import pytest
from PIL import Image

from genqueue.events import PREVIEW_BACKLOG, EventFilter, Subscription
from genqueue.models import Event, EventType, TaskStatus
from genqueue.previews import (
    INTERVAL_S,
    MAX_BYTES,
    MAX_SIDE,
    Preview,
    PreviewThrottle,
    encode_preview,
)
from genqueue.sse import ServerEvent


def decoded(preview: Preview) -> Image.Image:
    picture = preview.image()
    assert picture.size == (preview.width, preview.height)
    return picture


@pytest.mark.parametrize(
    ("shape", "dtype", "expected"),
    [
        ((1024, 2048, 3), np.float32, (256, 128)),  # a renderer's float canvas, 0..1
        ((1080, 1920, 3), np.uint8, (256, 144)),  # a video frame
        ((300, 100), np.uint8, (85, 256)),  # greyscale
        ((500, 500, 4), np.uint8, (256, 256)),  # alpha is dropped
        ((64, 48, 3), np.uint8, (48, 64)),  # small pictures are not enlarged
    ],
)
def test_arrays_are_scaled_to_the_bound_with_their_aspect_kept(
    shape: tuple[int, ...], dtype: type, expected: tuple[int, int]
) -> None:
    rng = np.random.default_rng(7)
    array = rng.random(shape).astype(dtype) if dtype is np.float32 else rng.integers(0, 256, shape)
    preview = encode_preview(array.astype(dtype), seq=4)
    assert (preview.width, preview.height) == expected and preview.seq == 4
    assert preview.content_type == "image/jpeg" and len(preview.data) <= MAX_BYTES
    assert decoded(preview).mode == ("L" if len(shape) == 2 else "RGB")


def test_pure_noise_still_fits_in_the_byte_bound() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (2048, 2048, 3), dtype=np.uint8)
    preview = encode_preview(noise, seq=1)
    assert len(preview.data) <= MAX_BYTES
    assert max(preview.width, preview.height) <= MAX_SIDE


def test_a_pil_image_is_encoded_without_changing_it() -> None:
    picture = Image.new("RGB", (1200, 600), (200, 40, 40))
    preview = encode_preview(picture, seq=1)
    assert picture.size == (1200, 600)
    assert (preview.width, preview.height) == (256, 128)
    assert decoded(preview).getpixel((10, 10)) == pytest.approx((200, 40, 40), abs=4)


def test_jpeg_within_bounds_passes_through_and_others_are_reencoded() -> None:
    small = io.BytesIO()
    Image.new("RGB", (200, 100), "navy").save(small, "JPEG")
    passed = encode_preview(small.getvalue(), seq=2)
    assert passed.data == small.getvalue() and (passed.width, passed.height) == (200, 100)

    big_png = io.BytesIO()
    Image.new("RGB", (1024, 512), "olive").save(big_png, "PNG")
    redone = encode_preview(big_png.getvalue(), seq=3)
    assert redone.content_type == "image/jpeg" and (redone.width, redone.height) == (256, 128)


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("a path", TypeError),
        (np.zeros((4, 4, 2), np.uint8), ValueError),
        (np.zeros((0, 4, 3), np.uint8), ValueError),
        (b"GIF89a not supported", ValueError),
    ],
)
def test_what_cannot_be_a_picture_is_refused_at_once(source: object, error: type) -> None:
    with pytest.raises(error):
        PreviewThrottle().offer(source)


def test_a_preview_round_trips_through_every_event_shape() -> None:
    preview = encode_preview(np.full((32, 32, 3), 128, np.uint8), seq=9)
    data = preview.event_data()
    event = Event(
        id="7",
        type=EventType.PREVIEW,
        task_id="t",
        status=TaskStatus.RUNNING,
        at=datetime.now(UTC),
        data=data,
    )
    frame = ServerEvent("task.preview", event.model_dump(mode="json"), "7")
    for shape in (data, event, frame, event.model_dump(mode="json")):
        assert Preview.from_event(shape) == preview
    with pytest.raises(ValueError):
        Preview.from_event(ServerEvent("task.progress", {"data": {"fraction": 0.5}}))
    with pytest.raises(ValueError):
        Preview.from_event({"data": {"fraction": 0.5}})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def counting_throttle(clock: Clock) -> tuple[PreviewThrottle, list[object]]:
    """A throttle whose encoder records what it was asked to encode."""
    encoded: list[object] = []

    def encode(image: object, seq: int) -> Preview:
        encoded.append(image)
        return Preview("image/jpeg", b"", 1, 1, seq)

    return PreviewThrottle(INTERVAL_S, clock, encode), encoded


def frame(n: int) -> np.ndarray:
    return np.full((2, 2), n % 256, np.uint8)


def test_a_picture_too_soon_waits_and_the_next_one_replaces_it() -> None:
    clock = Clock()
    throttle, encoded = counting_throttle(clock)
    first, second, third = frame(1), frame(2), frame(3)
    assert throttle.offer(frame(0)) is None  # the run has just started: it waits
    clock.now = INTERVAL_S
    assert throttle.offer(first) is not None  # past the interval: it goes at once
    clock.now += 0.1
    assert throttle.offer(second) is None and throttle.waiting
    clock.now += 0.1
    assert throttle.offer(third) is None  # replaces the one waiting
    assert throttle.due() is None  # not yet
    clock.now = 2 * INTERVAL_S
    sent = throttle.due()
    assert sent is not None and sent.seq == 2
    assert encoded == [first, third]  # the replaced ones were never encoded
    assert throttle.due() is None and throttle.flush() is None


def test_a_run_shorter_than_the_interval_sends_its_last_picture_at_the_end() -> None:
    clock = Clock()
    throttle, encoded = counting_throttle(clock)
    for n in range(5):
        assert throttle.offer(frame(n)) is None
        clock.now += 0.01
    last = throttle.flush()
    assert last is not None and last.seq == 1 and len(encoded) == 1


def test_at_most_one_preview_per_interval_however_often_pictures_come() -> None:
    clock = Clock()
    throttle, encoded = counting_throttle(clock)
    sent: list[tuple[float, int]] = []
    for n in range(300):  # a picture every 10 ms for 3 s
        made = throttle.offer(frame(n))
        if made is not None:
            sent.append((clock.now, made.seq))
        clock.now += 0.01
    times = [t for t, _ in sent]
    assert all(b - a >= INTERVAL_S - 1e-9 for a, b in pairwise(times))
    assert 3.0 / INTERVAL_S - 1 <= len(sent) == len(encoded) <= 3.0 / INTERVAL_S
    assert [seq for _, seq in sent] == list(range(1, len(sent) + 1))
    last = throttle.flush()  # the run ends: the newest picture goes, whatever the time
    assert last is not None and encoded[-1] is not None
    assert int(np.asarray(encoded[-1]).flat[0]) == 299 % 256  # the last one offered


def test_a_preview_made_elsewhere_is_passed_on_as_it_is() -> None:
    made = Preview("image/jpeg", b"x", 1, 1, 5)
    clock = Clock()
    throttle, encoded = counting_throttle(clock)
    clock.now = INTERVAL_S
    assert throttle.offer(frame(1)) is not None
    assert throttle.offer(made) is made  # sent even though the interval has not passed
    assert len(encoded) == 1


def event_of(type_: str, n: int) -> Event:
    at = datetime.now(UTC)
    return Event(id=str(n), type=type_, task_id="t", status=TaskStatus.RUNNING, at=at)


def test_a_subscriber_far_behind_gets_no_previews_until_it_catches_up() -> None:
    sub = Subscription(EventFilter())
    for n in range(PREVIEW_BACKLOG):
        sub.offer(event_of(EventType.PROGRESS, n))
    sub.offer(event_of(EventType.PREVIEW, 1000))  # behind: left out
    sub.offer(event_of(EventType.SUCCEEDED, 1001))  # other events still queue
    assert sub.queue.qsize() == PREVIEW_BACKLOG + 1 and not sub.lagged
    while not sub.queue.empty():
        sub.queue.get_nowait()
    sub.offer(event_of(EventType.PREVIEW, 1002))  # caught up: previews flow again
    assert sub.queue.get_nowait().id == "1002"


def test_a_waiting_picture_that_cannot_be_encoded_is_dropped_not_raised() -> None:
    clock = Clock()
    throttle = PreviewThrottle(INTERVAL_S, clock)
    assert throttle.offer(b"\xff\xd8\xff but no JPEG after all") is None  # waits: not read yet
    assert throttle.flush() is None
    clock.now = INTERVAL_S
    with pytest.raises(OSError):  # handed over when it would be sent: the caller hears of it
        throttle.offer(b"\xff\xd8\xff but no JPEG after all")
