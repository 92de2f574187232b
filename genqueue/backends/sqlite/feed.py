"""The SQLite store's event feed (``Store.watch``): a connection of its own, polled; and one
task's kept events (``Store.task_events``).

The events table is read only when another connection has committed (``PRAGMA data_version``
changed), so idling costs one pragma per wake-up; the doorbell wakes watchers at once after a
commit, and ``WATCH_FALLBACK_S`` is the fallback.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncGenerator

from genqueue.backends.sqlite.db import Database
from genqueue.backends.sqlite.doorbell import Listener
from genqueue.backends.sqlite.rows import event_from_row
from genqueue.errors import EventsExpiredError
from genqueue.models import Event

Conn = sqlite3.Connection
Row = sqlite3.Row

WATCH_FALLBACK_S = 0.25


def resume_point(conn: Conn, after: str) -> int:
    """``after`` as a position, if every event after it is still kept. Ids come from
    AUTOINCREMENT inside write transactions, so they have no gaps but those purge made (and
    replaced previews: ``add_event``)."""
    oldest, newest = conn.execute(
        "SELECT (SELECT min(id) FROM events),"
        " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)"
    ).fetchone()
    position = int(after) if after.isdigit() else -1
    first_kept = newest + 1 if oldest is None else oldest
    if position < 0 or position > newest or position + 1 < first_kept:
        raise EventsExpiredError(
            f"event {after!r} is not kept by this store (kept: {first_kept} to {newest})"
        )
    return position


def task_events(conn: Conn, task_id: str, limit: int) -> list[Event]:
    """``Store.task_events``: the newest ``limit`` of the task's kept events, oldest first
    (index ``events_task``)."""
    rows = conn.execute(
        "SELECT * FROM (SELECT * FROM events WHERE task_id = ? ORDER BY id DESC LIMIT ?)"
        " ORDER BY id",
        (task_id, max(limit, 0)),
    ).fetchall()
    return [event_from_row(row) for row in rows]


async def follow(
    watcher: Database, bell: Listener, last: int, version: int
) -> AsyncGenerator[Event, None]:
    def poll(conn: Conn, after: int, seen: int) -> tuple[list[Row], int]:
        current = conn.execute("PRAGMA data_version").fetchone()[0]
        if current == seen:
            return [], seen
        rows = conn.execute(
            "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT 1000", (after,)
        ).fetchall()
        return rows, (seen if len(rows) == 1000 else current)

    try:
        with bell:
            while True:
                rows, version = await watcher.run(
                    lambda conn: poll(conn, last, version)  # noqa: B023 - awaited at once
                )
                for row in rows:
                    last = row["id"]
                    yield event_from_row(row)
                if not rows:
                    await bell.wait(WATCH_FALLBACK_S)
    finally:
        await watcher.aclose()
