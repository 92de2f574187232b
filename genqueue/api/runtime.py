"""Runtime: everything one API process holds open, built and closed by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from genqueue.api.deadline import with_deadline
from genqueue.api.estimates import Estimator
from genqueue.artifacts import ArtifactStore
from genqueue.backends import open_broker, open_patiently, open_store
from genqueue.contracts import Broker, Store
from genqueue.dispatch import Dispatcher
from genqueue.events import EventHub
from genqueue.kinds import KindRegistry
from genqueue.metrics import Metrics
from genqueue.rates import RateMeter
from genqueue.settings import Settings
from genqueue.sweeper import Sweeper
from genqueue.webhooks.service import Webhooks


@dataclass
class Runtime:
    settings: Settings
    kinds: KindRegistry
    store: Store
    broker: Broker
    artifacts: ArtifactStore
    dispatcher: Dispatcher
    hub: EventHub
    estimator: Estimator
    rates: RateMeter = field(default_factory=RateMeter)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _unbounded_store: Store | None = None  # the store itself, for closing it
    _webhooks: Webhooks | None = None  # pump and sender, when a signing secret is set

    @classmethod
    async def start(
        cls,
        settings: Settings,
        kinds: KindRegistry,
        *,
        sweep: bool = True,
        metrics: Metrics | None = None,
    ) -> Runtime:
        store = await open_patiently(open_store, settings.store, settings)
        broker = await open_patiently(open_broker, settings.broker, settings)
        artifacts = ArtifactStore(settings.artifacts)
        # Requests get a deadline on store calls (a stalled store answers 503 in seconds);
        # the event hub and the sweeper take their time.
        bounded = with_deadline(store, settings.store)
        dispatcher = Dispatcher(bounded, broker, kinds, settings.fair_weights)
        hub = EventHub(store)
        await hub.start()
        runtime = cls(
            settings, kinds, bounded, broker, artifacts, dispatcher, hub, Estimator(bounded)
        )
        runtime._unbounded_store = store
        if sweep:
            sweeper = Sweeper(
                Dispatcher(store, broker, kinds, settings.fair_weights), artifacts, settings
            )
            runtime._tasks.append(asyncio.create_task(sweeper.run(), name="genqueue-sweeper"))
        runtime._webhooks = Webhooks.start(store, settings.webhooks, metrics or Metrics())
        return runtime

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._webhooks is not None:
            await self._webhooks.aclose()
        await self.hub.aclose()
        await self.broker.aclose()
        await (self._unbounded_store or self.store).aclose()
