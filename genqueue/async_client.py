"""``AsyncClient``: the HTTP API in Python for asyncio code; ``genqueue/client.py`` has the
blocking ``Client`` with the same methods. Both build their requests with
``genqueue/calls.py`` and read streams the same way; they differ only in how they send."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from datetime import datetime
from typing import Any, Literal, Self, TypeVar, Unpack, overload

import httpx
from pydantic import BaseModel

from genqueue import calls
from genqueue.api.schemas import BatchPublic, BrokerPublic, QueuePublic, TaskPage, TaskPublic
from genqueue.batch_follow import BatchFollower
from genqueue.calls import DEFAULT_URL, RUN_TIMEOUT_S, BatchOptions, SubmitOptions
from genqueue.errors import TaskFailedError
from genqueue.models import FINISHED, EventType, LimitStatus, WorkerInfo
from genqueue.previews import Preview
from genqueue.sse import BROKEN, STREAM_TIMEOUT, Resume, ServerEvent, SseDecoder
from genqueue.task_updates import (
    TaskFinished,
    TaskSnapshot,
    TaskUpdate,
    ends,
    finished,
    result_of,
    update_of,
)
from genqueue.webhooks.records import WebhookDelivery

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Payload = dict[str, Any] | None


class AsyncClient:
    """Async client of a genqueue API. ``api_key`` (default: ``GENQUEUE_API_KEY``) is sent
    as ``Authorization: Bearer <key>`` on every request."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=calls.auth_headers(api_key),
            timeout=timeout_s,
            transport=transport,
        )

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

    @overload
    async def run(
        self,
        kind: str,
        payload: Payload = None,
        *,
        result_type: None = None,
        timeout_s: float = RUN_TIMEOUT_S,
        **options: Unpack[SubmitOptions],
    ) -> dict[str, Any]: ...

    @overload
    async def run(
        self,
        kind: str,
        payload: Payload = None,
        *,
        result_type: type[M],
        timeout_s: float = RUN_TIMEOUT_S,
        **options: Unpack[SubmitOptions],
    ) -> M: ...

    async def run(
        self,
        kind: str,
        payload: Payload = None,
        *,
        result_type: type[BaseModel] | None = None,
        timeout_s: float = RUN_TIMEOUT_S,
        **options: Unpack[SubmitOptions],
    ) -> BaseModel | dict[str, Any]:
        """Submit a task, wait for it, return its result (parsed as ``result_type`` if given,
        e.g. ``genqueue.results.ImageResult``). ``TaskFailedError`` (carrying the task) if it
        failed, was cancelled or expired; ``WaitTimeoutError`` after ``timeout_s`` (the task
        goes on). Waiting rides out an API restart or outage. ``options``: as :meth:`submit`."""
        task = await self.submit(kind, payload, **options)
        return result_of(await self._until_finished(task, timeout_s), result_type)

    async def _until_finished(self, task: TaskPublic, timeout_s: float) -> TaskPublic:
        deadline = calls.Deadline(timeout_s)
        while not task.status.finished:
            if deadline.left_s() <= 0:
                raise calls.still_running(task, timeout_s)
            try:
                task = await self.wait(task.id, deadline.poll_s())
            except BROKEN:
                await asyncio.sleep(deadline.pause_s())
        return task

    @overload
    async def map(
        self,
        kind: str,
        payloads: Iterable[Payload],
        *,
        result_type: None = None,
        return_exceptions: Literal[False] = False,
        progress: bool = False,
        timeout_s: float = RUN_TIMEOUT_S,
        **options: Unpack[BatchOptions],
    ) -> list[dict[str, Any]]: ...

    @overload
    async def map(
        self,
        kind: str,
        payloads: Iterable[Payload],
        *,
        result_type: type[M],
        return_exceptions: Literal[False] = False,
        progress: bool = False,
        timeout_s: float = RUN_TIMEOUT_S,
        **options: Unpack[BatchOptions],
    ) -> list[M]: ...

    @overload
    async def map(
        self,
        kind: str,
        payloads: Iterable[Payload],
        *,
        result_type: None = None,
        return_exceptions: Literal[True],
        progress: bool = False,
        timeout_s: float = RUN_TIMEOUT_S,
        **options: Unpack[BatchOptions],
    ) -> list[dict[str, Any] | TaskFailedError]: ...

    @overload
    async def map(
        self,
        kind: str,
        payloads: Iterable[Payload],
        *,
        result_type: type[M],
        return_exceptions: Literal[True],
        progress: bool = False,
        timeout_s: float = RUN_TIMEOUT_S,
        **options: Unpack[BatchOptions],
    ) -> list[M | TaskFailedError]: ...

    async def map(
        self,
        kind: str,
        payloads: Iterable[Payload],
        *,
        result_type: type[BaseModel] | None = None,
        return_exceptions: bool = False,
        progress: bool = False,
        timeout_s: float = RUN_TIMEOUT_S,
        **options: Unpack[BatchOptions],
    ) -> list[Any]:
        """One task of ``kind`` per payload, submitted as one batch (all or none), followed
        live; the results in input order. The first task seen to fail, be cancelled or expire
        raises its ``TaskFailedError`` at once (the rest go on: ``cancel_batch`` with
        ``exc.task.batch_id``), unless ``return_exceptions``: then it takes its place in the
        list. ``progress``: a rich progress bar on stderr. ``WaitTimeoutError`` (with the
        batch id) after ``timeout_s``, checked at least every 15 s (the stream's keep-alive)."""
        items = list(payloads)
        if not items:
            return []
        batch = await self._run(calls.map_tasks(kind, items, options))
        with BatchFollower(batch, kind, timeout_s, progress) as follower:
            frames = self._frames(calls.events_params(None, batch.id, None), 60.0)
            async with contextlib.aclosing(frames):
                async for frame in frames:
                    if frame is not None:
                        follower.saw(frame)
                    if follower.stale:
                        follower.caught_up(await self._finished_tasks(batch.id))
                    if follower.first_failed and not return_exceptions:
                        raise TaskFailedError(await self.get(follower.first_failed))
                    if follower.done:
                        break
                    follower.check_deadline()
            tasks = await self._finished_tasks(batch.id)
            return follower.outcomes(tasks, result_type, return_exceptions)

    async def _finished_tasks(self, batch_id: str) -> list[TaskPublic]:
        tasks: list[TaskPublic] = []
        for status in FINISHED:
            cursor: str | None = None
            while True:
                page = await self._run(calls.finished_page(batch_id, status, cursor))
                tasks += page.items
                if not (cursor := page.next_cursor):
                    break
        return tasks

    async def stream(
        self, task_id: str, *, reconnect_for_s: float = 60.0
    ) -> AsyncIterator[TaskUpdate]:
        """The task's updates until it finishes (``genqueue.task_updates``): a
        ``TaskSnapshot`` first, then ``TaskProgress``, ``Preview``, ``TaskStatusChange`` and
        the handler's own ``TaskEvent``s as they happen, and last ``TaskFinished`` with the
        task's result or error. A broken stream is resumed without losing updates."""
        events = self.events(task_id=task_id, reconnect_for_s=reconnect_for_s)
        async with contextlib.aclosing(events):
            async for event in events:
                update = update_of(event)
                if update is None:
                    continue
                if isinstance(update, TaskSnapshot) or not ends(update):
                    yield update
                if ends(update):
                    last = update.task if isinstance(update, TaskSnapshot) else None
                    yield TaskFinished(last or await self.get(task_id))
                    return

    async def submit(
        self,
        kind: str,
        payload: Payload = None,
        *,
        user: str | None = None,
        priority: int = 0,
        queue: str | None = None,
        idempotency_key: str | None = None,
        delay_s: float | None = None,
        run_at: datetime | None = None,
        start_by: datetime | None = None,
        cancel_after_s: float | None = None,
        cache: bool = True,
        webhook: calls.Webhook | None = None,
    ) -> TaskPublic:
        """Submit a task; ``idempotency_key`` makes a retried submit return the same task.
        ``delay_s`` or ``run_at`` (not both): not started before then; ``start_by``: not
        started by then, it ends ``expired``; ``cancel_after_s``: a longer run is stopped.
        A deterministic kind's identical earlier task may answer (``cached: true``, nothing
        run) unless ``cache=False``. ``webhook``: a URL, or ``{"url", "events"}``, to which
        its events are POSTed, signed (docs/webhooks.md)."""
        schedule = calls.Schedule(delay_s, run_at, start_by, cancel_after_s)
        call = calls.submit(kind, payload, user, priority, queue, idempotency_key, schedule, cache)
        return await self._run(calls.with_webhook(call, webhook))

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
        webhook: calls.Webhook | None = None,
    ) -> BatchPublic:
        """Submit tasks (``{"kind", "payload", ...}`` each) all or none; the schedule given
        here applies to every task that does not set its own."""
        schedule = calls.Schedule(delay_s, run_at, start_by, cancel_after_s)
        call = calls.submit_batch(tasks, user, schedule)
        return await self._run(calls.with_webhook(call, webhook))

    async def get_batch(self, batch_id: str) -> BatchPublic:
        return await self._run(calls.get_batch(batch_id))

    async def cancel_batch(self, batch_id: str) -> BatchPublic:
        return await self._run(calls.cancel_batch(batch_id))

    async def webhook_deliveries(
        self, task_id: str | None = None, *, batch_id: str | None = None
    ) -> list[WebhookDelivery]:
        """A task's (or a batch's) webhook deliveries with their attempts, oldest first."""
        return await self._run(calls.webhook_deliveries(task_id, batch_id))

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
        frames = self._frames(calls.events_params(task_id, batch_id, user), reconnect_for_s)
        async with contextlib.aclosing(frames):
            async for frame in frames:
                if frame is not None:
                    yield frame

    async def _frames(
        self, params: dict[str, str], reconnect_for_s: float
    ) -> AsyncGenerator[ServerEvent | None, None]:
        """The events of ``/v1/events``, and None for each line that ends none: a sign of
        life. The first line of a connection comes once the server listens (its ``retry:``),
        and keep-alives come every 15 s, so a caller can act on both."""
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
                    if not response.is_success:
                        await response.aread()  # the error's body, to name it
                    calls.raise_for(response)
                    resume.opened()
                    decoder = SseDecoder()
                    async for line in response.aiter_lines():
                        events = decoder.feed(line)
                        for event in events:
                            resume.seen(event)
                            yield event
                        if not events:
                            yield None
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
                elif finished(event):
                    return
