"""Seed 003 (AIGC video, Redis Streams + AIMD): ``/aigc/create``, ``/aigc/status/{task_id}`` and
``/aigc/queue/info`` over the core.

A seed task is a ``video.generate`` task with ``provider="cloud"`` (Tencent Cloud VOD AIGC):
``model_name``, ``model_version`` and ``resolution`` pass through ("768P" is accepted as VOD
spells it), ``duration`` is ``duration_s``; fields left out take the ``GENQUEUE_VIDEO__*``
defaults. Its dynamic concurrency is the shared AIMD limiter of the kind's resource
(``video-cloud``), whose rule the seed's own variables already set (``DEFAULT_THRESHOLD``...,
``genqueue.settings.SeedLimitEnv``). Status words:

    queued -> queued    running -> processing    succeeded -> completed
    failed, cancelled, expired -> failed (the reason in ``error``)

A limit error does not fail a task here (the seed's did): it waits, queued, and runs later.
``position`` is the place in line (1 = next), 0 once it is not waiting in line (processing,
ended, or sitting out a retry delay). See ``docs/migrating/003-aigc-video.md``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from genqueue.api.deps import RuntimeDep
from genqueue.api.runtime import Runtime
from genqueue.dispatch import TaskRequest
from genqueue.errors import FieldProblem, InvalidInputError, TaskNotFoundError
from genqueue.models import Task, TaskStatus

router = APIRouter(tags=["AIGC video (seed 003)"])

KIND = "video.generate"
Word = Literal["queued", "processing", "completed", "failed"]
WORDS: dict[TaskStatus, Word] = {
    TaskStatus.QUEUED: "queued",
    TaskStatus.RUNNING: "processing",
    TaskStatus.SUCCEEDED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "failed",
    TaskStatus.EXPIRED: "failed",
}
# The core's payload fields -> the seed's names, for error messages.
SEED_FIELDS = {"duration_s": "duration"}


class AigcCreate(BaseModel):
    """The seed's body. Unknown fields are ignored, as the seed's pydantic model did."""

    prompt: str = Field(examples=["一个小男孩在街上跑步"])
    model_name: str | None = Field(None, examples=["Hailuo"])
    model_version: str | None = Field(None, examples=["2.3"])
    duration: float | None = Field(None, description="seconds: 5, 6, 8 or 10", examples=[6])
    resolution: str | None = Field(None, description="720P, 768P or 1080P", examples=["768P"])


class AigcCreated(BaseModel):
    task_id: str
    position: int
    status: Word


class AigcStatus(BaseModel):
    task_id: str
    status: Word
    position: int
    result: dict[str, Any] | None = Field(
        None, description="when completed: video_url (absolute), duration_s, width, height, ..."
    )
    error: str | None = Field(None, description="why it failed (not in the seed's shape)")


class QueueInfo(BaseModel):
    queue_length: int = Field(description="tasks waiting in the video queue")
    active_count: int = Field(description="upstream calls holding a permit now")
    max_concurrency: int = Field(description="the limiter's permits now (AIMD)")


def payload(body: AigcCreate) -> dict[str, Any]:
    fields = {
        "prompt": body.prompt,
        "provider": "cloud",
        "model_name": body.model_name,
        "model_version": body.model_version,
        "duration_s": body.duration,
        "resolution": body.resolution,
    }
    return {name: value for name, value in fields.items() if value is not None}


def seed_field(field: str) -> str:
    """``payload.duration_s`` (the core's name) -> ``duration`` (the seed's)."""
    name = field.removeprefix("payload.")
    return SEED_FIELDS.get(name, name)


async def position(runtime: Runtime, task: Task) -> int:
    if task.status != TaskStatus.QUEUED:
        return 0
    return await runtime.store.position(task.id) or 0


def result(request: Request, task: Task) -> dict[str, Any] | None:
    if task.status != TaskStatus.SUCCEEDED or task.result is None:
        return None
    url = task.result.get("video_url")
    if isinstance(url, str) and url.startswith("/"):
        return task.result | {"video_url": str(request.base_url).rstrip("/") + url}
    return task.result


def error(task: Task) -> str | None:
    if task.status == TaskStatus.CANCELLED:
        return task.error or "cancelled"
    if task.status == TaskStatus.EXPIRED:
        return task.error or "expired: not started in time"
    return task.error if task.status == TaskStatus.FAILED else None


@router.post("/aigc/create", response_model=AigcCreated)
async def create(body: AigcCreate, runtime: RuntimeDep) -> AigcCreated:
    """Queue a text-to-video task on Tencent Cloud VOD AIGC; answers its place in line."""
    try:
        task, _ = await runtime.dispatcher.submit(TaskRequest(kind=KIND, payload=payload(body)))
    except InvalidInputError as exc:
        problems = [FieldProblem(seed_field(p.field), p.message) for p in exc.problems]
        raise InvalidInputError(problems) from None
    return AigcCreated(
        task_id=task.id, position=await position(runtime, task), status=WORDS[task.status]
    )


@router.get("/aigc/status/{task_id}", response_model=AigcStatus)
async def status(task_id: str, runtime: RuntimeDep, request: Request) -> AigcStatus:
    """Status, place in line, and the video once completed; 404 for an unknown id (or a task
    that is not a video)."""
    task = await runtime.store.get(task_id)
    if task.kind != KIND:
        raise TaskNotFoundError(f"no video task {task_id!r}")
    return AigcStatus(
        task_id=task.id,
        status=WORDS[task.status],
        position=await position(runtime, task),
        result=result(request, task),
        error=error(task),
    )


@router.get("/aigc/queue/info", response_model=QueueInfo)
async def queue_info(runtime: RuntimeDep) -> QueueInfo:
    """The video queue's length and the shared limiter of the cloud provider: calls in flight
    and the limit now. Before any worker configured the limiter, the configured start."""
    kind = runtime.kinds.get(KIND)
    resource = kind.resource or ""
    stats = {s.queue: s for s in await runtime.store.queue_stats()}
    queued = stats[kind.queue].counts.get(TaskStatus.QUEUED, 0) if kind.queue in stats else 0
    limiter = next((s for s in await runtime.store.limits() if s.resource == resource), None)
    if limiter is None:
        start = int(runtime.settings.limit_for(resource).initial_limit)
        return QueueInfo(queue_length=queued, active_count=0, max_concurrency=start)
    return QueueInfo(
        queue_length=queued, active_count=limiter.in_flight, max_concurrency=limiter.permits
    )
