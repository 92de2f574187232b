"""SQLite claims judge what is due by a clock read under the write lock, and never spin on a
task in line that their clock says is not due yet (a clock stepped back, or a stale one):
before this, ``claim_next`` looped on such a head forever inside its transaction, holding
the write lock, and every other process's write failed with "database is locked"."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from genqueue.backends.sqlite import claims
from genqueue.backends.sqlite.store import SqliteStore
from genqueue.contracts import Claim, Requeue
from tests.contract.test_store import new_task


async def test_a_head_not_due_by_the_claims_clock_leaves_the_line_and_comes_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "claims.db"
    store = await SqliteStore.connect(f"sqlite:///{path}")
    try:
        [(task, _)] = await store.submit([new_task()])
        claim = await store.claim_next("q", "w", 30)
        assert isinstance(claim, Claim)
        requeued_at = time.time()
        await store.finish(claim.lease, Requeue(delay_s=0.0))  # back in line, due now

        def claim_with_an_older_clock() -> tuple[object, int]:
            conn = sqlite3.connect(path, isolation_level=None, timeout=5)
            conn.row_factory = sqlite3.Row
            try:
                conn.execute("BEGIN IMMEDIATE")
                terms = ("w2", "token", requeued_at + 30, requeued_at - 5)
                outcome = claims.claim_next(conn, "q", terms)
                ready = conn.execute("SELECT ready FROM tasks WHERE id = ?", (task.id,))
                conn.execute("COMMIT")
                return outcome, ready.fetchone()[0]
            finally:
                conn.close()

        # Five seconds "before" the requeue the task is not due: no claim, and out of line
        # rather than a loop (the thread would never come back).
        outcome, ready = await asyncio.wait_for(asyncio.to_thread(claim_with_an_older_clock), 10)
        assert outcome is None
        assert ready == 0
        # The store's own clock finds it due and brings it back into line with its tag.
        again = await store.claim_next("q", "w", 30)
        assert isinstance(again, Claim) and again.task.id == task.id
    finally:
        await store.aclose()
