"""Provider ``cloud``: text-to-video on Tencent Cloud VOD AIGC (seed 003's upstream), over
httpx with TC3-signed API 3.0 calls.

Protocol (API version 2018-07-17, service ``vod``; every call is a signed ``POST /`` whose
``X-TC-Action`` header names it, answered ``{"Response": {..., "RequestId"}}`` or
``{"Response": {"Error": {"Code", "Message"}}}``):

- ``CreateAigcVideoTask`` {SubAppId, ModelName, ModelVersion, Prompt, SessionId,
  OutputConfig: {StorageMode, Duration, Resolution, AspectRatio}} -> {TaskId}
- ``DescribeTaskDetail`` {SubAppId, TaskId} -> {Status: WAITING | PROCESSING | FINISH,
  AigcVideoTask: {Status, Progress (0-100), ErrCode, Message, Output: {FileInfos: [{FileUrl}]}}}
- then a plain GET of the FileUrl (a temporary storage URL, not an API call).

How answers map onto genqueue's signals: HTTP 429 and the codes ``RequestLimitExceeded*`` and
``LimitExceeded*`` raise :class:`RateLimited` (after Retry-After, else
``rate_limit_delay_s``), so the task waits without spending an attempt; HTTP 5xx, timeouts,
connection errors and ``InternalError*`` raise :class:`Retry` (an attempt, with backoff); any
other error code, and a job that finishes with an ErrCode, fail the run with the upstream's
code and message. While a job runs, failed or rate-limited polls are waited out (up to
``MAX_POLL_ERRORS`` in a row) rather than abandoning a job already paid for. VOD has no call to
cancel an AIGC task: a cancelled run stops polling and the upstream job runs out on its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from genqueue.errors import ConfigError, RateLimited, Retry
from genqueue.handlers.video import tc3
from genqueue.handlers.video.models import VideoGenerate, VideoResult
from genqueue.kinds import TaskContext
from genqueue.limiter import parse_retry_after
from genqueue.settings import VideoSettings

log = logging.getLogger(__name__)

GENERATOR = "tencent-vod-aigc"
MAX_POLL_ERRORS = 5
RATE_LIMIT_CODES = ("RequestLimitExceeded", "LimitExceeded")
TRANSIENT_CODES = ("InternalError", "ResourceUnavailable")


class UpstreamError(Exception):
    """The upstream refused or failed in a way that waiting alone will not fix."""


@dataclass(frozen=True)
class JobState:
    """One poll of an upstream job."""

    status: str  # WAITING, PROCESSING or FINISH
    progress: float  # 0..1
    error_code: int
    message: str
    file_url: str | None


def rate_limited(reason: str, retry_after: str | None, default_s: float) -> RateLimited:
    """A refusal for the upstream's limit, waiting what its Retry-After header says (seconds
    or an HTTP-date), else ``default_s`` (then it holds back this task only)."""
    seconds = parse_retry_after(retry_after, time.time())
    return RateLimited(reason, default_s if seconds is None else seconds, seconds)


class VodClient:
    """Signed calls to the VOD API; each answer already mapped to a value or a signal."""

    def __init__(self, settings: VideoSettings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http
        self._host = httpx.URL(settings.endpoint).netloc.decode()

    async def call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        s = self._settings
        body = json.dumps(params, ensure_ascii=False).encode()
        headers = tc3.signed_headers(
            secret_id=s.secret_id.get_secret_value(),
            secret_key=s.secret_key.get_secret_value(),
            service=s.service,
            host=self._host,
            action=action,
            version=s.api_version,
            body=body,
            timestamp=int(time.time()),
            region=s.region,
        )
        try:
            response = await self._http.post(s.endpoint, content=body, headers=headers)
        except httpx.TransportError as exc:  # timeouts, refused connections, resets
            raise Retry(f"{action}: upstream unreachable ({type(exc).__name__})") from exc
        if response.status_code == 429:
            raise rate_limited(
                f"{action}: HTTP 429 from upstream",
                response.headers.get("Retry-After"),
                s.rate_limit_delay_s,
            )
        if response.status_code >= 500:
            raise Retry(f"{action}: upstream answered HTTP {response.status_code}")
        try:
            answer: dict[str, Any] = response.json()["Response"]
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamError(
                f"{action}: not an API 3.0 answer (HTTP {response.status_code})"
            ) from exc
        error = answer.get("Error")
        if error:
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
            if code.startswith(RATE_LIMIT_CODES):
                raise RateLimited(f"{action}: {code}: {message}", s.rate_limit_delay_s)
            if code.startswith(TRANSIENT_CODES):
                raise Retry(f"{action}: {code}: {message}")
            raise UpstreamError(f"{action}: {code}: {message}")
        return answer

    async def create(self, payload: VideoGenerate, session_id: str) -> str:
        s = self._settings
        answer = await self.call(
            "CreateAigcVideoTask",
            {
                "SubAppId": s.sub_app_id,
                "ModelName": payload.model_name or s.model_name,
                "ModelVersion": payload.model_version or s.model_version,
                "Prompt": payload.prompt,
                "SessionId": session_id,
                "OutputConfig": {
                    "StorageMode": "Temporary",
                    "Duration": int(payload.duration_s or s.default_duration_s),
                    "Resolution": (payload.resolution or s.default_resolution).upper(),
                    "AspectRatio": payload.aspect_ratio,
                },
            },
        )
        return str(answer["TaskId"])

    async def describe(self, task_id: str) -> JobState:
        answer = await self.call(
            "DescribeTaskDetail", {"SubAppId": self._settings.sub_app_id, "TaskId": task_id}
        )
        job: dict[str, Any] = answer.get("AigcVideoTask") or {}
        files = (job.get("Output") or {}).get("FileInfos") or []
        return JobState(
            status=str(job.get("Status") or answer.get("Status", "")),
            progress=min(1.0, max(0.0, float(job.get("Progress") or 0) / 100)),
            error_code=int(job.get("ErrCode") or 0),
            message=str(job.get("Message") or ""),
            file_url=next((f["FileUrl"] for f in files if f.get("FileUrl")), None),
        )


async def _wait_for_job(client: VodClient, task_id: str, ctx: TaskContext, pause_s: float) -> str:
    """Poll until the job finishes; return its video URL or raise with the upstream's word."""
    errors = 0
    while True:
        try:
            state = await client.describe(task_id)
            errors = 0
        except Retry as exc:  # RateLimited included: keep the paid-for job, wait, ask again
            errors += 1
            if errors >= MAX_POLL_ERRORS:
                raise
            log.info("poll of upstream task %s failed (%s); polling on", task_id, exc)
            await asyncio.sleep(max(pause_s, exc.delay_s or 0.0))
            continue
        if state.status == "FINISH":
            if state.error_code != 0:
                raise UpstreamError(
                    f"upstream task {task_id} failed ({state.error_code}): {state.message}"
                )
            if state.file_url is None:
                raise UpstreamError(f"upstream task {task_id} finished without a video")
            return state.file_url
        ctx.progress(0.05 + 0.8 * state.progress, f"upstream {state.status.lower()}")
        await asyncio.sleep(pause_s)


async def _download(
    http: httpx.AsyncClient, url: str, ctx: TaskContext, settings: VideoSettings
) -> bytes:
    try:
        async with http.stream("GET", url) as response:
            if response.status_code == 429:
                raise rate_limited(
                    "download: HTTP 429",
                    response.headers.get("Retry-After"),
                    settings.rate_limit_delay_s,
                )
            if response.status_code >= 500:
                raise Retry(f"download: HTTP {response.status_code}")
            if response.status_code != 200:
                raise UpstreamError(f"download of the video failed: HTTP {response.status_code}")
            size = int(response.headers.get("Content-Length") or 0)
            chunks: list[bytes] = []
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > settings.max_download_bytes:
                    raise UpstreamError(f"the video is over {settings.max_download_bytes} bytes")
                chunks.append(chunk)
                if size:
                    ctx.progress(0.85 + 0.1 * received / size, "downloading the video")
            return b"".join(chunks)
    except httpx.TransportError as exc:
        raise Retry(f"download: {type(exc).__name__}") from exc


async def generate_cloud(
    payload: VideoGenerate, ctx: TaskContext, settings: VideoSettings, http: httpx.AsyncClient
) -> VideoResult:
    """Create the upstream job, follow it to the end, and keep its video as our artifact.
    ``http`` is the worker's client (a resource), so connections are kept between tasks."""
    from genqueue.handlers.video.encode import NotAVideoError, probe_mp4

    if not (settings.secret_id.get_secret_value() and settings.secret_key.get_secret_value()):
        raise ConfigError("set GENQUEUE_VIDEO__SECRET_ID and GENQUEUE_VIDEO__SECRET_KEY")
    if settings.sub_app_id is None:
        raise ConfigError("set GENQUEUE_VIDEO__SUB_APP_ID (VOD's SubAppId)")
    started = time.perf_counter()
    client = VodClient(settings, http)
    task_id = await client.create(payload, session_id=f"genqueue-{ctx.task_id}-{ctx.attempt}")
    ctx.progress(0.05, f"upstream task {task_id} created")
    try:
        url = await _wait_for_job(client, task_id, ctx, settings.poll_interval_s)
    except asyncio.CancelledError:
        log.info("stopped following upstream task %s (VOD cannot cancel it)", task_id)
        raise
    data = await _download(http, url, ctx, settings)
    try:
        info = await asyncio.to_thread(probe_mp4, data)
    except NotAVideoError as exc:
        raise UpstreamError(f"upstream task {task_id} gave no playable video: {exc}") from exc
    video_url = await asyncio.to_thread(ctx.save_artifact, "video.mp4", data, "video/mp4")
    ctx.progress(1.0, "saved video.mp4")
    return VideoResult(
        video_url=video_url,
        duration_s=info.duration_s,
        width=info.width,
        height=info.height,
        fps=info.fps,
        frames=info.frames,
        file_size=len(data),
        provider="cloud",
        generator=GENERATOR,
        model=f"{payload.model_name or settings.model_name} "
        f"{payload.model_version or settings.model_version}",
        upstream_task_id=task_id,
        elapsed_s=round(time.perf_counter() - started, 3),
    )
