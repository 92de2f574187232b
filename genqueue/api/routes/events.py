"""/v1/events: Server-Sent Events of task changes, filtered by task, batch or user.

A client that lost its stream reconnects with ``Last-Event-ID`` (browsers' EventSource does
so by itself; ``last_event_id`` in the query works too) and gets every event it missed, then
live ones, each once. Each frame's ``id:`` is the highest event id sent so far on the stream
rather than the event's own: on PostgreSQL an event can commit below an id already sent, and
resuming must start above both.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from genqueue.api.deps import RuntimeDep
from genqueue.api.routes.tasks import public
from genqueue.api.runtime import Runtime
from genqueue.errors import BackendUnavailableError
from genqueue.events import EventFilter, event_order
from genqueue.models import Event

router = APIRouter(prefix="/v1", tags=["events"])

KEEPALIVE_S = 15.0
RETRY_MS = 2000  # what EventSource waits before reconnecting


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


async def _snapshot(runtime: Runtime, task_id: str) -> str:
    task = await runtime.store.get(task_id)
    return sse("snapshot", (await public(runtime, task)).model_dump_json())


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    request: Request,
    runtime: RuntimeDep,
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
    falls too far behind."""
    where = EventFilter(task_id=task_id, batch_id=batch_id, user=user)
    after = last_event_id_header or last_event_id or None
    # 404 or 503 before streaming, not a stream that dies at once.
    if task_id:
        await runtime.store.get(task_id)
    elif after:
        await runtime.store.ping()

    async def stream() -> AsyncIterator[str]:
        sent = _HighWater(after)
        try:
            async with runtime.hub.subscribe(where, after=after) as sub:
                yield f"retry: {RETRY_MS}\n\n"
                if sub.lagged:  # ``after`` is unknown here: frame ids start afresh
                    sent = _HighWater(None)
                if task_id and not after:
                    yield await _snapshot(runtime, task_id)
                while not await request.is_disconnected():
                    event = await sub.next(KEEPALIVE_S)
                    if event is not None:
                        yield event_frame(event, sent.see(event.id))
                    elif sub.lagged:
                        sub.lagged = False
                        yield sse("lagged", json.dumps({"message": "events were dropped"}))
                        if task_id:
                            yield await _snapshot(runtime, task_id)
                    else:
                        yield ": keep-alive\n\n"
        except BackendUnavailableError as exc:
            # End the stream; the client reconnects with its last id and misses nothing.
            yield f": {' '.join(str(exc).split())}\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
