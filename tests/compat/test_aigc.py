"""Seed 003 (AIGC video, Redis Streams + AIMD) keeps its clients: the seed document's curl
examples replayed verbatim against a real API and worker on Redis (the backend that system
used), the cloud provider answered by the Tencent VOD stand-in, the seed's threshold variables
set in the processes' environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from genqueue.api.app import create_app
from genqueue.settings import load_settings
from tests.helpers import Cluster, json_of, wait_until
from tests.video_support import Standin, running_standin

pytestmark = pytest.mark.system

TAG = "AIGC video (seed 003)"
# The seed's "创建任务" example, verbatim.
CREATE_BODY = """{
    "prompt": "一个小男孩在街上跑步",
    "model_name": "Hailuo",
    "model_version": "2.3",
    "duration": 6,
    "resolution": "768P"
  }"""
# The seed's own variables: the limiter starts at 3 of at most 5.
SEED_LIMITS = {"DEFAULT_THRESHOLD": "3", "MAX_THRESHOLD": "5", "MIN_THRESHOLD": "1"}


def seed_env(standin: Standin) -> dict[str, str]:
    """The stand-in reached with the seed's own credential names (a wrong one fails every
    call), and the seed's thresholds."""
    env = {k: v for k, v in standin.env().items() if "SECRET" not in k and "SUB_APP" not in k}
    return (
        env
        | SEED_LIMITS
        | {
            "TENCENTCLOUD_SECRET_ID": standin.config.secret_id,
            "TENCENTCLOUD_SECRET_KEY": standin.config.secret_key,
            "VOD_SUBAPP_ID": "1320866336",
        }
    )


@dataclass
class Deployment:
    cluster: Cluster
    standin: Standin
    api: httpx.Client


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """API on Redis, no worker yet: the test that needs one starts it."""
    with running_standin(job_s=0.2) as standin:
        env = seed_env(standin)
        cluster = Cluster(tmp_path_factory.mktemp("seed003"), backend="redis", extra_env=env)
        try:
            cluster.start_api()
            with httpx.Client(base_url=cluster.url, timeout=30) as api:
                yield Deployment(cluster, standin, api)
        finally:
            cluster.stop()


def create(api: httpx.Client, body: str = CREATE_BODY) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    return json_of(api.post("/aigc/create", content=body, headers=headers))


def status_of(api: httpx.Client, task_id: str) -> dict[str, Any]:
    status = json_of(api.get(f"/aigc/status/{task_id}"))
    assert set(status) == {"task_id", "status", "position", "result", "error"}
    return status


def status_when(api: httpx.Client, task_id: str, word: str) -> dict[str, Any]:
    """The task's status once it reads ``word`` (failing after 30 s)."""

    def reached() -> dict[str, Any] | None:
        status = status_of(api, task_id)
        return status if status["status"] == word else None

    return wait_until(reached, timeout_s=30, message=f"task {task_id} to be {word}")


def queue_info(api: httpx.Client) -> dict[str, int]:
    response = api.get("/aigc/queue/info")
    assert response.status_code == 200, response.text
    info: dict[str, int] = response.json()
    assert set(info) == {"queue_length", "active_count", "max_concurrency"}
    return info


def test_the_seeds_examples_run_end_to_end(deployment: Deployment) -> None:
    api, cluster = deployment.api, deployment.cluster
    # Before any worker: queued in line, and the limit from DEFAULT_THRESHOLD.
    created = create(api)
    assert set(created) == {"task_id", "position", "status"}
    assert created["status"] == "queued" and created["position"] >= 1
    task_id = created["task_id"]
    waiting = status_of(api, task_id)
    assert (waiting["status"], waiting["result"]) == ("queued", None)
    assert waiting["position"] == created["position"]
    info = queue_info(api)
    assert info["queue_length"] >= 1 and info["active_count"] == 0
    assert info["max_concurrency"] == 3

    # "[slow]" makes the stand-in take 10 x job_s: long enough to be seen processing.
    slow = create(api, CREATE_BODY.replace("一个小男孩", "[slow] 一个小男孩"))
    cluster.start_worker(concurrency=2)
    processing = status_when(api, slow["task_id"], "processing")
    assert (processing["position"], processing["result"]) == (0, None)
    wait_until(lambda: queue_info(api)["active_count"] >= 1, 30, message="a call holding a permit")
    assert queue_info(api)["max_concurrency"] == 3  # the worker configured the limiter from the env

    done = status_when(api, task_id, "completed")
    assert (done["position"], done["error"]) == (0, None)
    result = done["result"]
    assert result["provider"] == "cloud" and result["model"] is not None
    video = httpx.get(result["video_url"], timeout=10)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    status_when(api, slow["task_id"], "completed")
    assert queue_info(api) == {"queue_length": 0, "active_count": 0, "max_concurrency": 3}

    # Any other upstream error, on every attempt (the kind has 3), fails the task, the
    # reason in ``error``.
    fault = {"code": "InvalidParameterValue", "message": "bad prompt (stand-in)", "count": 3}
    httpx.post(f"{deployment.standin.url}/admin/faults", json=fault).raise_for_status()
    failed = create(api)
    bad = status_when(api, failed["task_id"], "failed")
    assert bad["result"] is None and "InvalidParameterValue" in bad["error"]


def test_a_cancelled_task_reads_failed(deployment: Deployment) -> None:
    api = deployment.api
    # Slow, so that if a worker took it first, it is stopped rather than completed.
    created = create(api, CREATE_BODY.replace("一个小男孩", "[slow] 一个小男孩"))
    api.post(f"/v1/tasks/{created['task_id']}/cancel").raise_for_status()
    status = status_when(api, created["task_id"], "failed")
    assert (status["position"], status["result"]) == (0, None)
    assert status["error"].startswith("cancelled")  # "cancelled while running" if it started


def test_bad_input_is_refused_naming_the_seeds_field(deployment: Deployment) -> None:
    api = deployment.api
    cases = [
        ('{"model_name": "Hailuo"}', "prompt"),
        (CREATE_BODY.replace('"duration": 6', '"duration": 7'), "duration"),
        (CREATE_BODY.replace("768P", "4K"), "resolution"),
        (CREATE_BODY.replace('"Hailuo"', '"Hai luo!"'), "model_name"),
        (CREATE_BODY.replace('"一个小男孩在街上跑步"', '"  "'), "prompt"),
        ("{not json", "body"),
    ]
    for body, field in cases:
        response = api.post(
            "/aigc/create", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, (body, response.text)
        assert [f["field"] for f in response.json()["fields"]] == [field], response.text
    missing = api.get("/aigc/status/550e8400-e29b-41d4-a716-446655440000")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    image = api.post("/v1/tasks", json={"kind": "image.generate", "payload": {"prompt": "x"}})
    assert api.get(f"/aigc/status/{image.json()['id']}").status_code == 404


def test_health_and_both_api_documents_serve(deployment: Deployment) -> None:
    api = deployment.api
    assert api.get("/health").json()["status"] == "ok"
    for path in ("/docs", "/redoc"):
        page = api.get(path)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    spec = api.get("/openapi.json").json()
    for path in ("/aigc/create", "/aigc/status/{task_id}", "/aigc/queue/info"):
        assert [TAG] in [op["tags"] for op in spec["paths"][path].values()]


def test_the_adapter_can_be_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENQUEUE_COMPAT__AIGC", "false")
    paths = create_app(load_settings(data_dir=tmp_path)).openapi()["paths"]
    assert "/aigc/create" not in paths and "/create-queue" in paths
