"""The HTTP API in Python: ``Client`` (blocking) here, ``AsyncClient`` (asyncio) in
``genqueue/async_client.py``, with the same methods, on httpx.

Request building and response parsing are shared (``genqueue/calls.py``); the two classes
differ only in how they send. Errors come back as genqueue exceptions: 404 ->
TaskNotFoundError, 422 -> InvalidInputError (with the fields), 409 ->
IdempotencyConflictError, 503 -> BackendUnavailableError; a task that ends without a result
in ``run`` or ``map`` -> TaskFailedError, a wait that runs out -> WaitTimeoutError.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator, Iterable, Iterator
from datetime import datetime
from typing import Any, Literal, Self, TypeVar, Unpack, overload

import httpx
from pydantic import BaseModel

from genqueue import calls
from genqueue.api.schemas import BatchPublic, BrokerPublic, QueuePublic, TaskPage, TaskPublic
from genqueue.async_client import AsyncClient as AsyncClient  # part of the client API
from genqueue.batch_follow import BatchFollower
from genqueue.calls import DEFAULT_URL as DEFAULT_URL  # part of the client API
from genqueue.calls import RUN_TIMEOUT_S, BatchOptions, SubmitOptions
from genqueue.errors import TaskFailedError
from genqueue.models import FINISHED, EventType, LimitStatus, WorkerInfo
from genqueue.previews import Preview as Preview  # part of the client API
from genqueue.sse import BROKEN, STREAM_TIMEOUT, Resume, SseDecoder
from genqueue.sse import ServerEvent as ServerEvent  # part of the client API
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


class Client:
    """Blocking client of a genqueue API, with the methods of :class:`AsyncClient`.
    ``api_key`` (default: ``GENQUEUE_API_KEY``) is sent as ``Authorization: Bearer <key>``."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers=calls.auth_headers(api_key),
            timeout=timeout_s,
            transport=transport,
        )

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

    @overload
    def run(
        self,
        kind: str,
        payload: Payload = None,
        *,
        result_type: None = None,
        timeout_s: float = RUN_TIMEOUT_S,
        **options: Unpack[SubmitOptions],
    ) -> dict[str, Any]: ...

    @overload
    def run(
        self,
        kind: str,
        payload: Payload = None,
        *,
        result_type: type[M],
        timeout_s: float = RUN_TIMEOUT_S,
        **options: Unpack[SubmitOptions],
    ) -> M: ...

    def run(
        self,
        kind: str,
        payload: Payload = None,
        *,
        result_type: type[BaseModel] | None = None,
        timeout_s: float = RUN_TIMEOUT_S,
        **options: Unpack[SubmitOptions],
    ) -> BaseModel | dict[str, Any]:
        """Submit, wait, return the result (or raise), as :meth:`AsyncClient.run`."""
        task = self.submit(kind, payload, **options)
        return result_of(self._until_finished(task, timeout_s), result_type)

    def _until_finished(self, task: TaskPublic, timeout_s: float) -> TaskPublic:
        deadline = calls.Deadline(timeout_s)
        while not task.status.finished:
            if deadline.left_s() <= 0:
                raise calls.still_running(task, timeout_s)
            try:
                task = self.wait(task.id, deadline.poll_s())
            except BROKEN:
                time.sleep(deadline.pause_s())  # a backoff pause, not synchronisation
        return task

    @overload
    def map(
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
    def map(
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
    def map(
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
    def map(
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

    def map(
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
        """One batch, followed live, results in input order: :meth:`AsyncClient.map`."""
        items = list(payloads)
        if not items:
            return []
        batch = self._run(calls.map_tasks(kind, items, options))
        with BatchFollower(batch, kind, timeout_s, progress) as follower:
            frames = self._frames(calls.events_params(None, batch.id, None), 60.0)
            with contextlib.closing(frames):
                for frame in frames:
                    if frame is not None:
                        follower.saw(frame)
                    if follower.stale:
                        follower.caught_up(self._finished_tasks(batch.id))
                    if follower.first_failed and not return_exceptions:
                        raise TaskFailedError(self.get(follower.first_failed))
                    if follower.done:
                        break
                    follower.check_deadline()
            tasks = self._finished_tasks(batch.id)
            return follower.outcomes(tasks, result_type, return_exceptions)

    def _finished_tasks(self, batch_id: str) -> list[TaskPublic]:
        tasks: list[TaskPublic] = []
        for status in FINISHED:
            cursor: str | None = None
            while True:
                page = self._run(calls.finished_page(batch_id, status, cursor))
                tasks += page.items
                if not (cursor := page.next_cursor):
                    break
        return tasks

    def stream(self, task_id: str, *, reconnect_for_s: float = 60.0) -> Iterator[TaskUpdate]:
        """The task's typed updates until it finishes, as :meth:`AsyncClient.stream`."""
        events = self.events(task_id=task_id, reconnect_for_s=reconnect_for_s)
        with contextlib.closing(events):
            for event in events:
                update = update_of(event)
                if update is None:
                    continue
                if isinstance(update, TaskSnapshot) or not ends(update):
                    yield update
                if ends(update):
                    last = update.task if isinstance(update, TaskSnapshot) else None
                    yield TaskFinished(last or self.get(task_id))
                    return

    def submit(
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
        return self._run(calls.with_webhook(call, webhook))

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
        webhook: calls.Webhook | None = None,
    ) -> BatchPublic:
        """Submit tasks all or none, as :meth:`AsyncClient.submit_batch`."""
        schedule = calls.Schedule(delay_s, run_at, start_by, cancel_after_s)
        call = calls.submit_batch(tasks, user, schedule)
        return self._run(calls.with_webhook(call, webhook))

    def get_batch(self, batch_id: str) -> BatchPublic:
        return self._run(calls.get_batch(batch_id))

    def cancel_batch(self, batch_id: str) -> BatchPublic:
        return self._run(calls.cancel_batch(batch_id))

    def webhook_deliveries(
        self, task_id: str | None = None, *, batch_id: str | None = None
    ) -> list[WebhookDelivery]:
        """A task's (or a batch's) webhook deliveries with their attempts, oldest first."""
        return self._run(calls.webhook_deliveries(task_id, batch_id))

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
        frames = self._frames(calls.events_params(task_id, batch_id, user), reconnect_for_s)
        with contextlib.closing(frames):
            for frame in frames:
                if frame is not None:
                    yield frame

    def _frames(
        self, params: dict[str, str], reconnect_for_s: float
    ) -> Generator[ServerEvent | None, None, None]:
        """The events of ``/v1/events`` and a None per line that ends none, as
        :meth:`AsyncClient._frames`."""
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
                    if not response.is_success:
                        response.read()  # the error's body, to name it
                    calls.raise_for(response)
                    resume.opened()
                    decoder = SseDecoder()
                    for line in response.iter_lines():
                        events = decoder.feed(line)
                        for event in events:
                            resume.seen(event)
                            yield event
                        if not events:
                            yield None
            except BROKEN as exc:
                error = exc
            time.sleep(resume.pause_s(error))  # a backoff pause, not synchronisation

    def previews(self, task_id: str, *, reconnect_for_s: float = 60.0) -> Iterator[Preview]:
        """The live previews of a running task until it finishes, as
        :meth:`AsyncClient.previews`."""
        stream = self.events(task_id=task_id, reconnect_for_s=reconnect_for_s)
        with contextlib.closing(stream):
            for event in stream:
                if event.event == EventType.PREVIEW:
                    yield Preview.from_event(event)
                elif finished(event):
                    return
