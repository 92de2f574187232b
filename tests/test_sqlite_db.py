"""The SQLite file's schema: files made by an older genqueue are brought up to date."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from genqueue.backends.sqlite.store import SqliteStore
from genqueue.errors import ConfigError
from genqueue.models import WorkerStatus
from tests.helpers import worker_info

# The workers table as schema.sql created it before ``reason`` was added.
OLD_WORKERS = """
CREATE TABLE workers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    queues TEXT NOT NULL, concurrency INTEGER NOT NULL, status TEXT NOT NULL,
    started_at REAL NOT NULL, last_seen REAL NOT NULL, running TEXT NOT NULL DEFAULT '[]',
    succeeded INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0
)
"""


async def test_a_file_made_before_worker_reasons_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(OLD_WORKERS)
        conn.execute(
            "INSERT INTO workers (id, name, host, pid, queues, concurrency, status, started_at,"
            " last_seen) VALUES ('w-old', 'old', 'h', 1, '[]', 1, 'online', 0, 0)"
        )
    conn.close()
    for _ in range(2):  # the second open finds the column there
        store = await SqliteStore.connect(f"sqlite:///{path}")
        try:
            await store.register_worker(worker_info("w"))
            await store.heartbeat_worker("w", [], 0, 0, degraded="store unreachable")
            workers = {w.id: w for w in await store.list_workers()}
        finally:
            await store.aclose()
        assert (workers["w"].status, workers["w"].reason) == (
            WorkerStatus.DEGRADED,
            "store unreachable",
        )
        assert (workers["w-old"].status, workers["w-old"].reason) == (WorkerStatus.ONLINE, None)


def test_the_busy_timeout_comes_from_the_url() -> None:
    from genqueue.backends.sqlite.db import BUSY_TIMEOUT_MS, busy_timeout_s, path_from_url

    assert busy_timeout_s("sqlite:///data/genqueue.db") == BUSY_TIMEOUT_MS / 1000
    assert busy_timeout_s("sqlite:///data/genqueue.db?busy_timeout_s=2.5") == 2.5
    assert path_from_url("sqlite:///data/genqueue.db?busy_timeout_s=2.5").as_posix() == (
        "data/genqueue.db"
    )
    for bad in ("0", "-1", "soon", "601"):
        with pytest.raises(ConfigError, match="busy_timeout_s"):
            busy_timeout_s(f"sqlite:///x.db?busy_timeout_s={bad}")
