"""RQ: ``rq worker --worker-class rq.worker.SimpleWorker bench`` (no fork per job)."""

from __future__ import annotations

from rq import Queue

from bench.peer_apps.common import DONE_KEY, done


def noop() -> None:
    done.incr(DONE_KEY)


def enqueue(n: int) -> None:
    queue = Queue("bench", connection=done)
    for start in range(0, n, 500):
        queue.enqueue_many(
            [Queue.prepare_data(noop, result_ttl=0) for _ in range(min(500, n - start))]
        )
