"""video.generate, provider cloud: our VOD client against the Tencent VOD stand-in on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from genqueue.errors import InvalidInputError, RateLimited, Retry
from genqueue.handlers.video import generate, tc3
from genqueue.handlers.video.cloud import UpstreamError, VodClient, generate_cloud
from genqueue.handlers.video.encode import probe_mp4
from genqueue.handlers.video.models import VideoGenerate, VideoResult
from genqueue.kinds import TaskContext
from genqueue.settings import VideoSettings
from tests.video_support import Standin, local_context, running_standin


async def run_cloud(
    payload: VideoGenerate, ctx: TaskContext, settings: VideoSettings
) -> VideoResult:
    """The cloud provider with an HTTP client of its own, as the worker's resource gives it."""
    async with httpx.AsyncClient(timeout=settings.request_timeout_s) as http:
        return await generate_cloud(payload, ctx, settings, http)


@pytest.fixture(scope="module")
def standin() -> Iterator[Standin]:
    with running_standin() as s:
        yield s


def cloud(prompt: str = "a small boy running down the street", **extra: object) -> VideoGenerate:
    values: dict[str, object] = {"prompt": prompt, "provider": "cloud", "duration_s": 5}
    return VideoGenerate.model_validate(values | extra)


def inject(standin: Standin, **fault: object) -> None:
    httpx.post(f"{standin.url}/admin/faults", json=fault).raise_for_status()


def test_signature_matches_the_worked_example_in_tencents_documentation() -> None:
    body = (
        b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    )
    signature = tc3.signature(
        secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        service="cvm",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Host": "cvm.tencentcloudapi.com",
        },
        signed="content-type;host",
        body=body,
        timestamp=1551113065,
    )
    assert signature == "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"


async def test_cloud_video_is_created_polled_downloaded_and_saved(
    standin: Standin, tmp_path: Path
) -> None:
    ctx = local_context(tmp_path, task_id="t-cloud")
    result = await run_cloud(cloud(resolution="1080P"), ctx, standin.settings())
    saved = (tmp_path / "artifacts" / "t-cloud" / "video.mp4").read_bytes()
    assert result.video_url == "/v1/artifacts/t-cloud/video.mp4" and saved[4:8] == b"ftyp"
    info = probe_mp4(saved)
    assert (result.width, result.height, result.frames) == (info.width, info.height, info.frames)
    assert result.duration_s == pytest.approx(5.0, abs=0.01) and result.file_size == len(saved)
    assert result.provider == "cloud" and result.model == "Hailuo 2.3"
    assert result.upstream_task_id and "-AigcVideoTask-" in result.upstream_task_id
    assert ctx.latest is not None and ctx.latest.fraction == 1.0


async def test_http_429_raises_rate_limited_with_the_retry_after_delay(
    standin: Standin, tmp_path: Path
) -> None:
    inject(standin, status=429, retry_after_s=7)
    with pytest.raises(RateLimited) as info:
        await run_cloud(cloud(), local_context(tmp_path), standin.settings())
    assert info.value.delay_s == 7.0 and "429" in str(info.value)


@pytest.mark.parametrize("code", ["RequestLimitExceeded", "LimitExceeded.AigcVideoConcurrency"])
async def test_rate_limit_error_codes_raise_rate_limited(
    standin: Standin, tmp_path: Path, code: str
) -> None:
    inject(standin, code=code)
    settings = standin.settings(rate_limit_delay_s=3)
    with pytest.raises(RateLimited) as info:
        await run_cloud(cloud(), local_context(tmp_path), settings)
    assert info.value.delay_s == 3.0 and code in str(info.value)


async def test_upstream_5xx_and_internal_error_ask_for_a_retry(
    standin: Standin, tmp_path: Path
) -> None:
    inject(standin, status=503, code="InternalError")
    with pytest.raises(Retry) as info:
        await run_cloud(cloud(), local_context(tmp_path), standin.settings())
    assert not isinstance(info.value, RateLimited) and "HTTP 503" in str(info.value)
    inject(standin, code="InternalError.Busy")
    with pytest.raises(Retry):
        await run_cloud(cloud(), local_context(tmp_path), standin.settings())


async def test_unreachable_upstream_asks_for_a_retry(tmp_path: Path, standin: Standin) -> None:
    settings = standin.settings(endpoint="http://127.0.0.1:9", request_timeout_s=2)
    with pytest.raises(Retry, match="unreachable"):
        await run_cloud(cloud(), local_context(tmp_path), settings)


async def test_a_rate_limited_poll_is_waited_out_not_abandoned(
    standin: Standin, tmp_path: Path
) -> None:
    inject(standin, action="DescribeTaskDetail", status=429, retry_after_s=0.05, count=2)
    result = await run_cloud(cloud(), local_context(tmp_path), standin.settings())
    assert result.frames > 0


async def test_failed_upstream_job_fails_with_the_upstreams_message(
    standin: Standin, tmp_path: Path
) -> None:
    with pytest.raises(UpstreamError, match=r"failed \(70015\): The prompt was rejected"):
        await run_cloud(cloud("a cat [fail]"), local_context(tmp_path), standin.settings())


async def test_wrong_secret_key_is_refused_by_signature_check(
    standin: Standin, tmp_path: Path
) -> None:
    settings = standin.settings(secret_key="not-the-key")
    with pytest.raises(UpstreamError, match=r"AuthFailure\.SignatureFailure"):
        await run_cloud(cloud(), local_context(tmp_path), settings)


async def test_the_stand_in_refuses_unsigned_calls(standin: Standin) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            standin.url, json={}, headers={"X-TC-Action": "DescribeTaskDetail"}
        )
        assert answer.json()["Response"]["Error"]["Code"] == "MissingParameter"
        client = VodClient(standin.settings(), http)
        with pytest.raises(UpstreamError, match="ResourceNotFound"):
            await client.describe("no-such-task")


async def test_missing_credentials_are_a_clear_config_error(tmp_path: Path) -> None:
    from genqueue.errors import ConfigError
    from genqueue.settings import VideoSettings

    with pytest.raises(ConfigError, match="GENQUEUE_VIDEO__SECRET_ID"):
        await run_cloud(cloud(), local_context(tmp_path), VideoSettings())


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"prompt": "   "}, "payload.prompt", "blank"),
        ({"prompt": "x" * 2001}, "payload.prompt", "2000"),
        ({"prompt": "x", "duration_s": 11}, "payload.duration_s", "10"),
        (
            {"prompt": "x", "provider": "cloud", "duration_s": 7},
            "payload.duration_s",
            "5, 6, 8, 10",
        ),
        ({"prompt": "x", "provider": "cloud", "resolution": "480p"}, "payload.resolution", "720p"),
        ({"prompt": "x", "resolution": "4k"}, "payload.resolution", "1080p"),
        ({"prompt": "x", "fps": 60}, "payload.fps", "30"),
        ({"prompt": "x", "provider": "cloud", "fps": 24}, "payload.fps", "local only"),
        ({"prompt": "x", "model_name": "Kling"}, "payload.model_name", "cloud only"),
        ({"prompt": "x", "provider": "sora"}, "payload.provider", "local"),
    ],
)
def test_payload_bounds_name_the_field(payload: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        generate.validate_payload(payload)
    assert [p.field for p in info.value.problems] == [field]
    assert words in info.value.problems[0].message


def test_cloud_payload_in_vod_spelling_is_accepted() -> None:
    payload = generate.validate_payload(
        {
            "prompt": "一个小男孩在街上跑步",
            "provider": "cloud",
            "duration_s": 6,
            "resolution": "768P",
        }
    )
    assert isinstance(payload, VideoGenerate) and payload.resolution == "768p"


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    from genqueue.handlers.video.cloud import rate_limited

    def waits(header: str | None) -> tuple[float | None, float | None]:
        refusal = rate_limited("429", header, 9.0)
        return refusal.delay_s, refusal.retry_after_s

    assert waits("2") == (2.0, 2.0)
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    delay, asked = waits(later)
    assert delay == asked and asked is not None and 25.0 <= asked <= 31.0
    assert waits("soon") == (9.0, None)  # unreadable: our own pause, nobody else held back
    assert waits(None) == (9.0, None)


async def test_cancelling_stops_following_the_upstream_job(
    standin: Standin, tmp_path: Path
) -> None:
    import asyncio

    from tests.helpers import wait_for

    ctx = local_context(tmp_path, task_id="t-cancel")
    run = asyncio.create_task(run_cloud(cloud("a slow pan [slow]"), ctx, standin.settings()))

    async def polling() -> bool:
        return ctx.latest is not None and ctx.latest.message.startswith("upstream")

    await wait_for(polling, 10, message="the upstream job to be polled")
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert not (tmp_path / "artifacts" / "t-cancel").exists()


def limits(standin: Standin, **update: object) -> dict[str, object]:
    """The stand-in's concurrency cap and counts; moved first when ``update`` is given."""
    if update:
        answer = httpx.post(f"{standin.url}/admin/limits", json=update)
    else:
        answer = httpx.get(f"{standin.url}/admin/limits")
    answer.raise_for_status()
    figures: dict[str, object] = answer.json()
    return figures


async def create_job(standin: Standin, prompt: str = "a kite over a beach") -> str:
    async with httpx.AsyncClient() as http:
        return await VodClient(standin.settings(), http).create(cloud(prompt), session_id="s")


async def test_a_create_over_the_concurrency_cap_is_refused_until_a_job_finishes() -> None:
    from tests.helpers import wait_until

    with running_standin(job_s=1.0, max_concurrent=2) as standin:
        await create_job(standin, "the first job [slow]")  # 10 s: stays in progress
        await create_job(standin)
        with pytest.raises(RateLimited, match="RequestLimitExceeded"):
            await create_job(standin)
        wait_until(lambda: limits(standin)["in_progress"] == 1, message="a job to finish")
        assert "-AigcVideoTask-" in await create_job(standin)
        figures = limits(standin)
        assert figures | {"in_progress": None} == {
            "max_concurrent": 2,
            "in_progress": None,  # 1 or 2: the new job ends on the stand-in's clock
            "accepted": 3,
            "refused": 1,
        }
        assert figures["in_progress"] in (1, 2)


async def test_the_cap_moved_at_run_time_applies_to_the_next_create() -> None:
    with running_standin(job_s=60.0) as standin:
        assert limits(standin)["max_concurrent"] is None
        for _ in range(3):
            await create_job(standin)
        assert limits(standin, max_concurrent=2)["in_progress"] == 3  # lowering cancels nothing
        with pytest.raises(RateLimited):
            await create_job(standin)
        assert limits(standin, max_concurrent=4)["max_concurrent"] == 4
        await create_job(standin)
        with pytest.raises(RateLimited):
            await create_job(standin)
        limits(standin, max_concurrent=None)
        await create_job(standin)
        assert limits(standin) == {
            "max_concurrent": None,
            "in_progress": 5,
            "accepted": 5,
            "refused": 2,
        }


def test_a_malformed_cap_is_refused_and_leaves_the_cap_alone() -> None:
    with running_standin(max_concurrent=3) as standin:
        for body in ({}, {"max_concurrent": -1}, {"max_concurrent": "many"}):
            answer = httpx.post(f"{standin.url}/admin/limits", json=body)
            assert answer.status_code == 422
        assert limits(standin)["max_concurrent"] == 3


async def test_concurrent_creates_are_admitted_exactly_up_to_the_cap() -> None:
    import asyncio

    with running_standin(job_s=60.0, max_concurrent=5) as standin:
        outcomes = await asyncio.gather(
            *(create_job(standin) for _ in range(20)), return_exceptions=True
        )
        assert sum(isinstance(o, str) for o in outcomes) == 5
        assert sum(isinstance(o, RateLimited) for o in outcomes) == 15
        assert limits(standin) == {
            "max_concurrent": 5,
            "in_progress": 5,
            "accepted": 5,
            "refused": 15,
        }


async def test_cloud_provider_turns_the_cap_refusal_into_rate_limited(tmp_path: Path) -> None:
    with running_standin(max_concurrent=0) as standin:
        settings = standin.settings(rate_limit_delay_s=4)
        with pytest.raises(RateLimited) as info:
            await run_cloud(cloud(), local_context(tmp_path), settings)
        assert info.value.delay_s == 4.0 and "RequestLimitExceeded" in str(info.value)
        assert "concurrent" in str(info.value)
