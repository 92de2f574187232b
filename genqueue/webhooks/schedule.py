"""What one attempt's answer means for its delivery: delivered, tried again when, or failed.
Pure arithmetic over the settings (backoff from ``genqueue.retry``)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from genqueue.retry import RetryPolicy
from genqueue.settings import WebhookSettings
from genqueue.webhooks.records import DeliveryState, WebhookDelivery

RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Next:
    state: DeliveryState
    retry_in_s: float = 0.0


def policy(settings: WebhookSettings) -> RetryPolicy:
    return RetryPolicy(settings.max_attempts, settings.retry_base_s, settings.retry_max_s)


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) in seconds from ``now``."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds()) if when.tzinfo else None


def after_attempt(
    delivery: WebhookDelivery,
    status: int | None,
    retry_after: float | None,
    settings: WebhookSettings,
    now: datetime,
    rng: random.Random | None = None,
) -> Next:
    """A 2xx is delivered. Otherwise another attempt after the backoff (or after the
    server's ``Retry-After``, honoured for 429 and 503), unless the attempts are spent or it
    would come later than ``give_up_after_s`` after the delivery was made: then failed."""
    if status is not None and 200 <= status < 300:
        return Next(DeliveryState.DELIVERED)
    tries = delivery.attempts + 1
    backoff = policy(settings)
    if not backoff.allows_another(tries):
        return Next(DeliveryState.FAILED)
    delay = backoff.delay_s(tries, rng)
    if retry_after is not None and status in RETRY_AFTER_STATUSES:
        delay = retry_after
    deadline = delivery.created_at + timedelta(seconds=settings.give_up_after_s)
    if now + timedelta(seconds=delay) > deadline:
        return Next(DeliveryState.FAILED)
    return Next(DeliveryState.PENDING, delay)
