"""The SQLite store's API keys (table ``api_keys`` in schema.sql): plain functions over a
connection, run by the store (``create_key`` ... ``revoke_key`` in ``contracts.Store``)."""

from __future__ import annotations

import sqlite3

from genqueue.keys import KeyNotFoundError
from genqueue.models import ApiKey, Role, from_epoch, maybe_from_epoch

Conn = sqlite3.Connection
_COLUMNS = "id, user, role, label, created_at, revoked_at, tasks_per_minute, in_flight"


def _key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        user=row["user"],
        role=Role(row["role"]),
        label=row["label"],
        created_at=from_epoch(row["created_at"]),
        revoked_at=maybe_from_epoch(row["revoked_at"]),
        tasks_per_minute=row["tasks_per_minute"],
        in_flight=row["in_flight"],
    )


def create(conn: Conn, key: ApiKey, key_hash: str) -> None:
    try:
        conn.execute(
            f"INSERT INTO api_keys ({_COLUMNS}, key_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key.id,
                key.user,
                key.role.value,
                key.label,
                key.created_at.timestamp(),
                None if key.revoked_at is None else key.revoked_at.timestamp(),
                key.tasks_per_minute,
                key.in_flight,
                key_hash,
            ),
        )
    except sqlite3.IntegrityError as exc:
        raise ValueError(f"an API key with id {key.id!r} or the same hash exists") from exc


def by_hash(conn: Conn, key_hash: str) -> ApiKey | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,)
    ).fetchone()
    return None if row is None else _key(row)


def list_all(conn: Conn) -> list[ApiKey]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC"
    ).fetchall()
    return [_key(row) for row in rows]


def revoke(conn: Conn, key_id: str, now: float) -> ApiKey:
    row = conn.execute(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?"
        f" RETURNING {_COLUMNS}",
        (now, key_id),
    ).fetchone()
    if row is None:
        raise KeyNotFoundError(f"no API key {key_id!r}")
    return _key(row)
