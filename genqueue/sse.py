"""Server-Sent Events on the client side: parsing the stream, and resuming it after a break.

Both clients read ``/v1/events`` through these, fed line by line. ``Resume`` keeps the last
event id (sent back as ``Last-Event-ID``) and the pause before opening the stream again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from genqueue.errors import BackendUnavailableError, GenqueueError
from genqueue.retry import RetryPolicy


@dataclass(frozen=True)
class ServerEvent:
    """One Server-Sent Event: its name (``task.progress``, ``snapshot``...) and JSON data."""

    event: str
    data: dict[str, Any]
    id: str | None = None


def parse_sse(lines: Iterator[str] | list[str]) -> Iterator[ServerEvent]:
    """Turn SSE lines into events (used by both clients, fed line by line)."""
    event: str = "message"
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield ServerEvent(event, json.loads("\n".join(data)), event_id)
            event, event_id = "message", None
            data = []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value


class SseDecoder:
    def __init__(self) -> None:
        self._pending: list[str] = []

    def feed(self, line: str) -> list[ServerEvent]:
        self._pending.append(line)
        if line != "":
            return []
        lines, self._pending = self._pending, []
        return list(parse_sse(lines))


# The server sends a keep-alive every 15 s: a minute of silence is a dead connection.
STREAM_TIMEOUT = httpx.Timeout(None, connect=10, read=60)
RECONNECT = RetryPolicy(max_attempts=1, base_delay_s=0.1, max_delay_s=2.0)  # equal jitter
BROKEN = (httpx.TransportError, BackendUnavailableError)  # worth opening the stream again


class Resume:
    """Where an event stream is (the last event id), and how long to wait before opening it
    again after it broke; the same for both clients."""

    def __init__(self, give_up_s: float) -> None:
        self.last_id: str | None = None
        self._opened = False
        self._give_up_s = give_up_s
        self._failures = 0
        self._failing_since: float | None = None

    def headers(self) -> dict[str, str]:
        return {"Last-Event-ID": self.last_id} if self.last_id else {}

    def opened(self) -> None:
        self._opened = True

    def seen(self, event: ServerEvent) -> None:
        self.last_id = event.id or self.last_id
        self._failures, self._failing_since = 0, None

    def pause_s(self, error: Exception | None) -> float:
        """Seconds to wait before opening the stream again. Raises ``error`` instead when
        there is nothing to resume (the first connection failed) or after ``give_up_s`` of
        failures in a row."""
        if error is not None and not self._opened:
            raise error
        now = time.monotonic()
        self._failing_since = self._failing_since or now
        if now - self._failing_since > self._give_up_s:
            raise error or GenqueueError("the event stream keeps ending")
        self._failures += 1
        return RECONNECT.delay_s(self._failures)
