"""Celery: ``celery -A bench.peer_apps.celery_app worker -P solo``."""

from __future__ import annotations

from celery import Celery

from bench.peer_apps.common import BROKER, DONE_KEY, done

app = Celery("bench", broker=BROKER)
app.conf.update(
    task_ignore_result=True,
    worker_prefetch_multiplier=64,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop() -> None:
    done.incr(DONE_KEY)


def enqueue(n: int) -> None:
    for _ in range(n):
        noop.delay()
