"""Huey on SQLite: ``huey_consumer bench.peer_apps.huey_app.huey -k thread -w 1``.

The database file is BENCH_HUEY_DB (bench/throughput.py puts it in a temporary folder).
Huey's defaults otherwise: WAL, SQLite's default synchronous (FULL), no result stored for a
task that returns None.
"""

from __future__ import annotations

import os
import tempfile

from huey import SqliteHuey

from bench.peer_apps.common import DONE_KEY, done

DB = os.environ.get("BENCH_HUEY_DB", os.path.join(tempfile.gettempdir(), "bench-huey.db"))
huey = SqliteHuey("bench", filename=DB)


@huey.task()
def noop() -> None:
    done.incr(DONE_KEY)


def enqueue(n: int) -> None:
    for _ in range(n):
        noop()
