"""The PostgreSQL store's API keys (``migrations/014_keys.sql``): one statement each."""

from __future__ import annotations

import asyncpg

from genqueue.backends.postgres.db import Database
from genqueue.backends.postgres.rows import Row
from genqueue.keys import KeyNotFoundError
from genqueue.models import ApiKey, Role

_COLUMNS = "id, user_name, role, label, created_at, revoked_at, tasks_per_minute, in_flight"


def _key(row: Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        user=row["user_name"],
        role=Role(row["role"]),
        label=row["label"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        tasks_per_minute=row["tasks_per_minute"],
        in_flight=row["in_flight"],
    )


class PostgresKeys:
    """``create_key``, ``key_by_hash``, ``list_keys``, ``revoke_key`` of the store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_key(self, key: ApiKey, key_hash: str) -> None:
        try:
            await self._db.execute(
                f"INSERT INTO api_keys ({_COLUMNS}, key_hash)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                key.id,
                key.user,
                key.role.value,
                key.label,
                key.created_at,
                key.revoked_at,
                key.tasks_per_minute,
                key.in_flight,
                key_hash,
                retry=False,  # a retried insert that had committed would look like a duplicate
            )
        except asyncpg.UniqueViolationError as exc:
            raise ValueError(f"an API key with id {key.id!r} or the same hash exists") from exc

    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = $1", key_hash
        )
        return None if row is None else _key(row)

    async def list_keys(self) -> list[ApiKey]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC"
        )
        return [_key(row) for row in rows]

    async def revoke_key(self, key_id: str) -> ApiKey:
        row = await self._db.fetchrow(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1"
            f" RETURNING {_COLUMNS}",
            key_id,
        )
        if row is None:
            raise KeyNotFoundError(f"no API key {key_id!r}")
        return _key(row)
