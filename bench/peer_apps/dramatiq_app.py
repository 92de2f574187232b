"""Dramatiq: ``dramatiq bench.peer_apps.dramatiq_app -p 1 -t 8``."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

from bench.peer_apps.common import BROKER, DONE_KEY, done

if BROKER.startswith("amqp"):
    dramatiq.set_broker(RabbitmqBroker(url=BROKER))
else:
    dramatiq.set_broker(RedisBroker(url=BROKER))


@dramatiq.actor(max_retries=0)
def noop() -> None:
    done.incr(DONE_KEY)


def enqueue(n: int) -> None:
    for _ in range(n):
        noop.send()
