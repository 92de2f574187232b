"""The pure parts of the result cache and of expiry: which payloads get a cache key and what
it depends on, the Cache-Control rule, and the expiry arithmetic."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from genqueue.errors import ResultExpiredError
from genqueue.expiry import (
    check_not_expired,
    duration_text,
    expires_at,
    without_expired_result,
)
from genqueue.kinds import KindRegistry, load_kinds
from genqueue.models import Task, TaskStatus, utcnow
from genqueue.result_cache import cache_key, no_cache


@pytest.fixture(scope="module")
def kinds() -> KindRegistry:
    return load_kinds()


def key_of(kinds: KindRegistry, name: str, payload: dict[str, Any]) -> str | None:
    kind = kinds.get(name)
    return cache_key(kind, kind.validate_payload(payload).model_dump(mode="json"))


def test_the_key_is_the_payload_as_validated_not_as_spelled(kinds: KindRegistry) -> None:
    plain = key_of(kinds, "image.generate", {"prompt": "a fox", "seed": 3})
    spelled = key_of(kinds, "image.generate", {"seed": 3, "style": "default", "prompt": "a fox"})
    assert plain is not None and len(plain) == 64 and plain == spelled
    assert key_of(kinds, "image.generate", {"prompt": "a fox", "seed": 4}) != plain
    assert key_of(kinds, "image.generate", {"prompt": "a fox"}) not in (None, plain)


def test_debug_kinds_and_cloud_videos_are_never_cached(kinds: KindRegistry) -> None:
    assert key_of(kinds, "debug.echo", {"n": 1}) is None
    assert key_of(kinds, "video.generate", {"prompt": "waves", "provider": "cloud"}) is None
    assert key_of(kinds, "video.generate", {"prompt": "waves"}) is not None  # local


def test_inputs_by_path_and_side_effects_are_not_cached(kinds: KindRegistry) -> None:
    upload, path = {"upload": "u-" + "0" * 32}, {"path": "frames/1.png"}
    assert key_of(kinds, "feature.extract", {"image": upload}) is not None
    assert key_of(kinds, "feature.extract", {"image": path}) is None
    assert key_of(kinds, "feature.extract", {"images": [upload, path]}) is None
    assert key_of(kinds, "feature.extract", {"image": upload, "collection": "shoes"}) is None
    assert key_of(kinds, "image.diagnose", {"image": upload}) is not None
    assert key_of(kinds, "image.diagnose", {"image": path}) is None
    assert key_of(kinds, "image.diagnose", {"image": upload, "camera_id": "gate-1"}) is None
    beach = {"prompt": "a beach"}
    assert key_of(kinds, "image.compose", {"foreground": upload, "background": beach})
    assert key_of(kinds, "image.compose", {"foreground": path, "background": beach}) is None
    behind = {"foreground": upload, "background": {"image": path}}
    assert key_of(kinds, "image.compose", behind) is None


@pytest.mark.parametrize(
    ("header", "skips"),
    [
        (None, False),
        ("", False),
        ("no-cache", True),
        ("No-Cache", True),
        ("max-age=0, no-cache", True),
        ("no-store", False),
        ("max-age=60", False),
    ],
)
def test_only_no_cache_skips_the_cache(header: str | None, skips: bool) -> None:
    assert no_cache(header) is skips


def task(status: TaskStatus, finished_ago_s: float | None) -> Task:
    now = utcnow()
    finished = None if finished_ago_s is None else now - timedelta(seconds=finished_ago_s)
    return Task(
        id="t1",
        kind="image.generate",
        queue="image",
        payload={},
        status=status,
        result={"image_url": "/v1/artifacts/t1/image.png"},
        created_at=now - timedelta(hours=1),
        finished_at=finished,
    )


def test_a_finished_task_expires_retention_after_it_finished() -> None:
    done = task(TaskStatus.SUCCEEDED, 10.0)
    assert done.finished_at is not None
    assert expires_at(done, 60.0) == done.finished_at + timedelta(seconds=60)
    assert expires_at(task(TaskStatus.RUNNING, None), 60.0) is None
    check_not_expired(done, 60.0)
    assert without_expired_result(done, 60.0).result == done.result


def test_an_expired_task_raises_gone_and_lists_without_its_result() -> None:
    done = task(TaskStatus.FAILED, 90.0)
    with pytest.raises(ResultExpiredError, match=r"t1 expired at .*kept for 1m after"):
        check_not_expired(done, 60.0)
    shown = without_expired_result(done, 60.0)
    assert shown.result is None and shown.status == TaskStatus.FAILED


@pytest.mark.parametrize(
    ("seconds", "text"), [(86400.0, "1d"), (129600.0, "36h"), (5400.0, "90m"), (2.5, "2.5s")]
)
def test_retention_is_said_in_its_largest_whole_unit(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text
