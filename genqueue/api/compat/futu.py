"""Seed 002 (Futu): the compute server's feature-extraction endpoints, on ``feature.extract``.

    POST /api/compute/feature_extraction        {"image_path": ...}           one task, waited
    POST /api/compute/batch_feature_extraction  {"image_paths": [...], ...}   one task per path

Each request submits through the Dispatcher and waits for the outcome (``wait_finished``) up to
``FEATURE_TIMEOUT`` / ``BATCH_FEATURE_TIMEOUT`` (the seed's names, read when the app starts) or
the request's ``timeout``; the 1280 floats come back as a JSON list, as the seed's controller
fed them to FAISS. A wait that runs out answers the task ids, which keep running and can be
followed at ``/v1/tasks/{id}``. ``GET /health`` is the core's. Shapes: docs/migrating/002-futu.md.

Paths: the seed's clients send absolute paths on the compute machine. One under the input root
(``GENQUEUE_INPUT_ROOT``, which the API and the workers must both set) becomes the relative path
``feature.extract`` reads; one outside it, or any path with ``..``, is refused with 403 before
anything is stored, naming the field (``image_path``, ``image_paths.N``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from genqueue.api.deps import RuntimeDep
from genqueue.api.routes.tasks import public, wait_finished
from genqueue.api.runtime import Runtime
from genqueue.api.schemas import Eta
from genqueue.dispatch import TaskRequest
from genqueue.errors import ConfigError, FieldProblem, ForbiddenPathError, InvalidInputError
from genqueue.handlers.features.models import FeatureResult, decode_vector
from genqueue.inputs import InputFile
from genqueue.models import Task, TaskStatus
from genqueue.settings import Duration

KIND = "feature.extract"
MAX_TIMEOUT_S = 600.0  # longest a request may hold its connection waiting
Timeout = Annotated[Duration, Field(gt=0, le=MAX_TIMEOUT_S)]


class FutuEnv(BaseSettings):
    """The seed's own waits, unprefixed, so its ``.env`` works unchanged (``30``, ``45s``)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    feature_timeout: Timeout = 30.0
    batch_feature_timeout: Timeout = 60.0


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Read the seed's variables when the app starts (never at import)."""
    try:
        app.state.futu_env = FutuEnv()
    except ValidationError as exc:
        problems = "; ".join(
            f"{str(e['loc'][0]).upper()}={e.get('input')!r}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"seed 002 environment: {problems}") from None
    yield


router = APIRouter(tags=["Futu feature extraction (seed 002)"], lifespan=lifespan)


def env_of(request: Request) -> FutuEnv:
    env: FutuEnv = request.app.state.futu_env
    return env


class FeatureRequest(BaseModel):
    image_path: str = Field(min_length=1, max_length=4096)
    timeout: Timeout | None = Field(None, description="seconds; default FEATURE_TIMEOUT")


class BatchFeatureRequest(BaseModel):
    image_paths: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(min_length=1)
    timeout: Timeout | None = Field(None, description="seconds; default BATCH_FEATURE_TIMEOUT")


class LabelOut(BaseModel):
    index: int
    name: str
    score: float


class FeatureAnswer(BaseModel):
    """One image's outcome. ``success`` with ``features``; else ``error``, and while the task
    is unfinished its ``position`` and ``eta`` (follow ``status_url``). Fields without a
    value are left out."""

    success: bool
    image_path: str
    task_id: str
    status: TaskStatus
    features: list[float] | None = None
    dim: int | None = None
    model: str | None = None
    labels: list[LabelOut] | None = None
    elapsed_s: float | None = None
    error: str | None = None
    position: int | None = None
    eta: Eta | None = None
    status_url: str


class BatchAnswer(BaseModel):
    """Every path's outcome, in request order; one path failing does not fail the others."""

    success: bool = Field(description="every path succeeded")
    batch_id: str
    total: int
    succeeded: int
    failed: int
    pending: int = Field(description="not finished when the wait ran out; still running")
    timed_out: bool
    results: list[FeatureAnswer]


def task_path(path: str, root: Path | None, field: str) -> str:
    """The path ``feature.extract`` reads (relative to the input root) for a client's path;
    ``ForbiddenPathError`` naming ``field`` for one outside the root."""
    if os.path.isabs(path):
        if root is None:
            raise ForbiddenPathError(
                field, f"{path!r}: no input root is configured (GENQUEUE_INPUT_ROOT)"
            )
        given = Path(os.path.normpath(path))
        for base in dict.fromkeys([Path(os.path.abspath(root)), root.resolve()]):
            if given.is_relative_to(base) and given != base:
                return given.relative_to(base).as_posix()
        raise ForbiddenPathError(field, f"{path!r} is outside the input root {str(root)!r}")
    try:
        relative = InputFile(path=PurePosixPath(path).as_posix()).path
    except ValidationError:
        raise ForbiddenPathError(field, f"{path!r} leads outside the input root") from None
    assert relative is not None
    return relative


def extract_request(path: str) -> TaskRequest:
    return TaskRequest(kind=KIND, payload={"image": {"path": path}})


async def answer(runtime: Runtime, task: Task, image_path: str, timeout_s: float) -> FeatureAnswer:
    """The seed's shape for one task as it stands (after waiting for it)."""
    out: dict[str, Any] = {
        "image_path": image_path,
        "task_id": task.id,
        "status": task.status,
        "status_url": f"/v1/tasks/{task.id}",
    }
    if task.status == TaskStatus.SUCCEEDED and task.result is not None:
        result = FeatureResult.model_validate(task.result)
        [item] = result.items
        labels = [LabelOut(**label.model_dump()) for label in item.labels]
        return FeatureAnswer(
            success=True,
            features=[float(x) for x in decode_vector(item.embedding)],
            dim=result.dim,
            model=result.model,
            labels=labels,
            elapsed_s=result.elapsed_s,
            **out,
        )
    if task.status.finished:
        return FeatureAnswer(success=False, error=task.error or task.status.value, **out)
    shown = await public(runtime, task)
    return FeatureAnswer(
        success=False,
        error=f"not finished within {timeout_s:g} s; still {task.status.value}, see status_url",
        position=shown.position,
        eta=shown.eta,
        **out,
    )


def http_status(outcome: FeatureAnswer) -> int:
    """200 succeeded; 422 the image could not be read (missing, not an image); 500 any other
    failure; 504 the wait ran out (the task goes on)."""
    if outcome.success:
        return 200
    if not outcome.status.finished:
        return 504
    if (outcome.error or "").startswith("invalid input"):
        return 422
    return 500


ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "a path outside the input root (nothing submitted)"},
    422: {"description": "a bad body, or (single image) the image could not be read"},
}


@router.post(
    "/api/compute/feature_extraction",
    response_model=FeatureAnswer,
    responses={
        **ERRORS,
        500: {"model": FeatureAnswer, "description": "the extraction failed"},
        504: {"model": FeatureAnswer, "description": "not finished in time; still running"},
    },
)
async def feature_extraction(
    body: FeatureRequest, request: Request, runtime: RuntimeDep
) -> JSONResponse:
    """Extract one image's features (1280-d, L2-normalised) and wait for them."""
    path = task_path(body.image_path, runtime.settings.input_root, "image_path")
    task, _ = await runtime.dispatcher.submit(extract_request(path))
    timeout_s = body.timeout or env_of(request).feature_timeout
    task = await wait_finished(runtime, task.id, timeout_s)
    outcome = await answer(runtime, task, body.image_path, timeout_s)
    return JSONResponse(
        outcome.model_dump(mode="json", exclude_none=True), status_code=http_status(outcome)
    )


@router.post(
    "/api/compute/batch_feature_extraction",
    response_model=BatchAnswer,
    response_model_exclude_none=True,
    responses=ERRORS,
)
async def batch_feature_extraction(
    body: BatchFeatureRequest, request: Request, runtime: RuntimeDep
) -> BatchAnswer:
    """Extract many images' features, one task each (submitted together, all or none), and
    wait for them; 200 with every path's outcome, whatever each one was."""
    limit = runtime.settings.max_batch
    if len(body.image_paths) > limit:
        raise InvalidInputError([FieldProblem("image_paths", f"at most {limit} paths")])
    root = runtime.settings.input_root
    paths = [task_path(p, root, f"image_paths.{i}") for i, p in enumerate(body.image_paths)]
    batch, tasks = await runtime.dispatcher.submit_batch(
        [extract_request(p) for p in paths], user=None
    )
    timeout_s = body.timeout or env_of(request).batch_feature_timeout
    done = await asyncio.gather(*(wait_finished(runtime, t.id, timeout_s) for t in tasks))
    results = [
        await answer(runtime, task, path, timeout_s)
        for task, path in zip(done, body.image_paths, strict=True)
    ]
    pending = sum(1 for r in results if not r.status.finished)
    succeeded = sum(1 for r in results if r.success)
    return BatchAnswer(
        success=succeeded == len(results),
        batch_id=batch.id,
        total=len(results),
        succeeded=succeeded,
        failed=len(results) - succeeded - pending,
        pending=pending,
        timed_out=pending > 0,
        results=results,
    )
