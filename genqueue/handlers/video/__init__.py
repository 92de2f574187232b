"""``video.generate``: a prompt to an MP4, made here (``local``) or by Tencent Cloud VOD AIGC
(``cloud``).

One kind, two providers, so that clients and the console ask for a video one way. The handler
is async: the cloud provider spends minutes waiting on HTTP and must not hold a pool process,
and the local one runs its CPU work in a killable child process of its own (local.py).

    models.py   payload and result, with each provider's bounds
    local.py    procedural animation (animate.py) encoded to H.264 (encode.py), in a child
    cloud.py    the VOD AIGC client: create, poll, download; rate limits -> RateLimited
    tc3.py      Tencent Cloud API 3.0 signing
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from genqueue.handlers.video.local import RENDERER
from genqueue.handlers.video.models import VideoGenerate, VideoResult
from genqueue.kinds import TaskContext, kind
from genqueue.resources import resource
from genqueue.retry import RetryPolicy
from genqueue.settings import Settings

if TYPE_CHECKING:
    import httpx

# Every worker shares one concurrency limit towards VOD AIGC (GENQUEUE_LIMITS, seed 003's).
CLOUD = "video-cloud"


@resource("vod-http")
async def vod_http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """One HTTP client per worker for VOD: its connections are reused across tasks."""
    import httpx

    timeout = httpx.Timeout(settings.video.request_timeout_s)
    async with httpx.AsyncClient(timeout=timeout) as http:
        yield http


def _calls_the_cloud(payload: dict[str, Any]) -> bool:
    return bool(payload.get("provider") == "cloud")


def _made_here(payload: dict[str, Any]) -> bool:
    """The local renderer is deterministic (a seed, or one derived from the prompt); the
    cloud's model is not ours to promise anything about."""
    return not _calls_the_cloud(payload)


@kind(
    "video.generate",
    payload=VideoGenerate,
    result=VideoResult,
    queue="video",
    timeout_s=1800.0,
    retry=RetryPolicy(max_attempts=3, base_delay_s=2.0, max_delay_s=60.0),
    resource=CLOUD,
    uses_resource=_calls_the_cloud,
    resources=[RENDERER, vod_http],
    deterministic=_made_here,
)
async def generate(payload: VideoGenerate, ctx: TaskContext) -> VideoResult:
    """Generate a short video from a prompt, locally (procedural) or on Tencent Cloud VOD AIGC."""
    if payload.provider == "cloud":
        from genqueue.handlers.video.cloud import generate_cloud

        return await generate_cloud(payload, ctx, ctx.settings.video, ctx.resource(vod_http))
    from genqueue.handlers.video.local import generate_local

    return await generate_local(payload, ctx)


KINDS = [generate]
