"""Doorbell: wake processes that share a SQLite file the moment something is committed.

SQLite has no notifications, so consumers would have to poll hard to react fast. Instead
every listener binds a Linux abstract-namespace datagram socket and leaves a marker file in a
folder beside the database; ``ring()`` sends one byte to each. A listener still polls slowly
as a fallback (a lost datagram, a non-Linux system), so the bell is only ever an accelerator.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path


class Doorbell:
    """One named bell (e.g. ``deliveries``) of one database file."""

    def __init__(self, db_path: Path, name: str) -> None:
        self.folder = db_path.with_name(f"{db_path.name}.bell") / name
        digest = hashlib.sha1(str(self.folder.resolve()).encode()).hexdigest()[:16]
        self._prefix = f"\0genqueue-{digest}-"
        self._sender: socket.socket | None = None

    def ring(self) -> None:
        """Wake every listener; never blocks, never raises."""
        try:
            entries = os.listdir(self.folder)
        except OSError:
            return
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        for entry in entries:
            try:
                self._sender.sendto(b"!", self._prefix + entry)
            except BlockingIOError:
                pass  # its buffer is full: it has been woken already
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):  # the listener is gone: forget it
                    (self.folder / entry).unlink()
            except OSError:
                pass

    def listen(self) -> Listener:
        return Listener(self)

    @contextlib.asynccontextmanager
    async def bell(self) -> AsyncIterator[Listener]:
        """The listener as a consumer's wake-up (``genqueue.backends.pull.Bell``)."""
        with self.listen() as listener:
            yield listener

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None


class Listener:
    """Wait for the bell, up to a timeout. Use as a context manager inside an event loop."""

    def __init__(self, bell: Doorbell) -> None:
        self._bell = bell
        self._id = uuid.uuid4().hex
        self._sock: socket.socket | None = None
        self._rang = asyncio.Event()

    def __enter__(self) -> Listener:
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind(self._bell._prefix + self._id)
            self._bell.folder.mkdir(parents=True, exist_ok=True)
            (self._bell.folder / self._id).touch()
        except OSError:
            return self  # no bell here: the caller's fallback polling does the work
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._drain)
        return self

    def _drain(self) -> None:
        assert self._sock is not None
        with contextlib.suppress(OSError):
            while self._sock.recv(64):
                pass
        self._rang.set()

    def arm(self) -> None:
        """Nothing to do: a ring is kept until the next :meth:`wait` returns."""

    async def wait(self, timeout_s: float) -> None:
        """Return when the bell rings (or rang since the last wait), or after ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._rang.wait(), timeout_s)
        self._rang.clear()

    def __exit__(self, *exc: object) -> None:
        if self._sock is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._sock.close()
        with contextlib.suppress(OSError):
            (self._bell.folder / self._id).unlink()
