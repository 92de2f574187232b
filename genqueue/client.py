"""The HTTP API in Python: ``AsyncClient`` and ``Client`` (same methods), on httpx.

Request building and response parsing are shared (``_Requests``); the two classes differ only
in how they send. Errors come back as genqueue exceptions: 404 -> TaskNotFoundError, 422 ->
InvalidInputError (with the fields), 409 -> IdempotencyConflictError, 503 ->
BackendUnavailableError.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

import httpx
from pydantic import BaseModel

from genqueue.api.schemas import BatchPublic, BrokerPublic, QueuePublic, TaskPage, TaskPublic
from genqueue.errors import (
    BackendUnavailableError,
    FieldProblem,
    GenqueueError,
    IdempotencyConflictError,
    InvalidInputError,
    TaskNotFoundError,
)
from genqueue.models import WorkerInfo
from genqueue.sse import BROKEN, STREAM_TIMEOUT, Resume, SseDecoder
from genqueue.sse import ServerEvent as ServerEvent  # part of the client API

DEFAULT_URL = "http://127.0.0.1:8000"

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = {"message": response.text}
    message = body.get("message", response.reason_phrase)
    match response.status_code:
        case 404:
            raise TaskNotFoundError(message)
        case 409:
            raise IdempotencyConflictError(message)
        case 422 | 400 | 413:
            fields = body.get("fields") or [{"field": "body", "message": message}]
            raise InvalidInputError([FieldProblem(f["field"], f["message"]) for f in fields])
        case 503:
            raise BackendUnavailableError(message)
        case code:
            raise GenqueueError(f"HTTP {code}: {message}")


def _task_body(
    kind: str,
    payload: dict[str, Any] | None,
    user: str | None,
    priority: int,
    queue: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "payload": payload or {}, "priority": priority}
    if user is not None:
        body["user"] = user
    if queue is not None:
        body["queue"] = queue
    return body


def _events_params(task_id: str | None, batch_id: str | None, user: str | None) -> dict[str, str]:
    params = {"task_id": task_id, "batch_id": batch_id, "user": user}
    return {k: v for k, v in params.items() if v is not None}


def _list_of(model: type[M]) -> Callable[[Any], list[M]]:
    return lambda items: [model.model_validate(item) for item in items]


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One API call as data, so that both clients send exactly the same requests."""

    method: str
    url: str
    parse: Callable[[Any], T]
    kwargs: dict[str, Any] = field(default_factory=dict)


def _submit(
    kind: str,
    payload: dict[str, Any] | None,
    user: str | None,
    priority: int,
    queue: str | None,
    idempotency_key: str | None,
) -> _Call[TaskPublic]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    body = _task_body(kind, payload, user, priority, queue)
    return _Call("POST", "/v1/tasks", TaskPublic.model_validate, {"json": body, "headers": headers})


def _get(task_id: str) -> _Call[TaskPublic]:
    return _Call("GET", f"/v1/tasks/{task_id}", TaskPublic.model_validate)


def _list_tasks(filters: dict[str, Any]) -> _Call[TaskPage]:
    params = {k: v for k, v in filters.items() if v is not None}
    return _Call("GET", "/v1/tasks", TaskPage.model_validate, {"params": params})


def _wait(task_id: str, timeout_s: float) -> _Call[TaskPublic]:
    return _Call(
        "GET",
        f"/v1/tasks/{task_id}/wait",
        TaskPublic.model_validate,
        {"params": {"timeout": timeout_s}, "timeout": timeout_s + 10},
    )


def _cancel(task_id: str) -> _Call[TaskPublic]:
    return _Call("POST", f"/v1/tasks/{task_id}/cancel", TaskPublic.model_validate)


def _submit_batch(tasks: list[dict[str, Any]], user: str | None) -> _Call[BatchPublic]:
    return _Call(
        "POST", "/v1/batches", BatchPublic.model_validate, {"json": {"tasks": tasks, "user": user}}
    )


def _get_batch(batch_id: str) -> _Call[BatchPublic]:
    return _Call("GET", f"/v1/batches/{batch_id}", BatchPublic.model_validate)


def _cancel_batch(batch_id: str) -> _Call[BatchPublic]:
    return _Call("POST", f"/v1/batches/{batch_id}/cancel", BatchPublic.model_validate)


_QUEUES = _Call("GET", "/v1/queues", _list_of(QueuePublic))
_WORKERS = _Call("GET", "/v1/workers", _list_of(WorkerInfo))
# 503 while the broker is unreachable, with the same body: the caller reads ``connected``.
_BROKER = _Call("GET", "/v1/broker", BrokerPublic.model_validate, {"check": False})
_HEALTH: _Call[dict[str, Any]] = _Call("GET", "/health", dict, {"check": False})


class AsyncClient:
    """Async client of a genqueue API."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, call: _Call[T]) -> T:
        kwargs = dict(call.kwargs)
        check = kwargs.pop("check", True)
        response = await self._http.request(call.method, call.url, **kwargs)
        if check:
            _raise_for(response)
        return call.parse(response.json())

    async def submit(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        user: str | None = None,
        priority: int = 0,
        queue: str | None = None,
        idempotency_key: str | None = None,
    ) -> TaskPublic:
        """Submit a task; ``idempotency_key`` makes a retried submit return the same task."""
        return await self._run(_submit(kind, payload, user, priority, queue, idempotency_key))

    async def get(self, task_id: str) -> TaskPublic:
        return await self._run(_get(task_id))

    async def list_tasks(self, **filters: Any) -> TaskPage:
        """Filters: user, status, kind, batch_id, queue, limit, cursor."""
        return await self._run(_list_tasks(filters))

    async def wait(self, task_id: str, timeout_s: float = 60.0) -> TaskPublic:
        """Until the task finishes or ``timeout_s`` passes (then its current state)."""
        return await self._run(_wait(task_id, timeout_s))

    async def cancel(self, task_id: str) -> TaskPublic:
        return await self._run(_cancel(task_id))

    async def submit_batch(
        self, tasks: list[dict[str, Any]], *, user: str | None = None
    ) -> BatchPublic:
        return await self._run(_submit_batch(tasks, user))

    async def get_batch(self, batch_id: str) -> BatchPublic:
        return await self._run(_get_batch(batch_id))

    async def cancel_batch(self, batch_id: str) -> BatchPublic:
        return await self._run(_cancel_batch(batch_id))

    async def queues(self) -> list[QueuePublic]:
        return await self._run(_QUEUES)

    async def workers(self) -> list[WorkerInfo]:
        return await self._run(_WORKERS)

    async def broker(self) -> BrokerPublic:
        return await self._run(_BROKER)

    async def health(self) -> dict[str, Any]:
        return await self._run(_HEALTH)

    async def events(
        self,
        *,
        task_id: str | None = None,
        batch_id: str | None = None,
        user: str | None = None,
        reconnect_for_s: float = 60.0,
    ) -> AsyncIterator[ServerEvent]:
        """Server-Sent Events, as they come, until the caller stops iterating. A stream that
        breaks (API restart, network, 503 while a backend is down) is opened again after a
        short pause with ``Last-Event-ID``, so every event still comes exactly once (a
        ``lagged`` event says the server no longer had some). Raises if the first connection
        fails, or after ``reconnect_for_s`` without getting a stream back."""
        params = _events_params(task_id, batch_id, user)
        resume = Resume(reconnect_for_s)
        while True:
            error: Exception | None = None
            try:
                async with self._http.stream(
                    "GET",
                    "/v1/events",
                    params=params,
                    headers=resume.headers(),
                    timeout=STREAM_TIMEOUT,
                ) as response:
                    _raise_for(response)
                    resume.opened()
                    decoder = SseDecoder()
                    async for line in response.aiter_lines():
                        for event in decoder.feed(line):
                            resume.seen(event)
                            yield event
            except BROKEN as exc:
                error = exc
            await asyncio.sleep(resume.pause_s(error))


class Client:
    """Blocking client of a genqueue API; the same methods as :class:`AsyncClient`."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: _Call[T]) -> T:
        kwargs = dict(call.kwargs)
        check = kwargs.pop("check", True)
        response = self._http.request(call.method, call.url, **kwargs)
        if check:
            _raise_for(response)
        return call.parse(response.json())

    def submit(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        user: str | None = None,
        priority: int = 0,
        queue: str | None = None,
        idempotency_key: str | None = None,
    ) -> TaskPublic:
        """Submit a task; ``idempotency_key`` makes a retried submit return the same task."""
        return self._run(_submit(kind, payload, user, priority, queue, idempotency_key))

    def get(self, task_id: str) -> TaskPublic:
        return self._run(_get(task_id))

    def list_tasks(self, **filters: Any) -> TaskPage:
        """Filters: user, status, kind, batch_id, queue, limit, cursor."""
        return self._run(_list_tasks(filters))

    def wait(self, task_id: str, timeout_s: float = 60.0) -> TaskPublic:
        """Until the task finishes or ``timeout_s`` passes (then its current state)."""
        return self._run(_wait(task_id, timeout_s))

    def cancel(self, task_id: str) -> TaskPublic:
        return self._run(_cancel(task_id))

    def submit_batch(self, tasks: list[dict[str, Any]], *, user: str | None = None) -> BatchPublic:
        return self._run(_submit_batch(tasks, user))

    def get_batch(self, batch_id: str) -> BatchPublic:
        return self._run(_get_batch(batch_id))

    def cancel_batch(self, batch_id: str) -> BatchPublic:
        return self._run(_cancel_batch(batch_id))

    def queues(self) -> list[QueuePublic]:
        return self._run(_QUEUES)

    def workers(self) -> list[WorkerInfo]:
        return self._run(_WORKERS)

    def broker(self) -> BrokerPublic:
        return self._run(_BROKER)

    def health(self) -> dict[str, Any]:
        return self._run(_HEALTH)

    def events(
        self,
        *,
        task_id: str | None = None,
        batch_id: str | None = None,
        user: str | None = None,
        reconnect_for_s: float = 60.0,
    ) -> Iterator[ServerEvent]:
        """Server-Sent Events, as they come, until the caller stops iterating; a broken
        stream is resumed as in :meth:`AsyncClient.events`."""
        params = _events_params(task_id, batch_id, user)
        resume = Resume(reconnect_for_s)
        while True:
            error: Exception | None = None
            try:
                with self._http.stream(
                    "GET",
                    "/v1/events",
                    params=params,
                    headers=resume.headers(),
                    timeout=STREAM_TIMEOUT,
                ) as response:
                    _raise_for(response)
                    resume.opened()
                    decoder = SseDecoder()
                    for line in response.iter_lines():
                        for event in decoder.feed(line):
                            resume.seen(event)
                            yield event
            except BROKEN as exc:
                error = exc
            time.sleep(resume.pause_s(error))  # a backoff pause, not synchronisation
