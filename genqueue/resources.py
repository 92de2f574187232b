"""Worker-scoped resources: what a kind needs loaded (a model, a session, an HTTP client), set
up once per worker process and shared by every run there, torn down when the worker stops.

A kind lists them (``kind(..., resources=[embedder])``) and reads them through
``ctx.resource(embedder)``. The worker makes every resource a run needs ready before the
handler starts (on first use, or all at start with ``genqueue worker --preload``), so handlers
never pay for loading inside their timeout and never race to load the same model twice. A pool
process (``executor="process"``) holds its own, loaded once for the life of the process, so a
warm pool keeps its models across tasks.

    @resource("effnet")
    def embedder(settings: Settings) -> Iterator[Embedder]:
        model = Embedder(settings.features.model_path)
        yield model          # what ctx.resource(embedder) returns
        model.close()        # at shutdown

Setup is a generator (or an async generator, for resources of async kinds such as an HTTP
client): the code before ``yield`` sets up, the code after tears down, as in
``contextlib.contextmanager``.

A resource only some payloads need is listed ``when(predicate, resource)``: the worker sets it
up for the first run whose payload asks for it (``image.generate`` loads the guided engine's
models for ``engine: "guided"`` only, so a procedural render never waits for them).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from genqueue.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
SyncSetup = Callable[[Settings], Iterator[T]]
AsyncSetup = Callable[[Settings], AsyncIterator[T]]


@dataclass(frozen=True, eq=False)
class Resource(Generic[T]):
    """One thing to load once per process. Identity is the object: two with one name are
    two resources (the name is for logs and errors)."""

    name: str
    setup: SyncSetup[T] | AsyncSetup[T]

    @property
    def is_async(self) -> bool:
        return inspect.isasyncgenfunction(self.setup)


@dataclass(frozen=True, eq=False)
class Needed(Generic[T]):
    """A resource that the runs whose (validated, dumped) payload satisfies ``predicate``
    need, and no other run."""

    predicate: Callable[[dict[str, Any]], bool]
    resource: Resource[T]


def when(predicate: Callable[[dict[str, Any]], bool], wanted: Resource[T]) -> Needed[T]:
    """List ``wanted`` in a kind's resources for the runs whose payload satisfies
    ``predicate`` only."""
    return Needed(predicate, wanted)


def resource(name: str) -> Callable[[Callable[[Settings], Any]], Resource[Any]]:
    """Declare a resource from a generator ``setup(settings)`` that yields the value once."""

    def wrap(setup: Callable[[Settings], Any]) -> Resource[Any]:
        if not (inspect.isgeneratorfunction(setup) or inspect.isasyncgenfunction(setup)):
            raise TypeError(f"resource {name!r}: setup must yield the value (a generator)")
        return Resource(name, setup)

    return wrap


class ResourceNotReadyError(RuntimeError):
    """A handler asked for a resource its kind did not declare."""


class Resources:
    """The resources one process has set up, in setup order (torn down in reverse)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._values: dict[Resource[Any], Any] = {}
        self._exits: list[tuple[Resource[Any], contextlib.AsyncExitStack]] = []
        self._sync_exits = contextlib.ExitStack()
        self._loading: dict[Resource[Any], asyncio.Lock] = {}
        self._sync_lock = threading.Lock()
        self.setups = 0  # resources set up so far, for tests and the worker's log

    def get(self, wanted: Resource[T]) -> T:
        """The value of a resource already set up in this process."""
        try:
            return cast(T, self._values[wanted])
        except KeyError:
            raise ResourceNotReadyError(
                f"resource {wanted.name!r} is not set up here: list it in the kind's resources"
            ) from None

    def __contains__(self, wanted: object) -> bool:
        return wanted in self._values

    async def ready(self, needed: Iterable[Resource[Any]]) -> None:
        """Set up what is not yet: async setups on the loop, sync ones in a thread (a model
        load must not stall the worker's heartbeats). Concurrent callers wait for one load."""
        for wanted in needed:
            if wanted in self._values:
                continue
            lock = self._loading.setdefault(wanted, asyncio.Lock())
            async with lock:
                if wanted in self._values:
                    continue
                stack = contextlib.AsyncExitStack()
                if wanted.is_async:
                    setup = cast(AsyncSetup[Any], wanted.setup)
                    manager = contextlib.asynccontextmanager(setup)(self._settings)
                    value = await stack.enter_async_context(manager)
                else:
                    sync = contextlib.ExitStack()
                    setup_sync = cast(SyncSetup[Any], wanted.setup)
                    manager_sync = contextlib.contextmanager(setup_sync)(self._settings)
                    value = await asyncio.to_thread(sync.enter_context, manager_sync)
                    stack.push_async_callback(asyncio.to_thread, sync.close)
                self._values[wanted] = value
                self._exits.append((wanted, stack))
                self.setups += 1
                log.info("resource %s set up", wanted.name)

    def ready_sync(self, needed: Iterable[Resource[Any]]) -> None:
        """``ready`` for a process without an event loop (a pool process): sync setups only."""
        for wanted in needed:
            with self._sync_lock:
                if wanted in self._values:
                    continue
                if wanted.is_async:
                    raise TypeError(
                        f"resource {wanted.name!r} has an async setup; kinds that run in a"
                        " process pool need sync resources"
                    )
                setup = cast(SyncSetup[Any], wanted.setup)
                value = self._sync_exits.enter_context(
                    contextlib.contextmanager(setup)(self._settings)
                )
                self._values[wanted] = value
                self.setups += 1

    async def aclose(self) -> None:
        """Tear down in reverse order of setup; one failing teardown does not stop the rest."""
        while self._exits:
            wanted, stack = self._exits.pop()
            self._values.pop(wanted, None)
            try:
                await stack.aclose()
            except Exception:
                log.exception("teardown of resource %s failed", wanted.name)
        self.close_sync()

    def close_sync(self) -> None:
        """Tear down what ``ready_sync`` set up."""
        try:
            self._sync_exits.close()
        except Exception:
            log.exception("teardown of resources failed")
        finally:
            self._values.clear()
