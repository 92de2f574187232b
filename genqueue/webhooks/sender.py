"""WebhookSender: takes due deliveries with a hold (``Store.webhooks.take``), POSTs
each, signed (``genqueue.webhook_signature``), and records the attempt.

Redirects are not followed (a 3xx is a failed attempt: the target must be the final URL),
proxies from the environment are not used, and the answer's body is not read. The target is
checked again before each attempt (``targets.py``): an address no longer allowed ends the
delivery ``refused``, with no retry. A sender that dies mid-attempt leaves its deliveries
held; they are due again when the hold runs out, so an attempt may be repeated (a receiver
drops repeats by ``webhook-id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx

from genqueue.contracts import Store
from genqueue.errors import OUTAGE_ERRORS
from genqueue.metrics import Metrics
from genqueue.models import utcnow
from genqueue.retry import OUTAGE_BACKOFF
from genqueue.settings import WebhookSettings
from genqueue.webhook_signature import sign_headers
from genqueue.webhooks.records import DeliveryState, WebhookAttempt, WebhookDelivery
from genqueue.webhooks.schedule import RETRY_AFTER_STATUSES, Next, after_attempt, retry_after_s
from genqueue.webhooks.targets import TargetRefusedError, TargetUnresolvedError, check_target

log = logging.getLogger(__name__)

TAKE = 32  # deliveries taken (and sent at once) per round
POLL_S = 1.0  # looking for due deliveries when nothing wakes the sender sooner
HOLD_MARGIN_S = 30.0  # a hold outlasts an attempt's timeout by this much
USER_AGENT = "genqueue-webhooks/1"


class WebhookSender:
    """Sends what is due until cancelled; ``wake`` (set by the pump) says there is more."""

    def __init__(
        self,
        store: Store,
        settings: WebhookSettings,
        metrics: Metrics,
        wake: asyncio.Event,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._wake = wake
        self._secret = settings.secret.get_secret_value()
        self._client = httpx.AsyncClient(
            timeout=settings.timeout_s,
            follow_redirects=False,
            trust_env=False,
            transport=transport,
            headers={"user-agent": USER_AGENT},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def run(self) -> None:
        failures = 0
        hold_s = self._settings.timeout_s + HOLD_MARGIN_S
        while True:
            self._wake.clear()
            try:
                due = await self._store.webhooks.take(TAKE, hold_s)
            except OUTAGE_ERRORS as exc:
                failures += 1
                (log.warning if failures == 1 else log.debug)("webhook sender: %s", exc)
                await asyncio.sleep(OUTAGE_BACKOFF.delay_s(min(failures, 64)))
                continue
            failures = 0
            if due:
                await asyncio.gather(*(self.deliver(d) for d in due))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)

    async def deliver(self, delivery: WebhookDelivery) -> Next:
        """One attempt of ``delivery``, recorded; returns what became of it."""
        at, started = utcnow(), time.monotonic()
        status: int | None = None
        error: str | None = None
        retry_after: float | None = None
        refused = False
        try:
            await check_target(delivery.url, self._settings.allow_private)
            status, retry_after = await self._post(delivery)
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except TargetRefusedError as exc:
            error, refused = f"refused: {exc}", True
        except (TargetUnresolvedError, httpx.HTTPError) as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if refused:
            step, result = Next(DeliveryState.REFUSED), "refused"
        else:
            step = after_attempt(delivery, status, retry_after, self._settings, utcnow())
            result = "2xx" if error is None else "http_error" if status else "network_error"
        attempt = WebhookAttempt(
            at=at, status=status, error=error, duration_s=round(time.monotonic() - started, 4)
        )
        self._metrics.webhook_attempts.labels(result).inc()
        try:
            await self._store.webhooks.record_attempt(
                delivery.id, attempt, step.state, step.retry_in_s
            )
        except OUTAGE_ERRORS as exc:  # its hold runs out and it is tried again
            log.warning("webhook %s: attempt not recorded: %s", delivery.id, exc)
            return step
        if step.state != DeliveryState.PENDING:
            self._metrics.webhook_deliveries.labels(step.state.value).inc()
        if step.state in (DeliveryState.FAILED, DeliveryState.REFUSED):
            log.warning("webhook %s to %s %s: %s", delivery.id, delivery.url, step.state, error)
        return step

    async def _post(self, delivery: WebhookDelivery) -> tuple[int, float | None]:
        """The status of one signed POST, and its Retry-After (429 and 503) in seconds."""
        headers = {
            **sign_headers(self._secret, delivery.id, delivery.body),
            "content-type": "application/json",
        }
        content = delivery.body.encode()
        async with self._client.stream("POST", delivery.url, content=content, headers=headers) as r:
            retry_after = None
            if r.status_code in RETRY_AFTER_STATUSES:
                retry_after = retry_after_s(r.headers.get("retry-after"), utcnow())
            return r.status_code, retry_after
