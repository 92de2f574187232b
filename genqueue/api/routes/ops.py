"""Operations: /health (store and broker answer), /metrics (Prometheus), artifacts by URL."""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Awaitable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from genqueue.api.auth import OperatorDep, PrincipalDep
from genqueue.api.deadline import answer_within
from genqueue.api.deps import RuntimeDep
from genqueue.api.errors import RETRY_AFTER_HEADER, RETRY_AFTER_S, error_responses
from genqueue.api.expiry import EXPIRES_HEADER, artifact_expiry, expires_headers
from genqueue.api.schemas import Health
from genqueue.artifacts import check_name
from genqueue.redact import redact_text

router = APIRouter(tags=["ops"])

# check_name's rule as a schema (documentation only; check_name gives the clearer 422): a
# letter or digit, then letters, digits, '.', '_', '-', never two dots in a row.
ARTIFACT_NAME = Path(
    json_schema_extra={"pattern": r"^[A-Za-z0-9](?:\.?[A-Za-z0-9_-])*\.?$", "maxLength": 128}
)


PROBE_S = 4.0  # both probes run at once, so /health answers within this even if one hangs


async def _probe(check: Awaitable[None], url: str) -> str:
    try:
        await answer_within(check, PROBE_S)
    except TimeoutError:
        return f"down: {urlsplit(url).scheme} did not answer within {PROBE_S:g} s"
    except Exception as exc:
        return redact_text(f"down: {exc}")
    return "ok"


@router.get(
    "/health",
    response_model=Health,
    responses={
        503: {
            "model": Health,
            "description": "the store or the broker does not answer",
            "headers": RETRY_AFTER_HEADER,
        }
    },
)
async def health(runtime: RuntimeDep) -> Response:
    """200 when both the store and the broker answer, 503 (saying which) otherwise."""
    settings = runtime.settings
    store, broker = await asyncio.gather(
        _probe(runtime.store.ping(), settings.store),
        _probe(runtime.broker.ping(), settings.broker),
    )
    ok = store == broker == "ok"
    body = Health(status="ok" if ok else "degraded", store=store, broker=broker)
    if ok:
        return JSONResponse(body.model_dump())
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    return JSONResponse(body.model_dump(), status_code=503, headers=headers)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **error_responses(503),
    },
)
async def metrics(request: Request, runtime: RuntimeDep, _: OperatorDep) -> Response:
    """Prometheus exposition."""
    data = await request.app.state.metrics.render(
        runtime.store, runtime.broker, runtime.kinds.queues(), runtime.rates
    )
    return Response(data, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get(
    "/v1/artifacts/{task_id}/{name}",
    tags=["artifacts"],
    response_class=Response,
    responses={
        200: {
            "description": "the file, with the media type its name implies",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            "headers": EXPIRES_HEADER,
        },
        **error_responses(404, 410, 422, 503),
    },
)
async def artifact(
    task_id: Annotated[str, ARTIFACT_NAME],
    name: Annotated[str, ARTIFACT_NAME],
    runtime: RuntimeDep,
    caller: PrincipalDep,
) -> Response:
    """A file a task produced (PNG, MP4, JSON), or an upload; a user key's own only; 410
    once the task's results expired."""
    check_name(task_id, "task id")
    check_name(name, "name")
    headers = expires_headers(await artifact_expiry(runtime, caller, task_id, name))
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    local = runtime.artifacts.local_path(task_id, name)
    if local is not None:
        return FileResponse(local, media_type=media_type, headers=headers)
    data = await asyncio.to_thread(runtime.artifacts.read, task_id, name)
    return Response(data, media_type=media_type, headers=headers)
