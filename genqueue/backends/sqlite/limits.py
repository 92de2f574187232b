"""Shared limits of upstream resources on SQLite: plain functions over a connection, run inside
the store's ``BEGIN IMMEDIATE`` transactions, so a permit is taken, freed or refused in the
same commit as the claim or finish it belongs to (the arithmetic is ``genqueue.limiter``'s).

A permit is not a row of its own: it is the lease of a running task of the resource, so it
ends when the task leaves ``running`` or its lease expires, and a dead worker never leaks one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from genqueue import limiter
from genqueue.backends.sqlite import outbox
from genqueue.limiter import LimiterState
from genqueue.models import LimitStatus
from genqueue.settings import LimitSettings

Conn = sqlite3.Connection


def load(conn: Conn, resource: str) -> LimiterState | None:
    """The resource's limiter, or None when no process configured one (not limited)."""
    row = conn.execute("SELECT state FROM limiters WHERE resource = ?", (resource,)).fetchone()
    return None if row is None else limiter.load_state(row[0])


def save(conn: Conn, resource: str, state: LimiterState) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO limiters (resource, state) VALUES (?, ?)",
        (resource, limiter.dump_state(state)),
    )


def configure(conn: Conn, policies: Mapping[str, LimitSettings], now: float) -> None:
    for resource, policy in policies.items():
        state = load(conn, resource)
        if state is None:
            save(conn, resource, limiter.initial_state(policy, now))
            continue
        changed = limiter.reconfigure(state, policy, now)
        if changed is not state:
            save(conn, resource, changed)


def in_flight(conn: Conn, resource: str, now: float) -> int:
    """Permits held: running tasks of the resource whose lease is still live."""
    count: int = conn.execute(
        "SELECT count(*) FROM tasks WHERE resource = ? AND status = 'running'"
        " AND lease_expires_at > ?",
        (resource, now),
    ).fetchone()[0]
    return count


def waiting(conn: Conn, resource: str) -> int:
    count: int = conn.execute(
        "SELECT count(*) FROM tasks WHERE waiting_for = ? AND status = 'queued'", (resource,)
    ).fetchone()[0]
    return count


def wake(conn: Conn, resource: str, state: LimiterState, now: float) -> int:
    """Owe a message now to the first parked tasks of ``resource``, one per free permit."""
    free = limiter.free_permits(state, in_flight(conn, resource, now), now)
    if free <= 0:
        return 0
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM tasks WHERE waiting_for = ? AND status = 'queued'"
            " ORDER BY priority DESC, fair_tag, seq LIMIT ?",
            (resource, free),
        )
    ]
    outbox.owe_unless_owed(conn, ids, now)
    return len(ids)


def wake_all(conn: Conn, now: float) -> int:
    woken = 0
    for resource, text in conn.execute("SELECT resource, state FROM limiters").fetchall():
        woken += wake(conn, resource, limiter.load_state(text), now)
    return woken


def statuses(conn: Conn, now: float) -> list[LimitStatus]:
    rows = conn.execute("SELECT resource, state FROM limiters ORDER BY resource").fetchall()
    return [
        limiter.status(
            resource,
            limiter.load_state(text),
            in_flight(conn, resource, now),
            waiting(conn, resource),
            now,
        )
        for resource, text in rows
    ]
