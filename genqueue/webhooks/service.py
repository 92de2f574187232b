"""Webhook delivery inside one API process: the pump and the sender, started by the app's
runtime when a signing secret is configured, stopped with it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from genqueue.aio import stop_tasks
from genqueue.contracts import Store
from genqueue.errors import ConfigError
from genqueue.metrics import Metrics
from genqueue.settings import WebhookSettings
from genqueue.webhook_signature import secret_key
from genqueue.webhooks.pump import WebhookPump
from genqueue.webhooks.sender import WebhookSender


@dataclass
class Webhooks:
    sender: WebhookSender
    tasks: list[asyncio.Task[None]]

    @classmethod
    def start(cls, store: Store, settings: WebhookSettings, metrics: Metrics) -> Webhooks | None:
        """Pump and sender on ``store`` (unbounded: background work takes its time); None
        without a secret (submits with a webhook are refused then). ``ConfigError`` for a
        secret that is not one, never showing it."""
        secret = settings.secret.get_secret_value()
        if not secret:
            return None
        try:
            secret_key(secret)
        except ValueError as exc:
            raise ConfigError(f"GENQUEUE_WEBHOOKS__SECRET: {exc}") from None
        wake = asyncio.Event()
        sender = WebhookSender(store, settings, metrics, wake)
        pump = WebhookPump(store, settings, metrics, wake)
        return cls(
            sender,
            [
                asyncio.create_task(pump.run(), name="genqueue-webhook-pump"),
                asyncio.create_task(sender.run(), name="genqueue-webhook-sender"),
            ],
        )

    async def aclose(self) -> None:
        await stop_tasks(*self.tasks)
        await self.sender.aclose()
