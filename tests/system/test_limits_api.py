"""Shared limits of upstream resources through the HTTP API, /metrics, the Python client and
the CLI: what workers configured, permits held, tasks parked for one."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from genqueue import AsyncClient, Client, TaskStatus
from genqueue.backends import open_store
from genqueue.errors import TaskNotFoundError
from genqueue.settings import LimitSettings, load_settings
from tests.helpers import Cluster, wait_until
from tests.limited_kinds import RESOURCE
from tests.servers import PrivateRedis

pytestmark = pytest.mark.system

# Configured straight in the store, as a worker serving their kinds would at start.
POLICIES = {
    "upstream-b": LimitSettings(start=3, min=1, max=5),
    "upstream-a": LimitSettings(min=2, max=4),
}


def configure(cluster: Cluster, policies: dict[str, LimitSettings], url: str = "") -> None:
    """Configure limiters in the cluster's store (or the one at ``url``)."""

    async def run() -> None:
        settings = load_settings(data_dir=cluster.data_dir)
        store = await open_store(url or cluster.store_url, settings)
        try:
            await store.configure_limits(policies)
        finally:
            await store.aclose()

    asyncio.run(run())


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """An API (no worker) on a store with two limiters configured."""
    cluster = Cluster(tmp_path_factory.mktemp("limits"))
    cluster.start_api()
    try:
        configure(cluster, POLICIES)
        yield cluster
    finally:
        cluster.stop()


def get(cluster: Cluster, path: str) -> httpx.Response:
    return httpx.get(f"{cluster.url}{path}", timeout=10)


def test_limits_lists_every_limiter_by_resource(limited: Cluster) -> None:
    response = get(limited, "/v1/limits")
    assert response.status_code == 200, response.text
    a, b = response.json()
    assert (a["resource"], b["resource"]) == ("upstream-a", "upstream-b")
    assert (a["limit"], a["permits"], a["min"], a["max"]) == (4, 4, 2, 4)  # starts at max
    assert (b["limit"], b["permits"], b["min"], b["max"]) == (3, 3, 1, 5)
    for status in (a, b):
        assert (status["in_flight"], status["waiting"], status["cuts"]) == (0, 0, 0)
        assert (status["throttles"], status["blocked_until"], status["last_cut_at"]) == (
            0,
            None,
            None,
        )
        assert [c["reason"] for c in status["history"]] == ["start"]


def test_one_limit_by_resource_and_404_when_unknown(limited: Cluster) -> None:
    one = get(limited, "/v1/limits/upstream-b")
    assert one.status_code == 200 and one.json() == get(limited, "/v1/limits").json()[1]
    missing = get(limited, "/v1/limits/nothing-here")
    assert missing.status_code == 404
    body = missing.json()
    assert set(body) == {"error", "message", "fields"} and body["error"] == "not_found"
    assert "nothing-here" in body["message"]


def test_limits_are_in_the_openapi_with_their_models(limited: Cluster) -> None:
    paths = get(limited, "/openapi.json").json()["paths"]

    def schema(path: str, code: str) -> dict[str, Any]:
        content: dict[str, Any] = paths[path]["get"]["responses"][code]["content"]
        return content["application/json"]["schema"]  # type: ignore[no-any-return]

    assert schema("/v1/limits", "200")["items"]["$ref"].endswith("/LimitStatus")
    assert schema("/v1/limits/{resource}", "200")["$ref"].endswith("/LimitStatus")
    assert schema("/v1/limits/{resource}", "404")["$ref"].endswith("/ErrorBody")


def test_metrics_have_the_limit_gauges(limited: Cluster) -> None:
    metrics = get(limited, "/metrics").text
    for line in (
        'genqueue_limit{resource="upstream-a"} 4.0',
        'genqueue_limit{resource="upstream-b"} 3.0',
        'genqueue_limit_permits{resource="upstream-b"} 3.0',
        'genqueue_limit_in_flight{resource="upstream-b"} 0.0',
        'genqueue_limit_waiting{resource="upstream-b"} 0.0',
        'genqueue_limit_cuts_total{resource="upstream-b"} 0.0',
        'genqueue_limit_throttles_total{resource="upstream-b"} 0.0',
        'genqueue_limit_blocked{resource="upstream-b"} 0.0',
    ):
        assert line in metrics, line


async def test_clients_read_limits(limited: Cluster) -> None:
    with Client(limited.url) as client:
        assert [s.resource for s in client.limits()] == ["upstream-a", "upstream-b"]
        assert client.limit("upstream-b").permits == 3
        with pytest.raises(TaskNotFoundError):
            client.limit("nothing-here")
    async with AsyncClient(limited.url) as client:
        assert [s.resource for s in await client.limits()] == ["upstream-a", "upstream-b"]
        assert (await client.limit("upstream-a")).limit == 4


def test_cli_limits_prints_a_line_per_resource(limited: Cluster) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "genqueue", "limits", "--url", limited.url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**limited.env, "COLUMNS": "200"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = {line.split()[1]: line for line in run.stdout.splitlines() if "upstream-" in line}
    assert list(lines) == ["upstream-a", "upstream-b"]
    cells = [cell.strip() for cell in lines["upstream-b"].split("│")[2:8]]
    assert cells == ["3 (1-5)", "3", "0", "0", "0", "-"]


def test_a_worker_configures_the_limits_of_its_kinds(cluster: Cluster) -> None:
    assert get(cluster, "/v1/limits").json() == []
    cluster.start_worker()

    def configured() -> bool:
        return get(cluster, "/v1/limits/video-cloud").status_code == 200

    wait_until(configured, 15, 0.05, "the worker to configure video-cloud")
    status = get(cluster, "/v1/limits/video-cloud").json()
    assert status["min"] <= status["limit"] <= status["max"] and status["permits"] >= 1


def test_a_task_over_the_limit_waits_for_a_permit(tmp_path: Path) -> None:
    one_permit = json.dumps({RESOURCE: {"start": 1, "min": 1, "max": 1}})
    cluster = Cluster(tmp_path, extra_env={"GENQUEUE_LIMITS": one_permit})
    kinds = "tests.limited_kinds"
    try:
        cluster.start_api(["--kinds", kinds])
        cluster.start_worker(queues="gated", kinds=kinds, concurrency=4)
        gate = tmp_path / "gate"
        with Client(cluster.url) as client:
            ids = [client.submit("test.gated", {"gate": str(gate)}).id for _ in range(2)]

            def one_runs_one_waits() -> bool:
                response = get(cluster, f"/v1/limits/{RESOURCE}")
                if response.status_code != 200:
                    return False
                status = response.json()
                return bool(status["in_flight"] == 1 and status["waiting"] == 1)

            wait_until(one_runs_one_waits, 15, 0.05, "one task running, one parked")
            tasks = {t.status: t for t in (client.get(i) for i in ids)}
            running, parked = tasks[TaskStatus.RUNNING], tasks[TaskStatus.QUEUED]
            assert (running.resource, running.waiting_for) == (RESOURCE, None)
            assert (parked.resource, parked.waiting_for) == (RESOURCE, RESOURCE)
            metrics = get(cluster, "/metrics").text
            assert f'genqueue_limit_in_flight{{resource="{RESOURCE}"}} 1.0' in metrics
            assert f'genqueue_limit_waiting{{resource="{RESOURCE}"}} 1.0' in metrics
            assert f'genqueue_limit_permits{{resource="{RESOURCE}"}} 1.0' in metrics
            gate.touch()
            for task_id in ids:
                assert client.wait(task_id, timeout_s=15).status == TaskStatus.SUCCEEDED
            status = client.limit(RESOURCE)
            assert (status.in_flight, status.waiting) == (0, 0)
            assert client.get(parked.id).waiting_for is None
    finally:
        cluster.stop()


@pytest.fixture(params=["redis", "postgres"])
def other_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """An API on each store other than SQLite (which the tests above use)."""
    cluster = Cluster(tmp_path, backend=request.param)
    cluster.start_api()
    yield cluster
    cluster.stop()


def test_limits_read_the_same_on_every_store(other_store: Cluster) -> None:
    configure(other_store, POLICIES)
    a, b = get(other_store, "/v1/limits").json()
    assert (a["resource"], a["limit"], b["resource"], b["limit"]) == (
        "upstream-a",
        4,
        "upstream-b",
        3,
    )
    assert get(other_store, "/v1/limits/upstream-b").json() == b
    assert get(other_store, "/v1/limits/nothing-here").status_code == 404
    assert 'genqueue_limit{resource="upstream-a"} 4.0' in get(other_store, "/metrics").text


def test_limits_answer_503_while_the_store_is_down(tmp_path: Path) -> None:
    with PrivateRedis(tmp_path / "redis") as server:
        urls = {"GENQUEUE_STORE": server.url, "GENQUEUE_BROKER": server.url}
        cluster = Cluster(tmp_path, extra_env=urls)
        try:
            cluster.start_api()
            configure(cluster, POLICIES, server.url)
            assert get(cluster, "/v1/limits").status_code == 200
            server.kill()
            for path in ("/v1/limits", "/v1/limits/upstream-a"):
                response = get(cluster, path)
                assert response.status_code == 503, response.text
                assert response.json()["error"] == "backend_unavailable"
                assert "Redis" in response.json()["message"]
                assert int(response.headers["Retry-After"]) > 0
            server.start()

            def answering() -> bool:
                return get(cluster, "/v1/limits/upstream-a").status_code == 200

            wait_until(answering, 15, 0.1, "/v1/limits to answer again")
        finally:
            cluster.stop()
