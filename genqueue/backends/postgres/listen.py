"""Listener: a connection of its own that LISTENs on one channel and keeps doing so.

NOTIFY is only an accelerator here: whoever waits on a listener also polls slowly, so a
notification lost while the connection was down only delays. When the connection drops the
listener reconnects by itself, and wakes its waiter once connected again, since anything may
have happened meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from genqueue.backends.postgres.db import UNAVAILABLE, Conn, Target, connect_one, unavailable
from genqueue.errors import BackendUnavailableError

log = logging.getLogger(__name__)

RECONNECT_S = (0.1, 2.0)  # first and longest pause between attempts


class Listener:
    """LISTEN on ``<schema>.<table>``; ``on_wake`` runs on every notification."""

    def __init__(self, target: Target, table: str, on_wake: Callable[[], None]) -> None:
        self.target = target
        self.channel = target.channel(table)
        self.conn: Conn | None = None
        self._on_wake = on_wake
        self._lost = asyncio.Event()

    async def connect(self) -> None:
        """Open the connection and LISTEN; ``BackendUnavailableError`` if the server is down."""
        await self.close()
        conn = await connect_one(self.target)
        try:
            await conn.add_listener(self.channel, self._notified)
        except BaseException as exc:
            conn.terminate()
            if isinstance(exc, UNAVAILABLE):
                raise unavailable(exc) from exc
            raise
        self._lost.clear()
        conn.add_termination_listener(lambda *_: self._lost.set())
        self.conn = conn
        self._on_wake()

    async def reconnect(self) -> None:
        """Connect again, pausing longer after each failure, until it works. Logs once when
        an attempt first fails and once when connected again, not on every attempt."""
        pause = RECONNECT_S[0]
        failed_at: float | None = None
        while True:
            try:
                await self.connect()
                if failed_at is not None:
                    down_s = time.monotonic() - failed_at
                    log.warning("LISTEN %s: connected again after %.1f s", self.channel, down_s)
                return
            except BackendUnavailableError as exc:
                if failed_at is None:
                    failed_at = time.monotonic()
                    log.warning("LISTEN %s: %s; reconnecting", self.channel, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_S[1])

    async def keep_listening(self) -> None:
        """Forever (as a task): reconnect whenever the connection drops."""
        while True:
            if self.conn is None or self.conn.is_closed():
                await self.reconnect()
            await self._lost.wait()
            self.conn = None

    def _notified(self, *_: Any) -> None:
        self._on_wake()

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None or conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), 2.0)
        except asyncio.CancelledError:
            conn.terminate()
            raise
        except Exception:  # already gone, or too slow to say goodbye
            conn.terminate()


async def sleep_until(wake: asyncio.Event, timeout_s: float) -> None:
    """Wait for ``wake`` or ``timeout_s``, whichever comes first. Waiters clear ``wake``
    before they look for work, so a notification that arrives while they look is kept."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout_s)
