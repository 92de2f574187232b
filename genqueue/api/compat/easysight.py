"""Seed 004, EasySight camera diagnosis: its ``/api/v1/rabbitmq/status``,
``/api/v1/diagnosis/...`` endpoints over ``image.diagnose``, and its ``task_results`` and
``worker_heartbeats`` queues fed by a relay. ``docs/migrating/004-easysight.md`` maps every
name.

Tasks: ``POST /api/v1/diagnosis/tasks`` defines a diagnosis under the seed's task id (the
caller's own, e.g. its database id, or one made here) and, unless ``auto_submit`` is false,
queues it at once, as the seed's flow does. ``POST .../{task_id}/submit`` queues a defined
task: the genqueue task is submitted with the idempotency key ``easysight:<task_id>``, so
submitting twice (or after ``auto_submit``) runs it once. The definition and the genqueue id
are kept as ``task.json`` in the artifact store (folder ``easysight-<task_id>``), shared by
every API machine and removed with the retention period like any artifact.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from genqueue.api.compat._relay import Outbound, Relay, finished_task, rabbitmq_url
from genqueue.api.deps import RuntimeDep
from genqueue.api.routes.tasks import public
from genqueue.api.runtime import Runtime
from genqueue.backends.amqp.layout import split_url
from genqueue.dispatch import TaskRequest
from genqueue.errors import IdempotencyConflictError, TaskNotFoundError
from genqueue.handlers.diagnose.models import DiagnosePayload
from genqueue.models import Event, Task, TaskStatus, WorkerInfo, WorkerStatus, utcnow

KIND = "image.diagnose"
QUEUE = "diagnosis"  # the kind's genqueue queue; the seed's diagnosis_tasks
SEED_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
RECORD = "task.json"
# genqueue status -> the seed's word (and "pending": defined, not submitted yet)
STATUS_WORDS = {TaskStatus.SUCCEEDED: "completed"}


class EasySightEnv(BaseSettings):
    """This adapter's variables (unprefixed): the RabbitMQ queues the relay feeds."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    task_results_queue: str = "task_results"  # empty: no result messages
    worker_heartbeats_queue: str = "worker_heartbeats"  # empty: no heartbeat messages


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Read the variables and start the relay (when the broker is RabbitMQ)."""
    runtime: Runtime = app.state.runtime
    env = EasySightEnv()
    url = rabbitmq_url(runtime.settings)
    queues = [q for q in (env.task_results_queue, env.worker_heartbeats_queue) if q]
    relay = None
    if url and queues:
        feed = _Feed(runtime, env)
        cadence_s = max(1.0, runtime.settings.heartbeat_s)
        relay = Relay(
            runtime, url, f"{queues[0]}.relay", queues, feed.results, feed.beats, cadence_s
        )
        await relay.start()
    app.state.easysight = (env, relay)
    try:
        yield
    finally:
        if relay is not None:
            await relay.aclose()


router = APIRouter(tags=["EasySight camera diagnosis (seed 004)"], lifespan=lifespan)


# -- the seed's shapes -----------------------------------------------------------------------


def seed_status(task: Task | None) -> str:
    if task is None:
        return "pending"
    return STATUS_WORDS.get(task.status, task.status.value)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def worker_view(w: WorkerInfo) -> dict[str, Any]:
    """A worker as the seed's registry showed it: its id (``--name``), online or offline,
    its last heartbeat and its load."""
    alive = w.status in (WorkerStatus.ONLINE, WorkerStatus.DEGRADED)
    return {
        "worker_id": w.name,
        "genqueue_worker_id": w.id,
        "status": "online" if alive else "offline",
        "state": w.status.value,
        "reason": w.reason,
        "last_heartbeat": _iso(w.last_seen),
        "started_at": _iso(w.started_at),
        "current_tasks": len(w.running),
        "max_concurrent_tasks": w.concurrency,
        "completed_tasks": w.succeeded,
        "failed_tasks": w.failed,
        "hostname": w.host,
        "queues": w.queues,
    }


def result_message(task: Task, worker_name: str | None) -> dict[str, Any]:
    """A finished diagnosis as published to ``task_results``."""
    key = task.idempotency_key or ""
    seed_id = key.removeprefix("easysight:") if key.startswith("easysight:") else task.id
    duration = (
        (task.finished_at - task.started_at).total_seconds()
        if task.finished_at and task.started_at
        else None
    )
    return {
        "task_id": seed_id,
        "genqueue_task_id": task.id,
        "task_type": "diagnosis",
        "status": seed_status(task),
        "success": task.status == TaskStatus.SUCCEEDED,
        "worker_id": worker_name,
        "camera_id": task.payload.get("camera_id"),
        "result": task.result,
        "error": task.error,
        "started_at": _iso(task.started_at),
        "completed_at": _iso(task.finished_at),
        "duration": duration,
        "timestamp": _iso(utcnow()),
    }


class _Feed:
    """What the relay publishes: results of finished diagnoses, and worker heartbeats."""

    def __init__(self, runtime: Runtime, env: EasySightEnv) -> None:
        self.runtime = runtime
        self.env = env
        self.names: dict[str, str] = {}  # genqueue worker id -> name
        self.beaten: dict[str, tuple[datetime, WorkerStatus]] = {}

    async def results(self, event: Event) -> list[Outbound]:
        if not self.env.task_results_queue:
            return []
        task = await finished_task(self.runtime, event, KIND)
        if task is None:
            return []
        if task.worker_id and task.worker_id not in self.names:
            self.names.update({w.id: w.name for w in await self.runtime.store.list_workers()})
        name = self.names.get(task.worker_id or "", task.worker_id)
        return [Outbound(self.env.task_results_queue, result_message(task, name))]

    async def beats(self) -> list[Outbound]:
        """A heartbeat message for every diagnosis worker whose registry entry changed since
        the last (a live worker's, every heartbeat; a worker that went offline, once)."""
        if not self.env.worker_heartbeats_queue:
            return []
        ttl_s = max(60.0, 10 * self.runtime.settings.heartbeat_s)
        out = []
        for w in await self.runtime.store.list_workers():
            self.names[w.id] = w.name
            if QUEUE not in w.queues or self.beaten.get(w.id) == (w.last_seen, w.status):
                continue
            self.beaten[w.id] = (w.last_seen, w.status)
            body = {**worker_view(w), "timestamp": _iso(w.last_seen)}
            out.append(Outbound(self.env.worker_heartbeats_queue, body, ttl_s))
        return out


# -- status endpoints ------------------------------------------------------------------------


def _rabbitmq_names(runtime: Runtime) -> dict[str, str]:
    """genqueue queue -> the RabbitMQ queue it lives in (itself on other brokers)."""
    settings = runtime.settings
    names = sorted(runtime.kinds.queues())
    if not settings.broker.startswith(("amqp://", "amqps://")):
        return {q: q for q in names}
    prefix = split_url(settings.broker)[1]
    return {q: settings.amqp.queue_names.get(q) or f"{prefix}.{q}" for q in names}


@router.get("/api/v1/rabbitmq/status", responses={503: {"description": "broker unreachable"}})
async def rabbitmq_status(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """RabbitMQ connection state and, per queue (by its RabbitMQ name), messages waiting and
    consumers: the task queues, and ``task_results`` / ``worker_heartbeats`` of the relay."""
    env, relay = request.app.state.easysight
    names = _rabbitmq_names(runtime)
    status = await runtime.broker.status(list(names))
    queues: dict[str, dict[str, Any]] = {
        names[q.queue]: {
            "genqueue_queue": q.queue,
            "message_count": q.ready,
            "unacked_count": q.unacked,
            "consumer_count": q.consumers,
        }
        for q in status.queues
    }
    if relay is not None:
        outputs = [q for q in (env.task_results_queue, env.worker_heartbeats_queue) if q]
        for name, (ready, consumers) in (await relay.inspect(outputs)).items():
            queues[name] = {
                "genqueue_queue": None,
                "message_count": ready,
                "unacked_count": None,
                "consumer_count": consumers,
            }
    body = {
        "connected": status.connected,
        "status": "connected" if status.connected else "disconnected",
        "backend": status.backend,
        "detail": status.detail,
        "relay": "publishing" if relay and relay.active else ("standby" if relay else "off"),
        "queues": queues,
    }
    return JSONResponse(body, status_code=200 if status.connected else 503)


@router.get("/api/v1/diagnosis/queue/status")
async def queue_status(runtime: RuntimeDep) -> dict[str, Any]:
    """The diagnosis queue: tasks per status, messages waiting, consumers, workers online."""
    stats = {s.queue: s.counts for s in await runtime.store.queue_stats()}.get(QUEUE, {})
    broker = await runtime.broker.status([QUEUE])
    found = next((q for q in broker.queues if q.queue == QUEUE), None)
    workers = [w for w in await runtime.store.list_workers() if QUEUE in w.queues]
    return {
        "queue_name": _rabbitmq_names(runtime).get(QUEUE, QUEUE),
        "genqueue_queue": QUEUE,
        "connected": broker.connected,
        "pending_tasks": stats.get(TaskStatus.QUEUED, 0),
        "running_tasks": stats.get(TaskStatus.RUNNING, 0),
        "completed_tasks": stats.get(TaskStatus.SUCCEEDED, 0),
        "failed_tasks": stats.get(TaskStatus.FAILED, 0),
        "cancelled_tasks": stats.get(TaskStatus.CANCELLED, 0),
        "expired_tasks": stats.get(TaskStatus.EXPIRED, 0),
        "message_count": found.ready if found else None,
        "consumer_count": found.consumers if found else None,
        "online_workers": sum(1 for w in workers if worker_view(w)["status"] == "online"),
    }


@router.get("/api/v1/diagnosis/workers")
async def workers(runtime: RuntimeDep) -> dict[str, Any]:
    """Workers serving diagnoses: id, online/offline, last heartbeat, current load."""
    views = [worker_view(w) for w in await runtime.store.list_workers() if QUEUE in w.queues]
    online = sum(1 for v in views if v["status"] == "online")
    return {"total": len(views), "online": online, "offline": len(views) - online, "workers": views}


# -- tasks -----------------------------------------------------------------------------------


def _as_text(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class DiagnosisTaskCreate(DiagnosePayload):
    """A diagnosis of one camera frame (the fields of ``image.diagnose``), under the caller's
    task id if it has one."""

    task_id: Annotated[str | None, BeforeValidator(_as_text)] = Field(
        None, pattern=SEED_ID, description="yours (e.g. your database id); default: made here"
    )
    auto_submit: bool = Field(True, description="queue it now (false: on .../submit)")
    user: str | None = Field(None, max_length=200)
    priority: int = 0


class DiagnosisTaskPublic(BaseModel):
    task_id: str
    status: str = Field(description="pending, queued, running, completed, failed, cancelled")
    genqueue_task_id: str | None
    camera_id: str | None
    queue_position: int | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None


class SubmitAnswer(BaseModel):
    success: bool
    message: str
    submitted: bool = Field(description="false: it was already on the queue (runs once)")
    task: DiagnosisTaskPublic


def _folder(task_id: str) -> str:
    return f"easysight-{task_id}"


async def _read(runtime: Runtime, task_id: str) -> dict[str, Any] | None:
    try:
        data = await asyncio.to_thread(runtime.artifacts.read, _folder(task_id), RECORD)
    except TaskNotFoundError:
        return None
    record: dict[str, Any] = json.loads(data)
    return record


async def _write(runtime: Runtime, record: dict[str, Any]) -> None:
    data = json.dumps(record).encode()
    await asyncio.to_thread(runtime.artifacts.save, _folder(record["task_id"]), RECORD, data)


async def _view(runtime: Runtime, record: dict[str, Any]) -> DiagnosisTaskPublic:
    task = None
    if record.get("genqueue_task_id"):
        task = await runtime.store.get(record["genqueue_task_id"])
    shown = await public(runtime, task) if task else None
    return DiagnosisTaskPublic(
        task_id=record["task_id"],
        status=seed_status(task),
        genqueue_task_id=task.id if task else None,
        camera_id=record["payload"].get("camera_id"),
        queue_position=shown.position if shown else None,
        result=task.result if task else None,
        error=task.error if task else None,
        created_at=record["created_at"],
        started_at=_iso(task.started_at) if task else None,
        completed_at=_iso(task.finished_at) if task else None,
    )


async def _submit(runtime: Runtime, record: dict[str, Any]) -> tuple[Task, bool]:
    request = TaskRequest(
        kind=KIND,
        payload=record["payload"],
        user=record["user"],
        priority=record["priority"],
        idempotency_key=f"easysight:{record['task_id']}",
    )
    task, created = await runtime.dispatcher.submit(request)
    if record.get("genqueue_task_id") != task.id:
        await _write(runtime, {**record, "genqueue_task_id": task.id})
    return task, created


@router.post(
    "/api/v1/diagnosis/tasks",
    status_code=201,
    response_model=DiagnosisTaskPublic,
    responses={200: {"description": "this task id was defined already, the same way"}},
)
async def create_task(
    body: DiagnosisTaskCreate, runtime: RuntimeDep, response: Response
) -> DiagnosisTaskPublic:
    """Define a diagnosis task from a camera frame and (``auto_submit``) queue it now."""
    payload = body.model_dump(
        mode="json", exclude_none=True, exclude={"task_id", "auto_submit", "user", "priority"}
    )
    # Checked now (a 4xx names the field), even when it is queued only on submit.
    runtime.dispatcher.prepare(TaskRequest(kind=KIND, payload=payload, priority=body.priority))
    task_id = body.task_id or f"diag-{uuid.uuid4().hex[:16]}"
    record = {
        "task_id": task_id,
        "payload": payload,
        "user": body.user,
        "priority": body.priority,
        "created_at": _iso(utcnow()),
        "genqueue_task_id": None,
    }
    existing = await _read(runtime, task_id)
    if existing is not None:
        same = ("payload", "user", "priority")
        if any(existing[k] != record[k] for k in same):
            raise IdempotencyConflictError(f"task {task_id!r} exists with another definition")
        record = existing
        response.status_code = 200
    else:
        await _write(runtime, record)
    if body.auto_submit:
        task, _ = await _submit(runtime, record)
        record = {**record, "genqueue_task_id": task.id}
    return await _view(runtime, record)


@router.post("/api/v1/diagnosis/tasks/{task_id}/submit", response_model=SubmitAnswer)
async def submit_task(runtime: RuntimeDep, task_id: str = Path(pattern=SEED_ID)) -> SubmitAnswer:
    """Put a defined task on the diagnosis queue now; a task already there is left as it is
    (it runs once)."""
    record = await _read(runtime, task_id)
    if record is None:
        raise TaskNotFoundError(
            f"no diagnosis task {task_id!r}: define it first with POST /api/v1/diagnosis/tasks"
        )
    task, created = await _submit(runtime, record)
    view = await _view(runtime, {**record, "genqueue_task_id": task.id})
    message = "任务已提交到队列" if created else f"already submitted: {view.status}"
    return SubmitAnswer(success=True, message=message, submitted=created, task=view)


@router.get("/api/v1/diagnosis/tasks/{task_id}", response_model=DiagnosisTaskPublic)
async def get_task(
    runtime: RuntimeDep, task_id: str = Path(pattern=SEED_ID)
) -> DiagnosisTaskPublic:
    """A diagnosis task: its status in the seed's words, place in line, result or error."""
    record = await _read(runtime, task_id)
    if record is None:
        raise TaskNotFoundError(f"no diagnosis task {task_id!r}")
    return await _view(runtime, record)
