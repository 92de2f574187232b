"""Versioned migrations: ``migrations/NNN_name.sql``, applied in order, each exactly once.

``schema_migrations(version, name, applied_at)`` records what is applied. Everything runs in
one transaction under an advisory lock keyed on the schema, so processes that start together
(an API and its workers) queue up: the first applies what is pending, the others find nothing
left to do. Store and broker share the folder, so either one builds the whole schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

Conn = Any  # asyncpg.Connection

LOCK = "SELECT pg_advisory_xact_lock(hashtext('genqueue.migrate:' || $1))"
_FILE = re.compile(r"^(\d{3})_(\w+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled() -> list[Migration]:
    """The migrations shipped in ``genqueue/backends/postgres/migrations``, by version."""
    found = []
    for entry in files("genqueue.backends.postgres").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two PostgreSQL migrations share a version: {versions}")
    return found


async def migrate(conn: Conn, schema: str, migrations: list[Migration] | None = None) -> list[int]:
    """Create ``schema`` if missing and apply its pending migrations; returns their versions."""
    todo = bundled() if migrations is None else migrations
    async with conn.transaction():
        await conn.execute(LOCK, schema)
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for migration in todo:
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            applied.append(migration.version)
    return applied
