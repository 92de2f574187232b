"""STAND-IN for Tencent Cloud VOD's AIGC video API: a test and demo fixture, NOT the service.

It speaks the part of the protocol that genqueue's ``video.generate`` cloud provider uses
(genqueue/handlers/video/cloud.py documents it): TC3-HMAC-SHA256-signed ``POST /`` calls named
by ``X-TC-Action`` (``CreateAigcVideoTask``, ``DescribeTaskDetail``), API 3.0 answers and error
codes, and a temporary file URL serving a real H.264 MP4 made by the local provider's encoder.
Jobs go WAITING -> PROCESSING (Progress 0-100) -> FINISH over ``job_s`` seconds.

What tests and demos can make it do:
- a prompt containing ``[fail]``: the job finishes with an ErrCode and a moderation message;
  ``[slow]``: the job takes ``slow_factor`` times longer;
- ``POST /admin/faults`` ``{"count": 2, "status": 429}`` or ``{"code": "LimitExceeded.X"}``
  (``action`` to aim at one action, default CreateAigcVideoTask): the next matching calls get
  that answer (HTTP 429 with Retry-After, 5xx, or an error code in a 200, as the real API does);
- ``--max-concurrent K`` (``StandinConfig.max_concurrent``; default no cap): at most K jobs in
  progress at once, each counted from its create until it reaches FINISH, as the real service
  counts concurrent AIGC tasks; a create beyond the cap gets ``RequestLimitExceeded`` in a 200,
  the same answer as an injected fault. ``POST /admin/limits`` ``{"max_concurrent": 4}`` (null:
  no cap) moves K while it runs; lowering it cancels nothing, creates are refused until fewer
  than K jobs are in progress. ``GET /admin/limits``: the cap, jobs in progress, creates
  accepted and refused by the cap;
- ``GET /admin/stats``: calls per action, faults left, jobs.

Run: ``python -m genqueue.standins.tencent_vod --port 9010`` (it prints the GENQUEUE_VIDEO__*
settings that point a worker at it).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from genqueue.handlers.video import tc3
from genqueue.handlers.video.models import Resolution

CREATE, DESCRIBE = "CreateAigcVideoTask", "DescribeTaskDetail"


@dataclass(frozen=True)
class StandinConfig:
    """Who may call, and how jobs behave."""

    secret_id: str = "AKIDstandin0000000000"
    secret_key: str = "standin-secret-key"
    service: str = "vod"
    version: str = "2018-07-17"
    job_s: float = 2.0
    slow_factor: float = 10.0
    video_resolution: Resolution = "240p"  # served videos are small whatever was asked
    video_fps: int = 8
    retry_after_s: float = 1.0
    max_clock_skew_s: float = 300.0
    max_concurrent: int | None = None  # jobs in progress at once; None: no cap


class FaultSpec(BaseModel):
    """Answer the next ``count`` calls of ``action`` (any action if None) with this."""

    count: int = Field(1, ge=1, le=1000)
    action: str | None = CREATE
    status: int = Field(200, ge=200, le=599)
    code: str = "RequestLimitExceeded"
    message: str = "Your request frequency exceeds the limit (stand-in fault)."
    retry_after_s: float | None = None


class LimitsUpdate(BaseModel):
    """``POST /admin/limits``: the new cap (null lifts it); required so a typo is an error."""

    max_concurrent: int | None = Field(..., ge=0)


@dataclass
class ConcurrencyCap:
    """Admits a create while fewer than ``limit`` jobs are in progress.

    Requests may be served from more than one thread, so the check and the count happen under
    one lock. A job is in progress until its finish time (jobs end on the clock, nothing has to
    report them), so finish times sit in a heap and the ones past are dropped on each look.
    """

    limit: int | None = None
    accepted: int = 0
    refused: int = 0
    _ends: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _in_progress(self, now: float) -> int:
        while self._ends and self._ends[0] <= now:
            heapq.heappop(self._ends)
        return len(self._ends)

    def admit(self, now: float, ends_at: float) -> bool:
        with self._lock:
            if self.limit is not None and self._in_progress(now) >= self.limit:
                self.refused += 1
                return False
            heapq.heappush(self._ends, ends_at)
            self.accepted += 1
            return True

    def set_limit(self, limit: int | None) -> None:
        with self._lock:
            self.limit = limit

    def snapshot(self, now: float) -> dict[str, int | None]:
        with self._lock:
            return {
                "max_concurrent": self.limit,
                "in_progress": self._in_progress(now),
                "accepted": self.accepted,
                "refused": self.refused,
            }


@dataclass
class Job:
    id: str
    prompt: str
    duration_s: int
    created: float
    job_s: float
    fails: bool
    video: bytes | None = None

    def state(self, now: float) -> tuple[str, int]:
        elapsed = now - self.created
        if elapsed < 0.15 * self.job_s:
            return "WAITING", 0
        if elapsed < self.job_s:
            return "PROCESSING", min(99, int(100 * elapsed / self.job_s))
        return "FINISH", 100


@dataclass
class State:
    config: StandinConfig
    jobs: dict[str, Job] = field(default_factory=dict)
    faults: list[FaultSpec] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    render_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # One render per distinct video: a load test downloads the same few many times over.
    renders: dict[tuple[str, int], bytes] = field(default_factory=dict)
    cap: ConcurrencyCap = field(default_factory=ConcurrencyCap)

    def __post_init__(self) -> None:
        self.cap.set_limit(self.config.max_concurrent)


def _answer(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(
        {"Response": {**body, "RequestId": str(uuid.uuid4())}}, status_code=status, headers=headers
    )


def _error(
    code: str, message: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return _answer({"Error": {"Code": code, "Message": message}}, status, headers)


def _check_signature(request: Request, body: bytes, config: StandinConfig) -> Response | None:
    """None if the request is signed as TC3 requires with the configured key, else the error."""
    headers = request.headers
    for name in ("Authorization", "X-TC-Action", "X-TC-Timestamp", "X-TC-Version"):
        if name not in headers:
            return _error("MissingParameter", f"the {name} header is missing")
    credential = tc3.parse_authorization(headers["Authorization"])
    if credential is None:
        return _error("AuthFailure.InvalidAuthorization", "Authorization is not TC3-HMAC-SHA256")
    if not {"content-type", "host"} <= set(credential.signed_headers.split(";")):
        return _error("AuthFailure.InvalidAuthorization", "content-type and host must be signed")
    if credential.secret_id != config.secret_id:
        return _error("AuthFailure.SecretIdNotFound", "the SecretId is unknown")
    try:
        timestamp = int(headers["X-TC-Timestamp"])
    except ValueError:
        return _error("InvalidParameter", "X-TC-Timestamp is not an integer")
    if abs(time.time() - timestamp) > config.max_clock_skew_s:
        return _error("AuthFailure.SignatureExpire", "the signature expired (clock skew)")
    expected = tc3.signature(
        secret_key=config.secret_key,
        service=credential.service,
        headers=dict(headers),
        signed=credential.signed_headers,
        body=body,
        timestamp=timestamp,
    )
    if credential.service != config.service or expected != credential.signature:
        return _error("AuthFailure.SignatureFailure", "the signature does not match")
    return None


def _refusal(fault: FaultSpec, config: StandinConfig) -> Response:
    """The answer for a refused call, injected or over the cap: one shape for both."""
    wait = fault.retry_after_s if fault.retry_after_s is not None else config.retry_after_s
    extra = {"Retry-After": f"{wait:g}"} if fault.status == 429 else None
    return _error(fault.code, fault.message, fault.status, extra)


def _take_fault(state: State, action: str) -> Response | None:
    for fault in state.faults:
        if fault.action in (None, action):
            fault.count -= 1
            if fault.count == 0:
                state.faults.remove(fault)
            return _refusal(fault, state.config)
    return None


async def api(request: Request) -> Response:
    state: State = request.app.state.standin
    body = await request.body()
    refused = _check_signature(request, body, state.config)
    if refused is not None:
        return refused
    action = request.headers["X-TC-Action"]
    if request.headers["X-TC-Version"] != state.config.version:
        return _error("NoSuchVersion", f"{action} has no version {request.headers['X-TC-Version']}")
    state.calls[action] += 1
    fault = _take_fault(state, action)
    if fault is not None:
        return fault
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return _error("InvalidParameter", "the body is not JSON")
    if action == CREATE:
        return _create(state, params)
    if action == DESCRIBE:
        return _describe(state, params, str(request.base_url))
    return _error("InvalidAction", f"no action {action!r} here")


def _create(state: State, params: dict[str, Any]) -> Response:
    prompt = params.get("Prompt")
    if not isinstance(params.get("SubAppId"), int):
        return _error("InvalidParameterValue.SubAppId", "SubAppId must be an integer")
    if not params.get("ModelName") or not params.get("ModelVersion"):
        return _error("MissingParameter", "ModelName and ModelVersion are required")
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > 2000:
        return _error("InvalidParameterValue.Prompt", "Prompt must be 1-2000 characters")
    duration = (params.get("OutputConfig") or {}).get("Duration", 5)
    if not isinstance(duration, int) or not 1 <= duration <= 10:
        return _error("InvalidParameterValue.Duration", "Duration must be 1-10 seconds")
    job_s = state.config.job_s * (state.config.slow_factor if "[slow]" in prompt else 1.0)
    now = time.monotonic()
    if not state.cap.admit(now, now + job_s):
        message = (
            "The number of concurrent AIGC tasks exceeds the limit "
            f"(stand-in cap of {state.cap.limit})."
        )
        return _refusal(FaultSpec(code="RequestLimitExceeded", message=message), state.config)
    job_id = f"{params['SubAppId']}-AigcVideoTask-{uuid.uuid4().hex}"
    state.jobs[job_id] = Job(job_id, prompt, duration, now, job_s, "[fail]" in prompt)
    return _answer({"TaskId": job_id})


def _describe(state: State, params: dict[str, Any], base_url: str) -> Response:
    job = state.jobs.get(str(params.get("TaskId")))
    if job is None:
        return _error("ResourceNotFound.TaskNotExist", "no such task")
    status, progress = job.state(time.monotonic())
    task: dict[str, Any] = {"TaskId": job.id, "Status": status, "Progress": progress}
    task |= {"ErrCode": 0, "ErrCodeExt": "", "Message": "", "Output": None}
    if status == "FINISH" and job.fails:
        task |= {"ErrCode": 70015, "ErrCodeExt": "FailedOperation.ContentModeration"}
        task["Message"] = "The prompt was rejected by content moderation (stand-in)."
    elif status == "FINISH":
        url = f"{base_url}files/{job.id}.mp4"
        task["Output"] = {
            "FileInfos": [{"FileType": "mp4", "StorageMode": "Temporary", "FileUrl": url}]
        }
    return _answer({"TaskType": "AigcVideoTask", "Status": status, "AigcVideoTask": task})


async def video_file(request: Request) -> Response:
    """The finished job's MP4, rendered on first download by the local provider's encoder."""
    from genqueue.handlers.video.local import render_video
    from genqueue.handlers.video.models import VideoGenerate

    state: State = request.app.state.standin
    job = state.jobs.get(request.path_params["job_id"])
    if job is None or job.fails or job.state(time.monotonic())[0] != "FINISH":
        return Response(status_code=404)
    async with state.render_lock:
        if job.video is None:
            prompt = job.prompt.replace("[slow]", "").strip() or "stand-in"
            key = (prompt, job.duration_s)
            if key not in state.renders:
                payload = VideoGenerate(
                    prompt=prompt,
                    duration_s=job.duration_s,
                    resolution=state.config.video_resolution,
                    fps=state.config.video_fps,
                )
                state.renders[key] = (await asyncio.to_thread(render_video, payload)).mp4
            job.video = state.renders[key]
    return Response(job.video, media_type="video/mp4")


async def add_faults(request: Request) -> Response:
    state: State = request.app.state.standin
    try:
        spec = FaultSpec.model_validate(await request.json())
    except (ValidationError, ValueError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    state.faults.append(spec)
    return JSONResponse({"pending": sum(f.count for f in state.faults)})


async def stats(request: Request) -> Response:
    state: State = request.app.state.standin
    pending = sum(f.count for f in state.faults)
    return JSONResponse(
        {"calls": dict(state.calls), "faults_pending": pending, "jobs": len(state.jobs)}
    )


async def limits(request: Request) -> Response:
    """GET: the cap and its counts. POST ``{"max_concurrent": K}``: move the cap now."""
    state: State = request.app.state.standin
    if request.method == "POST":
        try:
            update = LimitsUpdate.model_validate(await request.json())
        except (ValidationError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        state.cap.set_limit(update.max_concurrent)
    return JSONResponse(state.cap.snapshot(time.monotonic()))


def create_app(config: StandinConfig | None = None) -> Starlette:
    """The stand-in as an ASGI app; its state lives on the app, nowhere global."""
    app = Starlette(
        routes=[
            Route("/", api, methods=["POST"]),
            Route("/files/{job_id}.mp4", video_file, methods=["GET"]),
            Route("/admin/faults", add_faults, methods=["POST"]),
            Route("/admin/stats", stats, methods=["GET"]),
            Route("/admin/limits", limits, methods=["GET", "POST"]),
        ]
    )
    app.state.standin = State(config or StandinConfig())
    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(
        description="Stand-in for Tencent Cloud VOD AIGC (tests, demos)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9010)
    parser.add_argument("--job-s", type=float, default=StandinConfig.job_s)
    parser.add_argument("--secret-id", default=StandinConfig.secret_id)
    parser.add_argument("--secret-key", default=StandinConfig.secret_key)
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        metavar="K",
        help="jobs in progress at once (default: no cap); POST /admin/limits changes it",
    )
    args = parser.parse_args(argv)
    if args.max_concurrent is not None and args.max_concurrent < 0:
        parser.error("--max-concurrent must be 0 or more")
    config = StandinConfig(
        secret_id=args.secret_id,
        secret_key=args.secret_key,
        job_s=args.job_s,
        max_concurrent=args.max_concurrent,
    )
    print("Tencent Cloud VOD AIGC STAND-IN (not the real service). Point a worker at it with:")
    print(f"  GENQUEUE_VIDEO__ENDPOINT=http://{args.host}:{args.port}")
    print(f"  GENQUEUE_VIDEO__SECRET_ID={config.secret_id}")
    print(f"  GENQUEUE_VIDEO__SECRET_KEY={config.secret_key}")
    print("  GENQUEUE_VIDEO__SUB_APP_ID=1 GENQUEUE_VIDEO__POLL_INTERVAL_S=0.5", flush=True)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
