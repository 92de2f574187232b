"""Models held warm: a worker keeps the models its tasks loaded, the most recently used first,
up to ``GENQUEUE_WORKER__WARM_MODELS`` of them, and reports them in its heartbeat, so tasks of
those models come to it first (warm-model affinity, ``genqueue/worker/affinity.py``).

A kind names the model a task needs from its payload and how to load one:

    @model_loader("diffusion")
    def load_pipeline(settings: Settings, name: str) -> Iterator[Pipeline]:
        pipeline = Pipeline.load(name)
        yield pipeline       # what ctx.model() returns to every task of that model
        pipeline.close()     # when it is evicted, or at shutdown

    @kind("image.generate", payload=Prompt, model=lambda p: p["model"], models=load_pipeline)

Unlike a resource (``genqueue/resources.py``: one per process, loaded once), a worker holds a
few of a kind's many models: loading one more unloads the least recently used that no running
task holds (first one that another worker holds too, when the worker says which). A model in
use is never torn down, so a burst may hold more for a while. Loading runs in a thread,
before the task's timeout starts; tasks of one model wait for one load.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from genqueue.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
ModelSetup = Callable[[Settings, str], Iterator[T]]


@dataclass(frozen=True, eq=False)
class ModelLoader(Generic[T]):
    """How to load (and unload) any one model of a family, by name."""

    name: str
    setup: ModelSetup[T]


def model_loader(name: str) -> Callable[[ModelSetup[Any]], ModelLoader[Any]]:
    """Declare a model loader from a generator ``setup(settings, model_name)`` that yields the
    loaded model once (code after the ``yield`` unloads it)."""

    def wrap(setup: ModelSetup[Any]) -> ModelLoader[Any]:
        if not inspect.isgeneratorfunction(setup):
            raise TypeError(f"model loader {name!r}: setup must yield the model (a generator)")
        return ModelLoader(name, setup)

    return wrap


@dataclass
class _Loaded:
    value: Any
    unload: contextlib.ExitStack
    users: int = 0


class WarmModels:
    """The models one worker process holds, least recently used first."""

    def __init__(
        self,
        settings: Settings,
        capacity: int,
        unload_first: Callable[[list[str]], Collection[str]] | None = None,
    ) -> None:
        """``unload_first(held)``: of the models held, those to unload before the others (the
        worker's: models another worker holds too)."""
        self._settings = settings
        self._capacity = capacity
        self._unload_first = unload_first
        self._held: OrderedDict[tuple[ModelLoader[Any], str], _Loaded] = OrderedDict()
        self._loading: dict[tuple[ModelLoader[Any], str], asyncio.Lock] = {}
        self.loads = 0  # models loaded so far (a swap is a load), for benches and tests

    def names(self) -> list[str]:
        """The models held now, as heartbeats report them."""
        return sorted({model for _, model in self._held})

    @contextlib.asynccontextmanager
    async def use(self, loader: ModelLoader[T], model: str) -> AsyncIterator[T]:
        """The model, loaded if it is not held, and held until the block ends."""
        key = (loader, model)
        async with self._loading.setdefault(key, asyncio.Lock()):
            loaded = self._held.get(key)
            if loaded is None:
                unload = contextlib.ExitStack()
                manager = contextlib.contextmanager(loader.setup)(self._settings, model)
                value = await asyncio.to_thread(unload.enter_context, manager)
                loaded = self._held[key] = _Loaded(value, unload)
                self.loads += 1
                log.info("model %s loaded (%s)", model, loader.name)
            loaded.users += 1
            self._held.move_to_end(key)
        try:
            await self._evict()
            yield loaded.value
        finally:
            loaded.users -= 1
            await self._evict()

    async def _evict(self) -> None:
        """Unload idle models while more than ``capacity`` are held: the least recently used of
        those to unload first, else the least recently used."""
        while len(self._held) > self._capacity:
            idle = [k for k, m in self._held.items() if m.users == 0]  # least recent first
            first = set(self._unload_first(self.names())) if self._unload_first else set()
            victim = next((k for k in idle if k[1] in first), idle[0] if idle else None)
            if victim is None:
                return  # every one is in use: the next release evicts
            loaded = self._held.pop(victim)
            await asyncio.to_thread(self._unload, victim[1], loaded)

    @staticmethod
    def _unload(model: str, loaded: _Loaded) -> None:
        try:
            loaded.unload.close()
        except Exception:
            log.exception("unloading model %s failed", model)
        else:
            log.info("model %s unloaded", model)

    async def aclose(self) -> None:
        """Unload everything (worker shutdown)."""
        while self._held:
            model, loaded = self._held.popitem()
            await asyncio.to_thread(self._unload, model[1], loaded)
