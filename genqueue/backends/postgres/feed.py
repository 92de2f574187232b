"""The event feed behind ``PostgresStore.watch()``: LISTEN for a wake-up, then read the
``events`` table past the last id seen, on a connection of its own.

Event ids come from a sequence, so a transaction can take id 7, and commit after the one that
took id 8. The reader therefore remembers the "holes" below the highest id it has seen. A
hole is filled when its transaction commits (the reader yields it then: that is commit order),
or forgotten once every transaction that could still fill it has ended: its mark is an xid
taken after the hole was seen, and once the snapshot's xmin passes the mark, the hole's
transaction is over (its row, if any, was in that same read). The cursor lives in the
generator, so a reconnect after a dropped connection resumes where it left off.

This relies on one rule of the store's statements: a transaction has its xid (it changed or
locked a task row) before it inserts an event, so a hole's xid is older than its mark.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from genqueue.backends.postgres.db import UNAVAILABLE, Target, unavailable
from genqueue.backends.postgres.listen import Listener, sleep_until
from genqueue.backends.postgres.rows import event_from_row
from genqueue.errors import BackendUnavailableError, EventsExpiredError
from genqueue.models import Event

FALLBACK_POLL_S = 0.5  # NOTIFY wakes the reader at once; this is the fallback
READ_LIMIT = 1000
MAX_GAP = 10_000  # a jump larger than this is not a transaction in flight

START = """
SELECT coalesce(max(id), 0) AS top, pg_current_xact_id()::text::bigint AS mark,
    (SELECT array_agg(id) FROM events
     WHERE id > (SELECT coalesce(max(id), 0) FROM events) - $1) AS recent
FROM events
"""
RESUME = """
SELECT (SELECT min(id) FROM events) AS oldest,
    coalesce(pg_sequence_last_value(pg_get_serial_sequence('events', 'id')::regclass), 0)
        AS newest,
    pg_current_xact_id()::text::bigint AS mark,
    (SELECT array_agg(id) FROM events WHERE id > $1::bigint - $2 AND id <= $1) AS recent
"""
READ = """
SELECT h.horizon, e.* FROM
    (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon) h
LEFT JOIN LATERAL (
    SELECT * FROM events WHERE id > $1 OR id = ANY($2::bigint[]) ORDER BY id LIMIT $3
) e ON true
"""
MARK = "SELECT pg_current_xact_id()::text::bigint"


@dataclass
class Cursor:
    """Where the reader is: the highest id seen, and the holes below it (id -> xid mark, or
    None until marked)."""

    last: int
    holes: dict[int, int | None] = field(default_factory=dict)

    def take(self, rows: list[Any]) -> list[Any]:
        """The rows to yield, in the order they committed as far as the reader can tell."""
        fresh = []
        for row in rows:
            event_id = row["id"]
            if event_id is None:
                continue
            if event_id in self.holes:
                del self.holes[event_id]
            elif event_id > self.last:
                if event_id - self.last <= MAX_GAP:
                    self.holes.update(dict.fromkeys(range(self.last + 1, event_id)))
                self.last = event_id
            else:
                continue
            fresh.append(row)
        if len(rows) < READ_LIMIT:  # every filled hole was in this read
            horizon = rows[0]["horizon"]
            for hole, mark in list(self.holes.items()):
                if mark is not None and mark < horizon:
                    del self.holes[hole]
        return fresh

    def unmarked(self) -> bool:
        return None in self.holes.values()

    def mark(self, xid: int) -> None:
        for hole, mark in self.holes.items():
            if mark is None:
                self.holes[hole] = xid


async def open_feed(target: Target, after: str | None = None) -> AsyncGenerator[Event, None]:
    """Start listening and fix the starting point now (the newest event, or ``after``), then
    return the generator."""
    wake = asyncio.Event()
    listener = Listener(target, "events", wake.set)
    await listener.connect()
    conn = listener.conn
    assert conn is not None
    try:
        if after is None:
            row = await conn.fetchrow(START, MAX_GAP)
            top = row["top"]
        else:
            top = _position(after)
            row = await conn.fetchrow(RESUME, top, MAX_GAP)
            _check_kept(after, top, row["oldest"], row["newest"])
    except UNAVAILABLE as exc:
        await listener.close()
        raise unavailable(exc) from exc
    except BaseException:
        await listener.close()
        raise
    cursor = Cursor(top)
    # Ids below the start that are missing now may belong to transactions in flight: holes.
    recent = set(row["recent"] or ())
    if recent:
        cursor.holes = dict.fromkeys(set(range(min(recent), top)) - recent, row["mark"])
    return _follow(listener, wake, cursor)


def _position(after: str) -> int:
    if not after.isdigit():
        raise EventsExpiredError(f"{after!r} is not a PostgreSQL event id")
    return int(after)


def _check_kept(after: str, position: int, oldest: int | None, newest: int) -> None:
    """Every event after ``position`` must still be kept. Ids have gaps (rolled back
    transactions), so a gap right after a purged ``after`` reads as a loss too."""
    first_kept = newest + 1 if oldest is None else oldest
    if position > newest or position + 1 < first_kept:
        raise EventsExpiredError(
            f"event {after!r} is not kept by this store (kept: {first_kept} to {newest})"
        )


async def _follow(
    listener: Listener, wake: asyncio.Event, cursor: Cursor
) -> AsyncGenerator[Event, None]:
    try:
        while True:
            wake.clear()
            try:
                rows = await _read(listener, cursor)
            except BackendUnavailableError:
                await listener.reconnect()
                continue
            for row in rows:
                yield event_from_row(row)
            if not rows:  # holes fill with a NOTIFY of their own, or resolve on this poll
                await sleep_until(wake, FALLBACK_POLL_S)
    finally:
        await listener.close()


async def _read(listener: Listener, cursor: Cursor) -> list[Any]:
    conn = listener.conn
    if conn is None or conn.is_closed():
        raise BackendUnavailableError("PostgreSQL: the LISTEN connection is closed")
    try:
        rows = cursor.take(await conn.fetch(READ, cursor.last, list(cursor.holes), READ_LIMIT))
        if cursor.unmarked():
            cursor.mark(await conn.fetchval(MARK))
    except UNAVAILABLE as exc:
        raise unavailable(exc) from exc
    return rows
