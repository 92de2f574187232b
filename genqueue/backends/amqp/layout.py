"""Pure rules of the RabbitMQ layout: names, queue arguments, priorities, delays, errors.

No I/O here, so every rule is unit-tested without a server (``tests/test_amqp_layout.py``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from genqueue.dispatch import PRIORITY_RANGE
from genqueue.errors import ConfigError
from genqueue.redact import redact_url

DEFAULT_PREFIX = "genqueue"
# A wait queue outlives its last declaration by its TTL plus this margin, and is declared
# again before being used if its last declaration is older than half of the margin, so it
# never expires while it holds a message (x-expires ignores messages and publishes).
WAIT_EXPIRES_MARGIN_MS = 60_000
QueueType = Literal["classic", "quorum"]


def split_url(url: str) -> tuple[str, str]:
    """``amqp://h/?prefix=x&heartbeat=30`` -> (the URL for aio-pika, without ``prefix``;
    the queue name prefix). Other query parameters (TLS files, heartbeat) are kept."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for key, value in query if key == "prefix"]
    prefix = prefixes[-1] if prefixes else DEFAULT_PREFIX
    if not prefix:
        raise ConfigError(f"empty ?prefix= in broker URL {redact_url(url)!r}")
    rest = urlencode([(key, value) for key, value in query if key != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def resolve_queue_type(setting: str, server_version: str) -> QueueType:
    """The queue type to declare for ``GENQUEUE_AMQP__QUEUE_TYPE`` on this server.

    ``auto`` must keep the contract's strict priority order. Quorum queues cannot: RabbitMQ 3.x
    quorum queues ignore priorities, and 4.x ones have two levels served 2:1, not strictly.
    Classic queues with ``x-max-priority`` order strictly on every version, so ``auto`` picks
    them whatever ``server_version`` says; choose ``quorum`` to trade that order for
    replication across a cluster.
    """
    if setting in ("classic", "quorum"):
        return setting  # type: ignore[return-value]
    del server_version  # the same answer for 3.x and 4.x; kept to state the decision point
    return "classic"


def amqp_priority(priority: int, max_priority: int) -> int:
    """Map a genqueue priority (-1000..1000) onto AMQP 0..``max_priority``, monotonically,
    with 0 in the middle so negative < 0 < positive survives (given ``max_priority`` >= 2)."""
    low, high = PRIORITY_RANGE
    p = max(low, min(high, priority))
    mid = max_priority // 2
    if p > 0:
        return mid + math.ceil(p * (max_priority - mid) / high)
    if p < 0:
        return mid - math.ceil(p * mid / low)
    return mid


def delay_ms(delay_s: float) -> int:
    """The wait queue's TTL for ``delay_s``: rounded *up* to two significant digits, so a
    spread of retry delays shares a few dozen queues per decade and nothing comes back early."""
    ms = max(1, math.ceil(delay_s * 1000))
    step: int = 10 ** max(0, len(str(ms)) - 2)
    return -(-ms // step) * step


def prefetch_shares(prefetch: int, n_queues: int) -> list[int]:
    """Per-consumer prefetch for ``n_queues`` consumers sharing ``prefetch`` (quorum queues
    have no channel-wide QoS): as even as possible, each at least 1 (0 would mean unlimited)."""
    total = max(1, prefetch)
    return [max(1, total // n_queues + (1 if i < total % n_queues else 0)) for i in range(n_queues)]


@dataclass(frozen=True)
class Layout:
    """Where each genqueue queue lives on the server, and how its queues are declared."""

    prefix: str
    queue_type: QueueType
    max_priority: int
    queue_names: dict[str, str]

    def main(self, queue: str) -> str:
        """The RabbitMQ queue of a genqueue queue: as named in settings, or ``<prefix>.<q>``."""
        return self.queue_names.get(queue) or f"{self.prefix}.{queue}"

    def wait(self, queue: str, ttl_ms: int) -> str:
        """The wait queue holding messages of ``queue`` for ``ttl_ms`` (always prefixed)."""
        return f"{self.prefix}.{queue}.delay.{ttl_ms}"

    def main_arguments(self) -> dict[str, Any]:
        if self.queue_type == "quorum":
            return {"x-queue-type": "quorum"}
        return {"x-queue-type": "classic", "x-max-priority": self.max_priority}

    def wait_arguments(self, queue: str, ttl_ms: int) -> dict[str, Any]:
        """A wait queue dead-letters each message, when its TTL ends, to the main queue.

        One TTL per queue keeps expiry in FIFO order (RabbitMQ expires only at the head). On
        quorum queues dead-lettering is made at-least-once, which needs reject-publish.
        """
        arguments: dict[str, Any] = {
            "x-queue-type": self.queue_type,
            "x-message-ttl": ttl_ms,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.main(queue),
            "x-expires": ttl_ms + WAIT_EXPIRES_MARGIN_MS,
        }
        if self.queue_type == "quorum":
            arguments["x-dead-letter-strategy"] = "at-least-once"
            arguments["x-overflow"] = "reject-publish"
        return arguments

    def message_priority(self, priority: int) -> int | None:
        """The AMQP priority property; None on quorum queues, which do not order by it."""
        if self.queue_type == "quorum":
            return None
        return amqp_priority(priority, self.max_priority)


_INEQUIVALENT = re.compile(r"inequivalent arg '([^']+)'")


def precondition_error(queue: str, server_text: str) -> ConfigError:
    """Turn the server's 406 PRECONDITION_FAILED on declaring ``queue`` into advice."""
    match = _INEQUIVALENT.search(server_text)
    argument = match.group(1) if match else "arguments"
    hint = {
        "x-queue-type": "set GENQUEUE_AMQP__QUEUE_TYPE to the queue's type",
        "x-max-priority": "set GENQUEUE_AMQP__MAX_PRIORITY (classic queues) to match",
    }.get(argument, "set GENQUEUE_AMQP__QUEUE_TYPE / GENQUEUE_AMQP__MAX_PRIORITY to match")
    return ConfigError(
        f"RabbitMQ queue {queue!r} already exists with a different {argument!r} than genqueue"
        f" declares (server: {server_text}). Fix: delete the queue (rabbitmqctl delete_queue"
        f" {queue}) so genqueue declares it again, or {hint}, or map the genqueue queue to"
        " another RabbitMQ queue with GENQUEUE_AMQP__QUEUE_NAMES."
    )
