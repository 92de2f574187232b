"""Kinds: what a task runs and under which policy, and the registry that finds them.

A kind is declared in Python with the :func:`kind` decorator and registered either through the
``genqueue.kinds`` entry-point group (a module whose Kind objects are collected) or with
``--kinds package.module``. No global registry: each process builds a :class:`KindRegistry`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, Literal, Protocol, TypeVar, cast

from pydantic import BaseModel, ValidationError

from genqueue.errors import (
    ConfigError,
    FieldProblem,
    ForbiddenPathError,
    InvalidInputError,
    UnknownKindError,
)
from genqueue.inputs import InputReader
from genqueue.resources import Needed, Resource
from genqueue.retry import RetryPolicy
from genqueue.settings import Settings
from genqueue.warm import ModelLoader

Executor = Literal["async", "thread", "process"]
T = TypeVar("T")


class TaskContext(Protocol):
    """What a handler sees of the run it is part of."""

    @property
    def task_id(self) -> str: ...

    @property
    def attempt(self) -> int: ...

    @property
    def cancelled(self) -> bool:
        """True once cancellation was asked; long sync loops should stop when they see it."""
        ...

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress (0..1). Cheap: the latest value is sent in the background.
        Raises ``TaskCancelledError`` in sync handlers once the task is cancelled."""
        ...

    def save_artifact(self, name: str, data: bytes, content_type: str) -> str:
        """Store a file this task produced and return the URL path that serves it."""
        ...

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        """Send an event of this run to every event stream (e.g. ``diagnosis.alert``), in the
        background like progress. ``event_type`` is dotted lower case and not ``task.*``."""
        ...

    def preview(self, image: Any) -> None:
        """Show the work so far to every event stream as a ``task.preview`` event: a PIL
        image, an (h, w) or (h, w, 3) numpy array (uint8, or floats in 0..1), or JPEG, PNG
        or WebP bytes. Call it as often as you like (every step): at most about three a
        second are sent, and only those are encoded (256 px, JPEG under 24 KiB). One that
        comes too soon waits, replaced by any newer one, and goes at a later call (preview
        or progress) once its time has come, or when the run ends; it is read then, so
        hand over a picture you will not change meanwhile. See ``genqueue.previews``."""
        ...

    @property
    def settings(self) -> Settings:
        """The worker's settings (read once per worker, not once per task)."""
        ...

    @property
    def inputs(self) -> InputReader:
        """Reads the files the payload names (``InputFile``): uploads, paths under the input
        root, inline base64; ``inputs.image(source)`` decodes an image safely."""
        ...

    def resource(self, wanted: Resource[T]) -> T:
        """A resource the kind declared (``kind(..., resources=[...])``), set up once per
        worker process before the handler started (``genqueue.resources``)."""
        ...

    def model(self) -> Any:
        """The model this task needs (``kind(..., model=..., models=loader)``), loaded by the
        worker before the handler started and held for the run (``genqueue.warm``)."""
        ...


_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
MAX_EVENT_BYTES = 16_384


def check_event(event_type: str, data: dict[str, Any]) -> None:
    """A handler's event: a dotted name outside ``task.*`` and small JSON data."""
    if not _EVENT_TYPE.match(event_type) or event_type.startswith("task."):
        raise ValueError(f"event type {event_type!r}: use dotted lower case, not task.*")
    if len(json.dumps(data)) > MAX_EVENT_BYTES:
        raise ValueError(f"event {event_type!r}: data over {MAX_EVENT_BYTES} bytes of JSON")


Handler = Callable[[Any, TaskContext], Awaitable[Any]] | Callable[[Any, TaskContext], Any]
# A batched kind's handler: payloads and contexts in, one result or exception per task out.
BatchHandler = Callable[[list[Any], list[TaskContext]], Any]


@dataclass(frozen=True)
class Batching:
    """Dynamic batching: the worker gathers up to ``max_size`` claimed tasks of this kind,
    waiting ``max_wait_s`` at most after the first, and runs them in one call of the kind's
    batch handler ``f(payloads, contexts) -> results``: one result, or one exception, per
    task, in order (genqueue/worker/batching.py)."""

    max_size: int = 8
    max_wait_s: float = 0.05

    def __post_init__(self) -> None:
        if self.max_size < 1 or not 0 <= self.max_wait_s <= 60:
            raise ConfigError(f"batching: max_size must be >= 1 and max_wait_s 0-60 s, got {self}")


R = TypeVar("R")


def alone(outcomes: list[R | Exception]) -> R:
    """The outcome of a batch handler called with one task: its result, or its error raised
    (how tests, benches and single callers use a batch handler)."""
    [outcome] = outcomes
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


@dataclass(frozen=True)
class Kind:
    """A named handler and its policy. Frozen: a kind never changes once registered."""

    name: str
    handler: Handler
    payload_model: type[BaseModel]
    result_model: type[BaseModel] | None = None
    queue: str = "default"
    timeout_s: float = 300.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    executor: Executor = "async"
    batching: Batching | None = None
    # The upstream whose shared concurrency limit a run takes a permit of (genqueue/limiter.py)
    # and, when only some payloads call it, which ones (video.generate: provider "cloud").
    resource: str | None = None
    uses_resource: Callable[[dict[str, Any]], bool] | None = None
    # What a run needs loaded (models, sessions, clients): set up once per worker process
    # (genqueue/resources.py), read with ctx.resource(...); some only for some payloads.
    resources: tuple[Resource[Any] | Needed[Any], ...] = ()
    # Named worker capacities one run takes (("gpu", 1),): see genqueue/worker/capacity.py.
    slots: tuple[tuple[str, int], ...] = ()
    # The model a run needs, from its (validated, dumped) payload, and how to load one: the
    # worker holds a few warm and gets their tasks first (genqueue/warm.py, worker/affinity.py).
    model: Callable[[dict[str, Any]], str | None] | None = None
    models: ModelLoader[Any] | None = None
    # Its result depends on its (validated, dumped) payload alone, so an identical submission
    # may be answered with a stored result (genqueue/result_cache.py); a callable says so per
    # payload (not for inputs read by path, which may change, nor for side effects).
    deterministic: bool | Callable[[dict[str, Any]], bool] = False
    description: str = ""

    def resources_for(self, payload: dict[str, Any]) -> list[Resource[Any]]:
        """The resources a run of this (validated, dumped) payload needs set up."""
        return [
            r if isinstance(r, Resource) else r.resource
            for r in self.resources
            if isinstance(r, Resource) or r.predicate(payload)
        ]

    @property
    def all_resources(self) -> list[Resource[Any]]:
        """Every resource any run may need (what ``--preload`` sets up)."""
        return [r if isinstance(r, Resource) else r.resource for r in self.resources]

    def model_of(self, payload: dict[str, Any]) -> str | None:
        """The model a run of this payload needs (Task.model), if the kind names one."""
        return None if self.model is None else self.model(payload)

    def resource_of(self, payload: dict[str, Any]) -> str | None:
        """The resource a run of this (validated, dumped) payload takes a permit of."""
        if self.resource is None or (self.uses_resource and not self.uses_resource(payload)):
            return None
        return self.resource

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    @property
    def import_path(self) -> str:
        """``module:attribute`` of this Kind, so a pool process can find it again."""
        return f"{self.handler.__module__}:{self.handler.__qualname__}"

    def validate_payload(self, payload: Any) -> BaseModel:
        """Parse a payload, turning pydantic's errors into field problems under ``payload.``."""
        try:
            return self.payload_model.model_validate(payload)
        except ValidationError as exc:
            for err in exc.errors():
                if err["type"] == "forbidden_path":  # genqueue.inputs: a 403, not a 422
                    where = ".".join(["payload", *(str(p) for p in err["loc"])])
                    raise ForbiddenPathError(where, err["msg"]) from None
            raise InvalidInputError(
                [
                    FieldProblem(".".join(["payload", *(str(p) for p in err["loc"])]), err["msg"])
                    for err in exc.errors()
                ]
            ) from None

    def dump_result(self, result: Any) -> dict[str, Any]:
        """Turn what the handler returned into the JSON object the store keeps."""
        if isinstance(result, BaseModel):
            return result.model_dump(mode="json")
        if self.result_model is not None:
            return self.result_model.model_validate(result).model_dump(mode="json")
        if result is None:
            return {}
        if isinstance(result, dict):
            return result
        return {"value": result}


def kind(
    name: str,
    *,
    payload: type[BaseModel],
    result: type[BaseModel] | None = None,
    queue: str = "default",
    timeout_s: float = 300.0,
    retry: RetryPolicy | None = None,
    executor: Executor | None = None,
    batching: Batching | None = None,
    resource: str | None = None,
    uses_resource: Callable[[dict[str, Any]], bool] | None = None,
    resources: Iterable[Resource[Any] | Needed[Any]] = (),
    slots: Mapping[str, int] | None = None,
    model: Callable[[dict[str, Any]], str | None] | None = None,
    models: ModelLoader[Any] | None = None,
    deterministic: bool | Callable[[dict[str, Any]], bool] = False,
) -> Callable[[Handler | BatchHandler], Kind]:
    """Declare a kind from a handler ``f(payload, ctx)``. Async handlers run on the event loop,
    sync ones in a thread unless ``executor="process"`` (CPU-bound work that must be killable).
    With ``batching``, the handler is a batch handler ``f(payloads, contexts) -> results``.
    With ``model`` (payload -> model name) and ``models`` (a ``genqueue.warm.model_loader``),
    the worker loads the task's model before the run (``ctx.model()``) and keeps a few warm."""

    if any(n < 1 for n in (slots or {}).values()):
        raise ConfigError(f"kind {name!r}: slots take at least 1 of each name, got {slots}")
    if (model is None) != (models is None):
        raise ConfigError(f"kind {name!r}: model (which one) and models (a loader) go together")
    if models is not None and executor == "process":
        # Warm models live in the worker process; a pool process could not share them.
        raise ConfigError(f"kind {name!r}: models are held by the worker: use async or thread")

    def wrap(handler: Handler | BatchHandler) -> Kind:
        chosen: Executor = executor or (
            "async" if inspect.iscoroutinefunction(handler) else "thread"
        )
        if chosen == "async" and not inspect.iscoroutinefunction(handler):
            raise ConfigError(f"kind {name!r}: executor 'async' needs an async handler")
        if chosen != "async" and inspect.iscoroutinefunction(handler):
            raise ConfigError(f"kind {name!r}: executor {chosen!r} needs a sync handler")
        if batching is not None and chosen == "process":
            # A batch shares one model call; a pool process per task would defeat it.
            raise ConfigError(f"kind {name!r}: batching runs on the loop or in a thread")
        return Kind(
            name=name,
            handler=cast(Handler, handler),  # a BatchHandler when batching is set
            payload_model=payload,
            result_model=result,
            queue=queue,
            timeout_s=timeout_s,
            retry=retry or RetryPolicy(),
            executor=chosen,
            batching=batching,
            resource=resource,
            uses_resource=uses_resource,
            resources=tuple(resources),
            slots=tuple(sorted((slots or {}).items())),
            model=model,
            models=models,
            deterministic=deterministic,
            description=(inspect.getdoc(handler) or "").split("\n")[0],
        )

    return wrap


class KindRegistry:
    """The kinds one process knows, by name."""

    def __init__(self, kinds: Iterable[Kind] = ()) -> None:
        self._kinds: dict[str, Kind] = {}
        for k in kinds:
            self.register(k)

    def register(self, k: Kind) -> None:
        existing = self._kinds.get(k.name)
        if existing is not None and existing is not k:
            raise ConfigError(f"kind {k.name!r} is registered twice ({existing.import_path})")
        self._kinds[k.name] = k

    def register_module(self, module: ModuleType | str) -> None:
        """Register every Kind found at the top level of a module (or its ``KINDS`` list)."""
        mod = importlib.import_module(module) if isinstance(module, str) else module
        found = [v for v in vars(mod).values() if isinstance(v, Kind)]
        found += [k for k in getattr(mod, "KINDS", []) if isinstance(k, Kind)]
        if not found:
            raise ConfigError(f"module {mod.__name__!r} declares no genqueue kinds")
        for k in found:
            self.register(k)

    def get(self, name: str) -> Kind:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownKindError(name, list(self._kinds)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Any:
        return iter(self._kinds.values())

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def queues(self) -> list[str]:
        return sorted({k.queue for k in self._kinds.values()})


def load_kinds(
    modules: Iterable[str] = (), *, entry_point_group: str = "genqueue.kinds"
) -> KindRegistry:
    """Build a registry from the entry-point group plus extra module paths."""
    registry = KindRegistry()
    for ep in entry_points(group=entry_point_group):
        registry.register_module(ep.load())
    for module in modules:
        registry.register_module(module)
    return registry


def import_object(import_path: str) -> Any:
    """The object at ``module:attribute`` (how a pool process finds what it runs)."""
    module_name, _, attr = import_path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def resolve_kind(import_path: str) -> Kind:
    """Find a Kind again from ``module:attribute`` (used inside process-pool children)."""
    obj = import_object(import_path)
    if not isinstance(obj, Kind):
        raise ConfigError(f"{import_path} is not a genqueue Kind")
    return obj
