"""The task lifecycle end to end: real API and worker processes, through the Python client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from genqueue import AsyncClient, Client, TaskStatus
from genqueue.api.schemas import TaskPublic
from genqueue.backends import open_store
from genqueue.models import WorkerStatus
from genqueue.settings import Settings
from tests.helpers import Cluster, wait_until, worker_info

pytestmark = pytest.mark.system


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Client]:
    with Client(cluster.url) as c:
        yield c


def wait_status(
    client: Client, task_id: str, status: TaskStatus, timeout_s: float = 20
) -> TaskPublic:
    def reached() -> TaskPublic | None:
        task = client.get(task_id)
        return task if task.status == status else None

    return wait_until(reached, timeout_s, 0.05, f"task {task_id} to be {status}")


def test_task_runs_to_success_with_result_and_timings(cluster: Cluster, client: Client) -> None:
    cluster.start_worker()
    task = client.submit("debug.echo", {"hello": "world"}, user="ann")
    assert task.status == TaskStatus.QUEUED and task.position == 1
    assert task.links.wait == f"/v1/tasks/{task.id}/wait"
    done = client.wait(task.id, timeout_s=20)
    assert done.status == TaskStatus.SUCCEEDED
    assert done.result == {"hello": "world"}
    assert done.attempts == 1 and done.worker_id
    assert done.created_at <= done.started_at <= done.finished_at  # type: ignore[operator]
    assert [t.id for t in client.list_tasks(user="ann").items] == [task.id]


def test_events_stream_snapshot_progress_and_outcome(cluster: Cluster, client: Client) -> None:
    task = client.submit("debug.sleep", {"seconds": 0.6, "steps": 3})
    seen: list[str] = []
    fractions: list[float] = []
    cluster.start_worker()
    for event in client.events(task_id=task.id):
        seen.append(event.event)
        if event.event == "task.progress":
            fractions.append(event.data["data"]["fraction"])
        if event.event == "task.succeeded":
            break
    assert seen[0] == "snapshot"
    assert "task.started" in seen and seen[-1] == "task.succeeded"
    assert fractions and fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)


def test_same_idempotency_key_returns_the_same_task(cluster: Cluster) -> None:
    body = {"kind": "debug.echo", "payload": {"n": 1}}
    headers = {"Idempotency-Key": "order-42"}
    first = httpx.post(f"{cluster.url}/v1/tasks", json=body, headers=headers)
    second = httpx.post(f"{cluster.url}/v1/tasks", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert len(httpx.get(f"{cluster.url}/v1/tasks").json()["items"]) == 1


def test_failing_task_is_retried_with_backoff_then_succeeds(
    cluster: Cluster, client: Client
) -> None:
    cluster.start_worker()
    task = client.submit("debug.fail", {"fail_times": 2})
    done = client.wait(task.id, timeout_s=30)
    assert done.status == TaskStatus.SUCCEEDED
    assert done.result == {"succeeded_on_attempt": 3} and done.attempts == 3
    # Backoff of debug.fail: at least 0.1 s after attempt 1 and 0.2 s after attempt 2.
    assert done.finished_at and done.created_at
    assert (done.finished_at - done.created_at).total_seconds() >= 0.3


def test_task_failing_every_attempt_ends_failed_with_the_error(
    cluster: Cluster, client: Client
) -> None:
    cluster.start_worker()
    done = client.wait(client.submit("debug.fail", {"message": "nope"}).id, timeout_s=30)
    assert done.status == TaskStatus.FAILED and done.attempts == 3
    assert done.error == "RuntimeError: nope (attempt 3)"


def test_timeout_fails_the_run_and_is_retried_per_policy(cluster: Cluster, client: Client) -> None:
    cluster.start_worker()
    done = client.wait(client.submit("debug.hang", {"seconds": 30}).id, timeout_s=30)
    assert done.status == TaskStatus.FAILED and done.attempts == 2
    assert done.error == "timed out after 1 s"


def test_cancelled_queued_task_never_starts(cluster: Cluster, client: Client) -> None:
    doomed = client.submit("debug.echo", {"n": 1})
    assert client.cancel(doomed.id).status == TaskStatus.CANCELLED
    cluster.start_worker()
    after = client.submit("debug.echo", {"n": 2})
    assert client.wait(after.id, timeout_s=20).status == TaskStatus.SUCCEEDED
    final = client.get(doomed.id)
    assert final.status == TaskStatus.CANCELLED and final.started_at is None
    assert final.attempts == 0


@pytest.mark.parametrize("kind", ["debug.sleep", "debug.spin"])
def test_cancelled_running_task_is_stopped(cluster: Cluster, client: Client, kind: str) -> None:
    """debug.sleep is async (cancelled cooperatively); debug.spin burns CPU in a pool process
    that never checks, so only a hard stop ends it."""
    cluster.start_worker()
    task = client.submit(kind, {"seconds": 120})
    wait_status(client, task.id, TaskStatus.RUNNING)
    assert client.cancel(task.id).cancel_requested
    done = client.wait(task.id, timeout_s=15)
    assert done.status == TaskStatus.CANCELLED
    # The worker (and its process pool) is still healthy.
    again = client.submit(kind, {"seconds": 0.2})
    assert client.wait(again.id, timeout_s=30).status == TaskStatus.SUCCEEDED


def test_queue_position_follows_priority_then_age(client: Client) -> None:
    a = client.submit("debug.echo", {"n": "a"})
    b = client.submit("debug.echo", {"n": "b"})
    urgent = client.submit("debug.echo", {"n": "urgent"}, priority=10)
    assert [client.get(t.id).position for t in (urgent, a, b)] == [1, 2, 3]


def test_batch_reports_counts_and_cancels_what_is_left(cluster: Cluster, client: Client) -> None:
    batch = client.submit_batch(
        [{"kind": "debug.echo", "payload": {"i": i}} for i in range(3)], user="bob"
    )
    assert batch.size == 3 and batch.counts[TaskStatus.QUEUED] == 3 and len(batch.task_ids) == 3
    cancelled = client.cancel_batch(batch.id)
    assert cancelled.counts[TaskStatus.CANCELLED] == 3 and cancelled.finished
    second = client.submit_batch([{"kind": "debug.echo", "payload": {"i": i}} for i in range(5)])
    cluster.start_worker()
    wait_until(lambda: client.get_batch(second.id).finished, 20, 0.05, "batch to finish")
    assert client.get_batch(second.id).counts[TaskStatus.SUCCEEDED] == 5
    listed = httpx.get(f"{cluster.url}/v1/batches", params={"user": "bob"}).json()
    assert [b["id"] for b in listed["items"]] == [batch.id] and listed["next_cursor"] is None
    assert listed["items"][0]["counts"]["cancelled"] == 3
    newest = httpx.get(f"{cluster.url}/v1/batches", params={"limit": 1}).json()
    assert [b["id"] for b in newest["items"]] == [second.id] and newest["next_cursor"] == second.id
    bad = httpx.get(f"{cluster.url}/v1/batches", params={"limit": 0})
    assert bad.status_code == 422 and "limit" in bad.text


def test_worker_registry_shows_online_then_stopped(cluster: Cluster, client: Client) -> None:
    proc = cluster.start_worker(name="registry-probe", concurrency=3, queues="debug")

    def probe_status() -> str | None:
        found = [w for w in client.workers() if w.name == "registry-probe"]
        return found[0].status if found else None

    wait_until(lambda: probe_status() == "online", 20, 0.05, "worker online")
    [info] = [w for w in client.workers() if w.name == "registry-probe"]
    assert info.queues == ["debug"] and info.concurrency == 3
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert probe_status() == "stopped"


async def test_degraded_worker_shows_in_workers_metrics_and_cli(
    cluster: Cluster, settings: Settings
) -> None:
    # Written through the store the API reads, as a worker whose broker is down would beat,
    # beating on while the test looks (a silent one goes offline within seconds here).
    reason = "broker unreachable since 12:01:02: Redis: Connection refused"
    store = await open_store(cluster.store_url, settings)

    done = asyncio.Event()

    async def beat() -> None:
        while not done.is_set():
            await store.heartbeat_worker("w-degraded", [], 0, 0, degraded=reason)
            with contextlib.suppress(TimeoutError):  # next beat, or the test is done
                await asyncio.wait_for(done.wait(), settings.heartbeat_s)

    await store.register_worker(worker_info("w-degraded", ("debug",)))
    await store.heartbeat_worker("w-degraded", [], 0, 0, degraded=reason)
    beating = asyncio.create_task(beat())
    try:
        async with AsyncClient(cluster.url) as client:
            [info] = [w for w in await client.workers() if w.id == "w-degraded"]
        assert (info.status, info.reason) == (WorkerStatus.DEGRADED, reason)
        async with httpx.AsyncClient(base_url=cluster.url) as http:
            metrics = (await http.get("/metrics")).text
        assert 'genqueue_workers{status="degraded"} 1.0' in metrics
        assert 'genqueue_workers{status="online"} 0.0' in metrics
        command = [sys.executable, "-m", "genqueue", "workers", "--url", cluster.url]
        table = (
            await asyncio.to_thread(
                subprocess.run,
                command,
                env={**os.environ, "COLUMNS": "250"},
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            )
        ).stdout
        assert "degraded" in table and reason in table, table
    finally:
        done.set()
        await beating
        await store.aclose()


def test_queues_and_health_and_metrics(cluster: Cluster, client: Client) -> None:
    client.submit("debug.echo", {})
    queues = {q.name: q for q in client.queues()}
    assert queues["debug"].counts[TaskStatus.QUEUED] == 1 and queues["debug"].depth == 1
    assert "image.generate" in queues["image"].kinds
    assert client.health()["status"] == "ok"
    metrics = httpx.get(f"{cluster.url}/metrics").text
    assert 'genqueue_tasks{queue="debug",status="queued"} 1.0' in metrics
