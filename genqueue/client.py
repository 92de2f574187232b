"""The HTTP API in Python: ``AsyncClient`` and ``Client`` (same methods), on httpx.

Request building and response parsing are shared (``genqueue/calls.py``); the two classes
differ only in how they send. Errors come back as genqueue exceptions: 404 ->
TaskNotFoundError, 422 -> InvalidInputError (with the fields), 409 ->
IdempotencyConflictError, 503 -> BackendUnavailableError.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from datetime import datetime
from typing import Any, Self, TypeVar

import httpx

from genqueue import calls
from genqueue.api.schemas import BatchPublic, BrokerPublic, QueuePublic, TaskPage, TaskPublic
from genqueue.models import FINISHED, EventType, LimitStatus, WorkerInfo
from genqueue.previews import Preview as Preview  # part of the client API
from genqueue.sse import BROKEN, STREAM_TIMEOUT, Resume, SseDecoder
from genqueue.sse import ServerEvent as ServerEvent  # part of the client API

DEFAULT_URL = "http://127.0.0.1:8000"

T = TypeVar("T")


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

    async def _run(self, call: calls.Call[T]) -> T:
        kwargs = dict(call.kwargs)
        check = kwargs.pop("check", True)
        response = await self._http.request(call.method, call.url, **kwargs)
        if check:
            calls.raise_for(response)
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
        delay_s: float | None = None,
        run_at: datetime | None = None,
        start_by: datetime | None = None,
        cancel_after_s: float | None = None,
    ) -> TaskPublic:
        """Submit a task; ``idempotency_key`` makes a retried submit return the same task.
        ``delay_s`` or ``run_at`` (not both): not started before then; ``start_by``: not
        started by then, it ends ``expired``; ``cancel_after_s``: a longer run is stopped."""
        schedule = calls.Schedule(delay_s, run_at, start_by, cancel_after_s)
        return await self._run(
            calls.submit(kind, payload, user, priority, queue, idempotency_key, schedule)
        )

    async def get(self, task_id: str) -> TaskPublic:
        return await self._run(calls.get(task_id))

    async def list_tasks(self, **filters: Any) -> TaskPage:
        """Filters: user, status, kind, batch_id, queue, limit, cursor."""
        return await self._run(calls.list_tasks(filters))

    async def wait(self, task_id: str, timeout_s: float = 60.0) -> TaskPublic:
        """Until the task finishes or ``timeout_s`` passes (then its current state)."""
        return await self._run(calls.wait(task_id, timeout_s))

    async def cancel(self, task_id: str) -> TaskPublic:
        return await self._run(calls.cancel(task_id))

    async def submit_batch(
        self,
        tasks: list[dict[str, Any]],
        *,
        user: str | None = None,
        delay_s: float | None = None,
        run_at: datetime | None = None,
        start_by: datetime | None = None,
        cancel_after_s: float | None = None,
    ) -> BatchPublic:
        """Submit tasks (``{"kind", "payload", ...}`` each) all or none; the schedule given
        here applies to every task that does not set its own."""
        schedule = calls.Schedule(delay_s, run_at, start_by, cancel_after_s)
        return await self._run(calls.submit_batch(tasks, user, schedule))

    async def get_batch(self, batch_id: str) -> BatchPublic:
        return await self._run(calls.get_batch(batch_id))

    async def cancel_batch(self, batch_id: str) -> BatchPublic:
        return await self._run(calls.cancel_batch(batch_id))

    async def queues(self) -> list[QueuePublic]:
        return await self._run(calls.QUEUES)

    async def workers(self) -> list[WorkerInfo]:
        return await self._run(calls.WORKERS)

    async def limits(self) -> list[LimitStatus]:
        """The shared limit of every upstream resource, by name."""
        return await self._run(calls.LIMITS)

    async def limit(self, resource: str) -> LimitStatus:
        """One resource's shared limit; ``TaskNotFoundError`` (404) if none is configured."""
        return await self._run(calls.limit(resource))

    async def broker(self) -> BrokerPublic:
        return await self._run(calls.BROKER)

    async def health(self) -> dict[str, Any]:
        return await self._run(calls.HEALTH)

    async def events(
        self,
        *,
        task_id: str | None = None,
        batch_id: str | None = None,
        user: str | None = None,
        reconnect_for_s: float = 60.0,
    ) -> AsyncGenerator[ServerEvent, None]:
        """Server-Sent Events, as they come, until the caller stops iterating. A stream that
        breaks (API restart, network, 503 while a backend is down) is opened again after a
        short pause with ``Last-Event-ID``, so every event still comes exactly once (a
        ``lagged`` event says the server no longer had some). Raises if the first connection
        fails, or after ``reconnect_for_s`` without getting a stream back."""
        params = calls.events_params(task_id, batch_id, user)
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
                    calls.raise_for(response)
                    resume.opened()
                    decoder = SseDecoder()
                    async for line in response.aiter_lines():
                        for event in decoder.feed(line):
                            resume.seen(event)
                            yield event
            except BROKEN as exc:
                error = exc
            await asyncio.sleep(resume.pause_s(error))

    async def previews(
        self, task_id: str, *, reconnect_for_s: float = 60.0
    ) -> AsyncIterator[Preview]:
        """The live previews of a running task, decoded from its ``task.preview`` events,
        until it finishes (nothing if it already has): ``preview.data`` is the image file
        (``preview.content_type``), ``preview.image()`` opens it with Pillow."""
        stream = self.events(task_id=task_id, reconnect_for_s=reconnect_for_s)
        async with contextlib.aclosing(stream):
            async for event in stream:
                if event.event == EventType.PREVIEW:
                    yield Preview.from_event(event)
                elif _finished(event):
                    return


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

    def _run(self, call: calls.Call[T]) -> T:
        kwargs = dict(call.kwargs)
        check = kwargs.pop("check", True)
        response = self._http.request(call.method, call.url, **kwargs)
        if check:
            calls.raise_for(response)
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
        delay_s: float | None = None,
        run_at: datetime | None = None,
        start_by: datetime | None = None,
        cancel_after_s: float | None = None,
    ) -> TaskPublic:
        """Submit a task; ``idempotency_key`` makes a retried submit return the same task.
        ``delay_s`` or ``run_at`` (not both): not started before then; ``start_by``: not
        started by then, it ends ``expired``; ``cancel_after_s``: a longer run is stopped."""
        schedule = calls.Schedule(delay_s, run_at, start_by, cancel_after_s)
        return self._run(
            calls.submit(kind, payload, user, priority, queue, idempotency_key, schedule)
        )

    def get(self, task_id: str) -> TaskPublic:
        return self._run(calls.get(task_id))

    def list_tasks(self, **filters: Any) -> TaskPage:
        """Filters: user, status, kind, batch_id, queue, limit, cursor."""
        return self._run(calls.list_tasks(filters))

    def wait(self, task_id: str, timeout_s: float = 60.0) -> TaskPublic:
        """Until the task finishes or ``timeout_s`` passes (then its current state)."""
        return self._run(calls.wait(task_id, timeout_s))

    def cancel(self, task_id: str) -> TaskPublic:
        return self._run(calls.cancel(task_id))

    def submit_batch(
        self,
        tasks: list[dict[str, Any]],
        *,
        user: str | None = None,
        delay_s: float | None = None,
        run_at: datetime | None = None,
        start_by: datetime | None = None,
        cancel_after_s: float | None = None,
    ) -> BatchPublic:
        """Submit tasks all or none, as :meth:`AsyncClient.submit_batch`."""
        schedule = calls.Schedule(delay_s, run_at, start_by, cancel_after_s)
        return self._run(calls.submit_batch(tasks, user, schedule))

    def get_batch(self, batch_id: str) -> BatchPublic:
        return self._run(calls.get_batch(batch_id))

    def cancel_batch(self, batch_id: str) -> BatchPublic:
        return self._run(calls.cancel_batch(batch_id))

    def queues(self) -> list[QueuePublic]:
        return self._run(calls.QUEUES)

    def workers(self) -> list[WorkerInfo]:
        return self._run(calls.WORKERS)

    def limits(self) -> list[LimitStatus]:
        """The shared limit of every upstream resource, by name."""
        return self._run(calls.LIMITS)

    def limit(self, resource: str) -> LimitStatus:
        """One resource's shared limit; ``TaskNotFoundError`` (404) if none is configured."""
        return self._run(calls.limit(resource))

    def broker(self) -> BrokerPublic:
        return self._run(calls.BROKER)

    def health(self) -> dict[str, Any]:
        return self._run(calls.HEALTH)

    def events(
        self,
        *,
        task_id: str | None = None,
        batch_id: str | None = None,
        user: str | None = None,
        reconnect_for_s: float = 60.0,
    ) -> Generator[ServerEvent, None, None]:
        """Server-Sent Events, as they come, until the caller stops iterating; a broken
        stream is resumed as in :meth:`AsyncClient.events`."""
        params = calls.events_params(task_id, batch_id, user)
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
                    calls.raise_for(response)
                    resume.opened()
                    decoder = SseDecoder()
                    for line in response.iter_lines():
                        for event in decoder.feed(line):
                            resume.seen(event)
                            yield event
            except BROKEN as exc:
                error = exc
            time.sleep(resume.pause_s(error))  # a backoff pause, not synchronisation

    def previews(self, task_id: str, *, reconnect_for_s: float = 60.0) -> Iterator[Preview]:
        """The live previews of a running task until it finishes, as
        :meth:`AsyncClient.previews`."""
        with contextlib.closing(
            self.events(task_id=task_id, reconnect_for_s=reconnect_for_s)
        ) as stream:
            for event in stream:
                if event.event == EventType.PREVIEW:
                    yield Preview.from_event(event)
                elif _finished(event):
                    return


def _finished(event: ServerEvent) -> bool:
    """Whether a task's stream says it has finished (its snapshot, or one of its events)."""
    return event.data.get("status") in FINISHED
