"""Live previews: the small pictures a running handler shows of its work (``ctx.preview``).

One way for every context (the worker's, a pool process's): a :class:`PreviewThrottle` per run
decides which pictures become previews and encodes only those (:func:`encode_preview`); the
worker records each as a ``task.preview`` event whose data is :meth:`Preview.event_data`, and
clients read it back with :meth:`Preview.from_event`.

The bounds, and why:

- ``INTERVAL_S`` 0.3: at most about three a second per task, enough to watch a picture form,
  the first one 0.3 s into the run. A picture that comes sooner waits as the *pending* one,
  and a newer one replaces it (only the latest picture matters); it is sent once its time
  has come, at the handler's next call of the context (``preview`` or ``progress``) or the
  worker's next flush round (0.2 s), whichever is first, or when the run ends, so a run
  shorter than 0.3 s sends one preview: its last picture. The flusher sends at most one per
  round, whatever a context does.
- ``MAX_SIDE`` 256 px on the longest side: a thumbnail that shows where the picture is
  going, and what a console card or a phone shows at full resolution.
- ``MAX_BYTES`` 24 KiB (32 KiB of base64 in the event): a render is 5-10 KB at the first
  quality tried (75); only near-noise needs the lower ones (down to 30; past that the picture
  shrinks). At three a second a watched task costs 100 KB/s at worst.
- JPEG, not WebP: under a millisecond at this size where Pillow's WebP takes 10-25 ms, for
  about a third fewer bytes; every browser and every Pillow decodes it. JPEG or WebP bytes a
  handler already has (an upstream's preview) pass through untouched when within bounds.

Stores keep only the latest preview of each task in their event history (``Store.add_event``),
so a stream resumed with ``Last-Event-ID`` replays one picture per task, not hundreds.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genqueue.models import EventType

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

PREVIEW_EVENT = EventType.PREVIEW.value
INTERVAL_S = 0.3
MAX_SIDE = 256
MAX_BYTES = 24 * 1024
QUALITIES = (75, 60, 45, 30)
_SIGNATURES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


@dataclass(frozen=True)
class Preview:
    """One encoded preview: ``data`` is the image file (``content_type``), ``seq`` counts the
    previews of a run from 1 (a gap means one was replaced by a newer one before it was sent;
    a new attempt starts again at 1)."""

    content_type: str
    data: bytes
    width: int
    height: int
    seq: int

    @property
    def suffix(self) -> str:
        """The file name suffix for ``data``: ``.jpg`` or ``.webp``."""
        return ".webp" if self.content_type == "image/webp" else ".jpg"

    def event_data(self) -> dict[str, Any]:
        """The data of its ``task.preview`` event (the image as base64)."""
        return {
            "content_type": self.content_type,
            "data": base64.b64encode(self.data).decode("ascii"),
            "width": self.width,
            "height": self.height,
            "seq": self.seq,
        }

    @classmethod
    def from_event(cls, event: Any) -> Preview:
        """The preview in a ``task.preview`` event: a :class:`genqueue.models.Event`, a
        client's ``ServerEvent`` (whose data is the event as JSON), or either's data as a
        dict. ``ValueError`` if it is no preview."""
        name = getattr(event, "event", None) or getattr(event, "type", None)
        if name is not None and name != PREVIEW_EVENT:
            raise ValueError(f"not a {PREVIEW_EVENT} event: {name!r}")
        data = event if isinstance(event, Mapping) else getattr(event, "data", None)
        if isinstance(data, Mapping) and isinstance(data.get("data"), Mapping):
            if data.get("type", PREVIEW_EVENT) != PREVIEW_EVENT:
                raise ValueError(f"not a {PREVIEW_EVENT} event: {data.get('type')!r}")
            data = data["data"]  # an event as JSON: the preview is its data
        if not isinstance(data, Mapping):
            raise ValueError(f"not a {PREVIEW_EVENT} event: {event!r:.100}")
        try:
            return cls(
                content_type=str(data["content_type"]),
                data=base64.b64decode(data["data"], validate=True),
                width=int(data["width"]),
                height=int(data["height"]),
                seq=int(data["seq"]),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ValueError(f"not a {PREVIEW_EVENT} event: {exc!r}") from None

    def image(self) -> Image.Image:
        """The picture, decoded by Pillow."""
        from PIL import Image

        picture = Image.open(io.BytesIO(self.data))
        picture.load()
        return picture


def check_source(image: object) -> None:
    """Cheap checks of what a handler passed, at once (the picture itself may be encoded later):
    ``TypeError`` or ``ValueError`` if it cannot be a preview."""
    import numpy as np
    from PIL import Image

    if isinstance(image, Image.Image):
        if 0 in image.size:
            raise ValueError("preview: the image is empty")
        return
    if isinstance(image, bytes | bytearray | memoryview):
        head = bytes(image[:16])
        if not (_kind_of(head) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")):
            raise ValueError("preview: bytes must be a JPEG, PNG or WebP file")
        return
    if isinstance(image, np.ndarray):
        shape = image.shape
        channels = shape[2] if len(shape) == 3 else 1
        if len(shape) not in (2, 3) or channels not in (1, 3, 4) or 0 in shape:
            raise ValueError(f"preview: an array must be (h, w), (h, w, 3) or (h, w, 4): {shape}")
        if image.dtype.kind not in "buif":
            raise ValueError(f"preview: an array of {image.dtype} is no picture")
        return
    raise TypeError(f"preview: expected a PIL image, a numpy array or image bytes, not {image!r}")


def _kind_of(head: bytes) -> str | None:
    for signature, content_type in _SIGNATURES.items():
        if head.startswith(signature):
            return content_type
    return None


def encode_preview(image: object, seq: int) -> Preview:
    """``image`` as a preview: at most ``MAX_SIDE`` px on its longest side and ``MAX_BYTES``
    long. JPEG at the best quality that fits (smaller if even the lowest does not); JPEG or
    WebP bytes already within bounds are kept as they are."""
    from PIL import Image

    check_source(image)
    if isinstance(image, bytes | bytearray | memoryview):
        data = bytes(image)
        picture: Image.Image = Image.open(io.BytesIO(data))
        content_type = Image.MIME.get(picture.format or "")
        fits = max(picture.size) <= MAX_SIDE and len(data) <= MAX_BYTES
        if fits and content_type in ("image/jpeg", "image/webp"):
            return Preview(content_type, data, picture.width, picture.height, seq)
        picture.draft(None, (MAX_SIDE, MAX_SIDE))  # a JPEG decodes at a reduced scale
    elif isinstance(image, Image.Image):
        picture = image
    else:
        picture = _from_array(image)
    picture = _fit(_plain(picture), MAX_SIDE)
    while True:
        for quality in QUALITIES:
            out = io.BytesIO()
            picture.save(out, "JPEG", quality=quality)
            if out.tell() <= MAX_BYTES:
                return Preview("image/jpeg", out.getvalue(), picture.width, picture.height, seq)
        picture = _fit(picture, max(16, round(max(picture.size) * 0.75)))  # near-noise


def _fit(picture: Image.Image, side: int) -> Image.Image:
    """The picture with its longest side at most ``side`` px (a new one if it was larger)."""
    from PIL import Image

    scale = side / max(picture.size)
    if scale >= 1:
        return picture
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def _plain(picture: Image.Image) -> Image.Image:
    """The picture as RGB or greyscale (what JPEG holds); alpha is dropped."""
    if picture.mode in ("RGB", "L"):
        return picture
    grey = picture.mode in ("1", "LA", "La", "I", "I;16", "F")
    return picture.convert("L" if grey else "RGB")


def _from_array(array: Any) -> Image.Image:
    """A picture from an (h, w[, c]) array: uint8 (other integers are clipped to 0..255),
    floats in 0..1, or booleans. Subsampled first to about ``MAX_SIDE`` (every n-th pixel:
    aliasing is fine in a preview), so a 2048 px float canvas costs what a 256 px one does."""
    import numpy as np
    from PIL import Image

    step = max(1, max(array.shape[:2]) // MAX_SIDE)
    a = array[::step, ::step]
    if a.ndim == 3:
        a = a[..., 0] if a.shape[2] == 1 else a[..., :3]
    if a.dtype.kind == "f":
        a = a * np.float32(255)
        a += np.float32(0.5)
        np.clip(a, 0, 255, out=a)
        with np.errstate(invalid="ignore"):  # NaN: some value, not an error
            a = a.astype(np.uint8)
    elif a.dtype.kind == "b":
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(a))


class PreviewThrottle:
    """Which of one run's pictures become previews: at most one per ``interval_s``, the
    latest. Encoding happens only for those sent, in the thread that asks (the handler's).

    ``offer`` takes each picture; ``due`` sends the pending one once its time has come (call
    it whenever the handler calls the context); ``flush`` sends it at the end of the run. Each
    returns the :class:`Preview` to send, or None. Thread-safe."""

    def __init__(
        self,
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        encode: Callable[[object, int], Preview] = encode_preview,
    ) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._encode = encode
        self._lock = threading.Lock()
        # As if one was sent when the run started: the first comes ``interval_s`` in (or at
        # the end of a shorter run), since the very first steps show little.
        self._last = clock()
        self._pending: object | None = None
        self._seq = 0

    @property
    def waiting(self) -> bool:
        """Whether a picture is pending."""
        return self._pending is not None

    def offer(self, image: object) -> Preview | None:
        """A picture from the handler: the preview to send now, or None (then it is the
        pending one). A :class:`Preview` was throttled where it was made (a pool process):
        it is sent as it is."""
        if isinstance(image, Preview):
            return image
        check_source(image)
        with self._lock:
            if self._clock() - self._last < self._interval_s:
                self._pending = image
                return None
            self._pending = None
            return self._send(image)

    def due_in_s(self) -> float:
        """Seconds until a pending picture's time comes (0: it has)."""
        with self._lock:
            return max(0.0, self._interval_s - (self._clock() - self._last))

    def due(self) -> Preview | None:
        """The pending picture, if its time has come. Cheap when nothing is pending."""
        if self._pending is None:
            return None
        with self._lock:
            image = self._pending
            if image is None or self._clock() - self._last < self._interval_s:
                return None
            self._pending = None
            return self._send_later(image)

    def flush(self) -> Preview | None:
        """At the end of the run: the pending picture, whatever the time."""
        with self._lock:
            image, self._pending = self._pending, None
            return None if image is None else self._send_later(image)

    def _send(self, image: object) -> Preview:
        self._last = self._clock()
        preview = self._encode(image, self._seq + 1)
        self._seq += 1
        return preview

    def _send_later(self, image: object) -> Preview | None:
        """A pending picture that cannot be encoded is logged and dropped: the call that
        handed it over has returned, and the one asking now is not to blame."""
        try:
            return self._send(image)
        except Exception:
            log.exception("a preview could not be encoded; dropped")
            return None
