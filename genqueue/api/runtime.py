"""Runtime: everything one API process holds open, built and closed by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from genqueue.artifacts import ArtifactStore
from genqueue.backends import open_broker, open_patiently, open_store
from genqueue.contracts import Broker, Store
from genqueue.dispatch import Dispatcher
from genqueue.events import EventHub
from genqueue.kinds import KindRegistry
from genqueue.rates import RateMeter
from genqueue.settings import Settings
from genqueue.sweeper import Sweeper


@dataclass
class Runtime:
    settings: Settings
    kinds: KindRegistry
    store: Store
    broker: Broker
    artifacts: ArtifactStore
    dispatcher: Dispatcher
    hub: EventHub
    rates: RateMeter = field(default_factory=RateMeter)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings, kinds: KindRegistry, *, sweep: bool = True) -> Runtime:
        store = await open_patiently(open_store, settings.store, settings)
        broker = await open_patiently(open_broker, settings.broker, settings)
        artifacts = ArtifactStore(settings.artifacts)
        dispatcher = Dispatcher(store, broker, kinds)
        hub = EventHub(store)
        await hub.start()
        runtime = cls(settings, kinds, store, broker, artifacts, dispatcher, hub)
        if sweep:
            sweeper = Sweeper(dispatcher, artifacts, settings)
            runtime._tasks.append(asyncio.create_task(sweeper.run(), name="genqueue-sweeper"))
        return runtime

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.hub.aclose()
        await self.broker.aclose()
        await self.store.aclose()
