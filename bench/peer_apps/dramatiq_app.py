"""Dramatiq: ``dramatiq bench.peer_apps.dramatiq_app -p 1 -t 8``."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.peer_apps.common import DONE_KEY, URL, done

dramatiq.set_broker(RedisBroker(url=URL))


@dramatiq.actor(max_retries=0)
def noop() -> None:
    done.incr(DONE_KEY)


def enqueue(n: int) -> None:
    for _ in range(n):
        noop.send()
