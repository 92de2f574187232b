"""Reachability of the worker's backends, and calls that wait out an outage.

The worker owns outage survival for every backend (dramatiq's ``ConsumerThread`` shape): a call
that finds its backend unreachable marks it down, one prober per backend pings it with capped,
jittered backoff until it answers, and everyone waiting on it resumes then. Each change of
state is logged once, with the downtime on recovery, never once per retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from genqueue.errors import OUTAGE_ERRORS
from genqueue.redact import redact_text
from genqueue.retry import OUTAGE_BACKOFF, RetryPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")


class GaveUpError(Exception):
    """A wait for a backend ended because the worker is stopping now."""


class Backoff:
    """Pauses between tries of a call that meets an outage: ``OUTAGE_BACKOFF`` (0.2 s doubling
    up to 5 s, equal jitter), until :meth:`reset`."""

    def __init__(self, policy: RetryPolicy = OUTAGE_BACKOFF) -> None:
        self._policy = policy
        self._attempt = 0

    def next_s(self) -> float:
        self._attempt = min(self._attempt + 1, 64)
        return self._policy.delay_s(self._attempt)

    def reset(self) -> None:
        self._attempt = 0


class Reachability:
    """One backend as this worker last found it: reachable, or down since when and why."""

    def __init__(self, name: str, ping: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._ping = ping
        self.reachable = asyncio.Event()
        self.reachable.set()
        self.reason: str | None = None
        self._down_since = 0.0
        self._prober: asyncio.Task[None] | None = None

    async def ping(self) -> None:
        await self._ping()

    def failed(self, exc: BaseException) -> None:
        """A call found the backend unreachable: pause its users until a ping answers."""
        if not self.reachable.is_set():
            return
        self.reachable.clear()
        self._down_since = time.monotonic()
        since = datetime.now(UTC).strftime("%H:%M:%S")
        why = redact_text(str(exc) or type(exc).__name__)
        self.reason = f"{self.name} unreachable since {since} UTC: {why}"
        log.warning("%s; pausing new work and retrying with backoff", self.reason)
        self._prober = asyncio.create_task(self._probe(), name=f"genqueue-probe-{self.name}")

    def recovered(self) -> None:
        if self.reachable.is_set():
            return
        downtime = time.monotonic() - self._down_since
        log.warning("%s reachable again after %.1f s; resuming", self.name, downtime)
        self.reason = None
        self.reachable.set()

    async def _probe(self) -> None:
        backoff = Backoff()
        while not self.reachable.is_set():
            await asyncio.sleep(backoff.next_s())
            try:
                await self._ping()
            except OUTAGE_ERRORS:
                continue
            self.recovered()

    async def call(self, fn: Callable[[], Awaitable[T]], give_up: asyncio.Event) -> T:
        """``fn()``, repeated after each outage until it gets through; ``GaveUpError`` once
        ``give_up`` is set while the backend is still down."""
        while True:
            await self._wait(give_up)
            try:
                return await fn()
            except OUTAGE_ERRORS as exc:
                self.failed(exc)

    async def _wait(self, give_up: asyncio.Event) -> None:
        if self.reachable.is_set():
            return
        waits = [asyncio.ensure_future(self.reachable.wait())]
        waits.append(asyncio.ensure_future(give_up.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
        if not self.reachable.is_set():
            raise GaveUpError(f"{self.name} still unreachable")

    async def aclose(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
