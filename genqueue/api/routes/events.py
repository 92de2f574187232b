"""/v1/events: Server-Sent Events of task changes, filtered by task, batch or user."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from genqueue.api.deps import RuntimeDep
from genqueue.api.routes.tasks import public
from genqueue.events import EventFilter
from genqueue.models import Event

router = APIRouter(prefix="/v1", tags=["events"])

KEEPALIVE_S = 15.0


def sse(event: str, data: str, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


def event_frame(event: Event) -> str:
    return sse(event.type, event.model_dump_json(), event.id)


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
) -> StreamingResponse:
    """Stream task events as SSE. With ``task_id``, the first frame (``snapshot``) is the
    task's current state, so a client never misses what happened before it connected."""
    where = EventFilter(task_id=task_id, batch_id=batch_id, user=user)
    snapshot = await runtime.store.get(task_id) if task_id else None  # 404 before streaming

    async def stream() -> AsyncIterator[str]:
        async with runtime.hub.subscribe(where) as sub:
            yield "retry: 2000\n\n"
            if snapshot is not None:
                task = await runtime.store.get(snapshot.id)
                yield sse("snapshot", (await public(runtime.store, task)).model_dump_json())
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if sub.lagged:
                    sub.lagged = False
                    yield sse("lagged", json.dumps({"message": "events were dropped"}))
                yield event_frame(event)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
