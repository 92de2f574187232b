"""/v1/events: Server-Sent Events of task changes, filtered by task, batch or user.

A client that lost its stream reconnects with ``Last-Event-ID`` (browsers' EventSource does
so by itself; ``last_event_id`` in the query works too) and gets every event it missed, then
live ones, each once. Each frame's ``id:`` is the highest event id sent so far on the stream
rather than the event's own: on PostgreSQL an event can commit below an id already sent, and
resuming must start above both.

Following a queued task (``task_id``), the stream also hears other tasks start and leave
(``EventFilter.line``) and then sends a fresh ``snapshot`` when the task's place in line has
changed: its place is read again at most once a second, and only while it is queued.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from genqueue.api.auth import PrincipalDep, listed_user
from genqueue.api.deps import RuntimeDep
from genqueue.api.errors import error_responses
from genqueue.api.routes.batches import owned_batch
from genqueue.api.routes.tasks import owned_task, public
from genqueue.api.runtime import Runtime
from genqueue.api.schemas import TaskPublic
from genqueue.errors import BackendUnavailableError
from genqueue.events import EventFilter, event_order
from genqueue.models import Event, TaskStatus

router = APIRouter(prefix="/v1", tags=["events"])

KEEPALIVE_S = 15.0
RETRY_MS = 2000  # what EventSource waits before reconnecting
PLACE_EVERY_S = 1.0  # a queued task's place is read again at most this often


def sse(event: str, data: str, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


def event_frame(event: Event, frame_id: str | None = None) -> str:
    return sse(event.type, event.model_dump_json(), frame_id or event.id)


class _HighWater:
    """The highest event id sent on one stream: the frame id a client resumes after."""

    def __init__(self, after: str | None) -> None:
        self.id: str | None = None
        self._key: tuple[int, ...] | None = None
        if after is not None:
            self.see(after)

    def see(self, event_id: str) -> str | None:
        try:
            key = event_order(event_id)
        except ValueError:
            return self.id
        if self._key is None or key > self._key:
            self.id, self._key = event_id, key
        return self.id


class _Place:
    """A followed task's place in line. While it is queued, another task's start or end
    (``moved``) makes a read of its place due, at most once every ``PLACE_EVERY_S``."""

    def __init__(self, queued: bool) -> None:
        self.queued = queued
        self.position: int | None = None  # as last sent; None: not sent yet
        self.due: float | None = None
        self._last = -math.inf

    def saw(self, task: TaskPublic) -> None:
        self.queued = task.status == TaskStatus.QUEUED
        self.position = task.position

    def moved(self, now: float) -> None:
        if self.queued and self.due is None:
            self.due = max(now, self._last + PLACE_EVERY_S)

    def wait_s(self, now: float) -> float:
        return KEEPALIVE_S if self.due is None else max(0.0, self.due - now)

    def take_due(self, now: float) -> bool:
        """Whether to read the place now (then not again for ``PLACE_EVERY_S``)."""
        if self.due is None or now < self.due:
            return False
        self.due, self._last = None, now
        return self.queued


async def _snapshot(runtime: Runtime, task_id: str) -> TaskPublic:
    return await public(runtime, await runtime.store.get(task_id), with_preview=True)


def snapshot_frame(task: TaskPublic) -> str:
    return sse("snapshot", task.model_dump_json())


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "an endless stream of Server-Sent Events",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **error_responses(404, 410, 503),
    },
)
async def events(
    request: Request,
    runtime: RuntimeDep,
    caller: PrincipalDep,
    task_id: str | None = None,
    batch_id: str | None = None,
    user: str | None = None,
    last_event_id: str | None = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Stream task events as SSE. With ``task_id``, the first frame (``snapshot``) is the
    task's current state, so a client never misses what happened before it connected.

    Resuming (``Last-Event-ID`` header or ``last_event_id``): no snapshot, the missed events
    instead. If the store no longer keeps them, a ``lagged`` frame says events were lost,
    followed (with ``task_id``) by a fresh snapshot; the same happens when a slow client
    falls too far behind. While the task is queued, a fresh snapshot also follows each
    change of its place in line (at most one a second)."""
    # A user key hears its own tasks' events only (another user's task or batch: 404).
    user, any_match = listed_user(caller, user)
    if not any_match:
        user = f"{caller.user}\x00{user}"  # no event has this user: a quiet stream
    where = EventFilter(task_id=task_id, batch_id=batch_id, user=user)
    after = last_event_id_header or last_event_id or None
    # 404 or 503 before streaming, not a stream that dies at once.
    place = _Place(queued=False)
    if batch_id and not caller.sees_all:
        await owned_batch(runtime.store, caller, batch_id)
    if task_id:
        task = await owned_task(runtime, caller, task_id)
        place = _Place(queued=task.status == TaskStatus.QUEUED)
    elif after:
        await runtime.store.ping()

    async def stream() -> AsyncIterator[str]:
        sent = _HighWater(after)
        loop = asyncio.get_running_loop()
        try:
            async with runtime.hub.subscribe(where, after=after) as sub:
                yield f"retry: {RETRY_MS}\n\n"
                if sub.lagged:  # ``after`` is unknown here: frame ids start afresh
                    sent = _HighWater(None)
                if task_id and not after:
                    snapshot = await _snapshot(runtime, task_id)
                    place.saw(snapshot)
                    yield snapshot_frame(snapshot)
                while not await request.is_disconnected():
                    # Other tasks' events only while the task is queued: they are many.
                    sub.where = dataclasses.replace(where, line=place.queued)
                    event = await sub.next(place.wait_s(loop.time()))
                    if event is not None and task_id and event.task_id != task_id:
                        place.moved(loop.time())
                    elif event is not None:
                        yield event_frame(event, sent.see(event.id))
                        place.queued = bool(task_id) and event.status == TaskStatus.QUEUED
                    elif sub.lagged:
                        sub.lagged = False
                        yield sse("lagged", json.dumps({"message": "events were dropped"}))
                        if task_id:
                            snapshot = await _snapshot(runtime, task_id)
                            place.saw(snapshot)
                            yield snapshot_frame(snapshot)
                    elif place.due is None:
                        yield ": keep-alive\n\n"
                    if task_id and place.take_due(loop.time()):
                        snapshot = await _snapshot(runtime, task_id)
                        if snapshot.position != place.position:
                            yield snapshot_frame(snapshot)
                        place.saw(snapshot)
        except BackendUnavailableError as exc:
            # End the stream; the client reconnects with its last id and misses nothing.
            yield f": {' '.join(str(exc).split())}\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
