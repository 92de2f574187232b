"""Seed 001 (batch image backend, FastAPI + Redis + RQ): its five endpoints over the core.

A "queue" of that system is one user's batch of image generations, so a queue is a genqueue
batch of ``image.generate`` tasks (``Dispatcher.submit_batch``, ``Store.get_batch``,
``Dispatcher.cancel_batch``) and ``queue_id`` is the batch id. Users are the ``user_id`` field
(body or query), stored as the tasks' and the batch's ``user``. The seed's 24 h clean-up of
queue data is genqueue's retention (``GENQUEUE_RETENTION``, default 24 h): a queue or a
generation older than that is gone from every read here (404 or left out), even before the
sweeper purges it. Status words, per generation and per queue:

    queued -> pending    running -> processing    succeeded -> completed
    failed, expired -> failed                      cancelled -> cancelled

A queue is ``pending`` until one of its generations starts or ends, ``processing`` until all
have ended, then ``cancelled`` if any was cancelled, else ``completed`` if any succeeded,
else ``failed``. See ``docs/migrating/001-batch-image.md``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from genqueue.api.deps import RuntimeDep
from genqueue.api.runtime import Runtime
from genqueue.api.schemas import NAME
from genqueue.dispatch import TaskRequest
from genqueue.errors import FieldProblem, InvalidInputError, TaskNotFoundError
from genqueue.models import Batch, Task, TaskFilter, TaskStatus, utcnow

router = APIRouter(tags=["Batch image backend (seed 001)"])

KIND = "image.generate"
PAGE = 500  # tasks read per store call when a read has to see them all

Word = Literal["pending", "processing", "completed", "failed", "cancelled"]
WORDS: dict[TaskStatus, Word] = {
    TaskStatus.QUEUED: "pending",
    TaskStatus.RUNNING: "processing",
    TaskStatus.SUCCEEDED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.EXPIRED: "failed",
    TaskStatus.CANCELLED: "cancelled",
}
SETTINGS = ("width", "height", "style", "seed", "steps")  # image.generate fields a body may set
UserId = Annotated[str, Field(pattern=NAME, examples=["user-42"])]
UserQuery = Annotated[str, Query(pattern=NAME, description="the user, as given at create-queue")]
OptionalUser = Annotated[
    str | None, Query(pattern=NAME, description="if given, 404 for another user's queue")
]


class ImageItem(BaseModel):
    """One generation of a queue; unset fields take the queue's defaults, then the kind's."""

    prompt: str = Field(examples=["a red fox in the snow"])
    width: int | None = None
    height: int | None = None
    style: str | None = Field(None, examples=["artistic"])
    seed: int | None = None
    steps: int | None = None


class QueueCreate(BaseModel):
    """``POST /create-queue``: ``prompts`` (plain strings) or ``items`` (one object each),
    exactly one of them; the other fields are defaults for every item. Unknown fields are
    ignored, so a client sending more than this keeps working."""

    model_config = ConfigDict(extra="ignore")

    user_id: UserId
    prompts: list[str] | None = Field(None, min_length=1)
    items: list[ImageItem] | None = Field(None, min_length=1)
    width: int | None = Field(None, examples=[512])
    height: int | None = Field(None, examples=[512])
    style: str | None = None
    seed: int | None = None
    steps: int | None = None
    priority: int = Field(0, ge=-1000, le=1000)


class QueueItem(BaseModel):
    """One generation as the seed's clients read it."""

    task_id: str
    queue_id: str | None
    prompt: str
    width: int
    height: int
    style: str
    status: Word
    position: int | None = Field(None, description="1 = next to start; null unless pending")
    progress: float = Field(description="0..1")
    image_url: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


class QueueSummary(BaseModel):
    queue_id: str
    user_id: str | None
    status: Word
    total: int
    pending: int
    processing: int
    completed: int
    failed: int
    cancelled: int
    progress: float = Field(description="share of the generations that ended, 0..1")
    created_at: datetime
    expires_at: datetime


class QueueDetail(QueueSummary):
    items: list[QueueItem] = Field(description="in the order they were submitted")


class ActiveQueues(BaseModel):
    user_id: str
    queues: list[QueueSummary]


class History(BaseModel):
    user_id: str
    items: list[QueueItem] = Field(description="newest first")
    next_cursor: str | None = Field(None, description="pass as cursor for the next page")


def expires_at(runtime: Runtime, created_at: datetime) -> datetime:
    return created_at + timedelta(seconds=runtime.settings.retention)


def expired(runtime: Runtime, created_at: datetime) -> bool:
    return expires_at(runtime, created_at) <= utcnow()


def summary(runtime: Runtime, batch: Batch) -> QueueSummary:
    counts = {word: 0 for word in WORDS.values()}
    for status, n in batch.counts.items():
        counts[WORDS[status]] += n
    ended = counts["completed"] + counts["failed"] + counts["cancelled"]
    word: Word
    if ended < batch.size:
        word = "pending" if counts["pending"] == batch.size else "processing"
    elif counts["cancelled"]:
        word = "cancelled"
    else:
        word = "completed" if counts["completed"] else "failed"
    return QueueSummary(
        queue_id=batch.id,
        user_id=batch.user,
        status=word,
        total=batch.size,
        progress=round(ended / batch.size, 4) if batch.size else 1.0,
        created_at=batch.created_at,
        expires_at=expires_at(runtime, batch.created_at),
        **counts,
    )


async def item(runtime: Runtime, request: Request, task: Task) -> QueueItem:
    result = task.result or {}
    url = result.get("image_url")
    queued = task.status == TaskStatus.QUEUED
    return QueueItem(
        task_id=task.id,
        queue_id=task.batch_id,
        prompt=task.payload["prompt"],
        width=task.payload["width"],
        height=task.payload["height"],
        style=task.payload["style"],
        status=WORDS[task.status],
        position=await runtime.store.position(task.id) if queued else None,
        progress=1.0 if task.status == TaskStatus.SUCCEEDED else task.progress.fraction,
        image_url=str(request.base_url).rstrip("/") + url if isinstance(url, str) else None,
        error=task.error,
        created_at=task.created_at,
        started_at=task.started_at,
        completed_at=task.finished_at,
    )


async def all_tasks(runtime: Runtime, where: TaskFilter) -> list[Task]:
    """Every task matching ``where``, newest first."""
    tasks: list[Task] = []
    cursor: str | None = None
    while True:
        page = await runtime.store.list_tasks(where, PAGE, cursor)
        tasks += page.tasks
        cursor = page.next_cursor
        if cursor is None:
            return tasks


async def own_batch(runtime: Runtime, queue_id: str, user_id: str | None) -> Batch:
    """The queue, or 404 when unknown, past retention, or another user's."""
    batch = await runtime.store.get_batch(queue_id)
    if expired(runtime, batch.created_at) or (user_id is not None and batch.user != user_id):
        raise TaskNotFoundError(f"no queue {queue_id!r}")
    return batch


async def detail(runtime: Runtime, request: Request, batch: Batch) -> QueueDetail:
    # Newest first from the store; created in one step, so reversed is the submitted order.
    tasks = reversed(await all_tasks(runtime, TaskFilter(batch_id=batch.id)))
    items = [await item(runtime, request, task) for task in tasks]
    return QueueDetail(**summary(runtime, batch).model_dump(), items=items)


def requests(body: QueueCreate) -> list[TaskRequest]:
    """One ``image.generate`` request per item: the item's fields over the queue's."""
    if (body.prompts is None) == (body.items is None):
        message = "give exactly one of prompts, items"
        raise InvalidInputError([FieldProblem("prompts", message), FieldProblem("items", message)])
    shared = {name: getattr(body, name) for name in SETTINGS if getattr(body, name) is not None}
    items = body.items or [ImageItem(prompt=prompt) for prompt in body.prompts or []]
    payloads = [shared | item.model_dump(exclude_none=True) for item in items]
    return [
        TaskRequest(kind=KIND, payload=payload, user=body.user_id, priority=body.priority)
        for payload in payloads
    ]


def seed_field(body: QueueCreate, field: str) -> str:
    """``tasks.3.payload.width`` (the core's name) as this body names it: ``items.3.width`` if
    the item set it, ``width`` if it came from the queue's defaults, ``prompts.3``."""
    parts = field.split(".")
    if len(parts) < 4 or parts[0] != "tasks" or parts[2] != "payload":
        return field
    index, name = int(parts[1]), parts[3]
    if body.items is not None:
        own = getattr(body.items[index], name, None) is not None or name == "prompt"
        return ".".join(["items", str(index), *parts[3:]]) if own else name
    return f"prompts.{index}" if name == "prompt" else name


@router.post("/create-queue", response_model=QueueDetail)
async def create_queue(body: QueueCreate, runtime: RuntimeDep, request: Request) -> QueueDetail:
    """Queue a batch of image generations for one user, all or none: a bad item refuses the
    whole queue, naming the item."""
    limit = runtime.settings.max_batch
    wanted = requests(body)
    if len(wanted) > limit:
        field = "items" if body.items is not None else "prompts"
        raise InvalidInputError([FieldProblem(field, f"at most {limit} per queue")])
    try:
        batch, _ = await runtime.dispatcher.submit_batch(wanted, body.user_id)
    except InvalidInputError as exc:
        named: dict[str, str] = {}
        for p in exc.problems:
            named.setdefault(seed_field(body, p.field), p.message)
        raise InvalidInputError([FieldProblem(f, m) for f, m in named.items()]) from None
    return await detail(runtime, request, batch)


@router.get("/queue-status/{queue_id}", response_model=QueueDetail)
async def queue_status(
    queue_id: str, runtime: RuntimeDep, request: Request, user_id: OptionalUser = None
) -> QueueDetail:
    """The queue's counts per status and each generation with its place in line and image."""
    return await detail(runtime, request, await own_batch(runtime, queue_id, user_id))


@router.post("/cancel-queue/{queue_id}", response_model=QueueDetail)
async def cancel_queue(
    queue_id: str, runtime: RuntimeDep, request: Request, user_id: OptionalUser = None
) -> QueueDetail:
    """Cancel what has not ended: pending generations never start, running ones are stopped
    (they read ``processing`` until their worker has). Idempotent."""
    await own_batch(runtime, queue_id, user_id)
    return await detail(runtime, request, await runtime.dispatcher.cancel_batch(queue_id))


@router.get("/active-queues", response_model=ActiveQueues)
async def active_queues(user_id: UserQuery, runtime: RuntimeDep) -> ActiveQueues:
    """The user's queues that have generations still pending or processing, newest first."""
    ids: dict[str, None] = {}  # insertion-ordered set
    for status in (TaskStatus.QUEUED, TaskStatus.RUNNING):
        where = TaskFilter(user=user_id, status=status, kind=KIND)
        ids |= {t.batch_id: None for t in await all_tasks(runtime, where) if t.batch_id}
    batches: list[Batch] = []
    for batch_id in ids:
        try:
            batches.append(await runtime.store.get_batch(batch_id))
        except TaskNotFoundError:
            continue  # purged between the two reads
    live = [b for b in batches if not b.finished and not expired(runtime, b.created_at)]
    live.sort(key=lambda b: b.created_at, reverse=True)
    return ActiveQueues(user_id=user_id, queues=[summary(runtime, b) for b in live])


@router.get("/history", response_model=History)
async def history(
    user_id: UserQuery,
    runtime: RuntimeDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=PAGE)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^\d+$")] = None,
) -> History:
    """The user's image generations of the retention period (24 h by default), newest first,
    whatever their status, queued through a queue or on their own."""
    where = TaskFilter(user=user_id, kind=KIND)
    page = await runtime.store.list_tasks(where, limit, cursor)
    fresh = [t for t in page.tasks if not expired(runtime, t.created_at)]
    # Newest first: once one is past retention, so is every later page.
    next_cursor = page.next_cursor if len(fresh) == len(page.tasks) else None
    items = [await item(runtime, request, t) for t in fresh]
    return History(user_id=user_id, items=items, next_cursor=next_cursor)
