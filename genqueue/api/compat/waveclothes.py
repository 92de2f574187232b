"""Seed 000, WaveClothes: ``POST /api/submit_task`` renders an image and answers when it is done,
and every finished ``image.generate`` is also published to the RabbitMQ result queue in the
seed's shape. ``docs/migrating/000-waveclothes.md`` maps every name.

Translation only: the task is an ``image.generate`` of the core, in the kind's queue
(``image``) or, with ``service``, the queue of the seed's basic or advanced compose service
(``image.basic``, ``image.advanced``), each served by workers started with ``--queues``.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from genqueue.api.compat._relay import Outbound, Relay, finished_task, rabbitmq_url
from genqueue.api.deps import RuntimeDep
from genqueue.api.routes.tasks import public, wait_finished
from genqueue.api.runtime import Runtime
from genqueue.dispatch import TaskRequest
from genqueue.errors import TaskNotFoundError
from genqueue.models import Event, Task, TaskStatus
from genqueue.settings import Duration

KIND = "image.generate"
SERVICE_QUEUES = {"basic": "image.basic", "advanced": "image.advanced"}
Style = Literal["default", "photorealistic", "artistic", "cartoon", "abstract"]


class WaveClothesEnv(BaseSettings):
    """The seed's own variables this adapter reads (unprefixed, as in its ``.env``)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    task_timeout: Duration = 60.0  # how long POST /api/submit_task waits for the image
    rabbitmq_result_queue: str = "image.generate.result"  # empty: no result relay
    # The start of image_url; unset: the URL the client called (HTTP answers), and
    # http://<this host's name>:<APP_PORT or 8000> (result queue messages).
    image_base_url: str | None = None
    app_port: int | None = None


def _env(request: Request) -> WaveClothesEnv:
    env: WaveClothesEnv = request.app.state.waveclothes_env
    return env


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Read the variables and start the result relay (when the broker is RabbitMQ)."""
    runtime: Runtime = app.state.runtime
    env = WaveClothesEnv()
    app.state.waveclothes_env = env
    url = rabbitmq_url(runtime.settings)
    relay = None
    if url and env.rabbitmq_result_queue:
        base = env.image_base_url or f"http://{socket.getfqdn()}:{env.app_port or 8000}"

        async def on_event(event: Event) -> list[Outbound]:
            task = await finished_task(runtime, event, KIND)
            if task is None:
                return []
            return [Outbound(env.rabbitmq_result_queue, seed_result(task, base))]

        queue = env.rabbitmq_result_queue
        relay = Relay(runtime, url, f"{queue}.relay", [queue], on_event)
        await relay.start()
    try:
        yield
    finally:
        if relay is not None:
            await relay.aclose()


router = APIRouter(tags=["WaveClothes image generation (seed 000)"], lifespan=lifespan)


class SubmitTask(BaseModel):
    """The seed's request, plus ``service`` to choose its basic or advanced compose queue."""

    prompt: str = Field(min_length=1, max_length=2000, examples=["A beautiful sunset"])
    width: int = 512
    height: int = 512
    style: Style = "default"
    user_id: str | None = Field(None, max_length=200)
    service: Literal["basic", "advanced"] | None = Field(
        None, description="the compose service's queue (image.basic / image.advanced)"
    )


class Metadata(BaseModel):
    width: int
    height: int
    style: str
    prompt: str
    file_size: int
    generator: str


class ResultData(BaseModel):
    """The seed's result object: in the HTTP answer's ``data`` and on the result queue."""

    success: bool
    image_url: str | None
    task_id: str
    duration: float | None
    timestamp: str | None
    metadata: Metadata | None
    # Failures only (success false): genqueue's status word and why.
    status: str | None = Field(None, description="failed, cancelled or expired")
    error: str | None = None


class SubmitAnswer(BaseModel):
    success: bool
    data: ResultData


class PendingAnswer(BaseModel):
    """Not finished within TASK_TIMEOUT (504) or still running (202): where to look later."""

    success: bool = False
    message: str
    task_id: str
    status: TaskStatus
    position: int | None
    status_url: str


def seed_result(task: Task, base_url: str) -> dict[str, Any]:
    """A finished ``image.generate`` task as the seed's server published it."""
    finished = task.finished_at.isoformat(timespec="seconds") if task.finished_at else None
    result = task.result if task.status == TaskStatus.SUCCEEDED else None
    if result is None:
        data = ResultData(
            success=False,
            image_url=None,
            task_id=task.id,
            duration=None,
            timestamp=finished,
            metadata=None,
            status=task.status,
            error=task.error or task.status.value,
        )
        return data.model_dump(mode="json")
    payload = task.payload
    data = ResultData(
        success=True,
        image_url=base_url.rstrip("/") + result["image_url"],
        task_id=task.id,
        duration=result["duration"],
        timestamp=finished,
        metadata=Metadata(
            width=result["width"],
            height=result["height"],
            style=result["style"],
            prompt=payload["prompt"],
            file_size=result["file_size"],
            generator=result["generator"],
        ),
        status=task.status,
    )
    return data.model_dump(mode="json", exclude={"status", "error"})  # the seed's keys only


async def _answer(request: Request, runtime: Runtime, task: Task, waited_s: float) -> JSONResponse:
    """200 with the seed's answer; 502 if it failed; 504 (timed out) or 202 (looking later)."""
    base = _env(request).image_base_url or str(request.base_url)
    if task.status == TaskStatus.SUCCEEDED:
        return JSONResponse({"success": True, "data": seed_result(task, base)})
    if task.status.finished:
        body = SubmitAnswer(success=False, data=ResultData(**seed_result(task, base)))
        return JSONResponse(body.model_dump(mode="json"), status_code=502)
    shown = await public(runtime, task)
    timed_out = waited_s > 0
    message = (
        f"任务处理超时: task {task.id} did not finish within {waited_s:g} s (TASK_TIMEOUT);"
        f" it goes on: GET /api/task/{task.id}"
        if timed_out
        else f"task {task.id} is {task.status.value}"
    )
    pending = PendingAnswer(
        message=message,
        task_id=task.id,
        status=task.status,
        position=shown.position,
        status_url=f"/api/task/{task.id}",
    )
    return JSONResponse(pending.model_dump(mode="json"), status_code=504 if timed_out else 202)


@router.post(
    "/api/submit_task",
    response_model=SubmitAnswer,
    responses={
        502: {"model": SubmitAnswer, "description": "the task failed (data.error says why)"},
        504: {"model": PendingAnswer, "description": "not done within TASK_TIMEOUT; it goes on"},
    },
)
async def submit_task(body: SubmitTask, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Generate an image and answer when it is ready (at most ``TASK_TIMEOUT`` seconds)."""
    payload = body.model_dump(include={"prompt", "width", "height", "style"})
    queue = SERVICE_QUEUES[body.service] if body.service else None
    request_ = TaskRequest(kind=KIND, payload=payload, user=body.user_id, queue=queue)
    task, _ = await runtime.dispatcher.submit(request_)
    timeout_s = _env(request).task_timeout
    task = await wait_finished(runtime, task.id, timeout_s)
    return await _answer(request, runtime, task, timeout_s)


@router.get(
    "/api/task/{task_id}",
    response_model=SubmitAnswer,
    responses={
        202: {"model": PendingAnswer, "description": "queued or running"},
        502: {"model": SubmitAnswer, "description": "the task failed"},
    },
)
async def get_task(task_id: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """A task submitted here, later: the seed's answer once it is done (genqueue addition)."""
    task = await runtime.store.get(task_id)
    if task.kind != KIND:
        raise TaskNotFoundError(f"no image generation task {task_id!r}")
    return await _answer(request, runtime, task, 0.0)
