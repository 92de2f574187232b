"""Delayed, scheduled and deadline tasks through the HTTP API, the Python client and the CLI:
``delay_s`` / ``run_at`` (not before), ``start_by`` (expires if not started by then) and
``cancel_after_s``; bad values are a 422 naming the field, with nothing stored."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from genqueue import Client, TaskStatus
from genqueue.errors import InvalidInputError
from genqueue.models import utcnow
from tests.helpers import Cluster, wait_until
from tests.system.test_bad_input import assert_error, snapshot

pytestmark = pytest.mark.system

Body = dict[str, Any] | str  # a str is sent as the raw JSON text


def at(seconds_from_now: float) -> str:
    return (utcnow() + timedelta(seconds=seconds_from_now)).isoformat()


def same_instant(a: datetime | str | None, b: datetime) -> bool:
    """Equal to the millisecond: stores keep times as float epoch seconds."""
    moment = datetime.fromisoformat(a) if isinstance(a, str) else a
    return moment is not None and abs((moment - b).total_seconds()) < 0.001


def echo(**fields: Any) -> dict[str, Any]:
    return {"kind": "debug.echo", "payload": {"n": 1}, **fields}


# name -> (request body, built when the test runs; the fields a 422 names)
BAD: dict[str, tuple[Callable[[], Body], list[str]]] = {
    "delay-negative": (lambda: echo(delay_s=-1), ["delay_s"]),
    "delay-not-a-number": (lambda: echo(delay_s="soon"), ["delay_s"]),
    "delay-nan": (lambda: '{"kind": "debug.echo", "delay_s": NaN}', ["delay_s"]),
    "delay-beyond-30-days": (lambda: echo(delay_s=31 * 86400), ["delay_s"]),
    "run-at-without-zone": (lambda: echo(run_at="2030-01-01T12:00:00"), ["run_at"]),
    "run-at-not-a-time": (lambda: echo(run_at="tomorrow"), ["run_at"]),
    "run-at-beyond-30-days": (lambda: echo(run_at=at(31 * 86400)), ["run_at"]),
    "delay-and-run-at": (lambda: echo(delay_s=5, run_at=at(5)), ["delay_s", "run_at"]),
    "start-by-past": (lambda: echo(start_by=at(-60)), ["start_by"]),
    "start-by-without-zone": (lambda: echo(start_by="2030-01-01T12:00:00"), ["start_by"]),
    "start-by-before-run-at": (lambda: echo(run_at=at(120), start_by=at(60)), ["start_by"]),
    "start-by-before-the-delay-ends": (lambda: echo(delay_s=120, start_by=at(60)), ["start_by"]),
    "cancel-after-zero": (lambda: echo(cancel_after_s=0), ["cancel_after_s"]),
    "cancel-after-negative": (lambda: echo(cancel_after_s=-5), ["cancel_after_s"]),
    "cancel-after-not-a-number": (lambda: echo(cancel_after_s="long"), ["cancel_after_s"]),
}


@pytest.fixture(scope="module")
def cluster_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, httpx.Client]]:
    """One API, no worker, holding one queued task so the store is never empty."""
    cluster = Cluster(tmp_path_factory.mktemp("deadlines"))
    cluster.start_api()
    try:
        with httpx.Client(base_url=cluster.url, timeout=30) as client:
            assert client.post("/v1/tasks", json=echo()).status_code == 201
            yield cluster, client
    finally:
        cluster.stop()


@pytest.fixture
def api(cluster_api: tuple[Cluster, httpx.Client]) -> httpx.Client:
    return cluster_api[1]


def post(api: httpx.Client, path: str, body: Body) -> httpx.Response:
    if isinstance(body, str):
        return api.post(path, content=body, headers={"Content-Type": "application/json"})
    return api.post(path, json=body)


@pytest.mark.parametrize("case", BAD)
def test_a_bad_deadline_is_refused_naming_its_field(api: httpx.Client, case: str) -> None:
    build, fields = BAD[case]
    before = snapshot(api)
    assert_error(post(api, "/v1/tasks", build()), 422, "invalid_request", fields)
    assert snapshot(api) == before


@pytest.mark.parametrize("case", BAD)
def test_a_bad_deadline_refuses_the_whole_batch(api: httpx.Client, case: str) -> None:
    build, fields = BAD[case]
    body = build()
    batch: Body
    if isinstance(body, str):  # raw JSON text (NaN): splice it in as the second task
        batch = f'{{"tasks": [{json.dumps(echo())}, {body}]}}'
    else:
        batch = {"tasks": [echo(), body]}
    before = snapshot(api)
    response = post(api, "/v1/batches", batch)
    assert_error(response, 422, "invalid_request", [f"tasks.1.{f}" for f in fields])
    assert snapshot(api) == before


def test_deadline_fields_show_in_task_responses(api: httpx.Client) -> None:
    run_at = datetime.now(timezone(timedelta(hours=2))) + timedelta(hours=1)
    start_by = run_at + timedelta(hours=1)
    body = echo(run_at=run_at.isoformat(), start_by=start_by.isoformat(), cancel_after_s=30)
    created = api.post("/v1/tasks", json=body)
    assert created.status_code == 201, created.text
    task = created.json()
    # The same instants, told in UTC.
    assert task["not_before"].endswith("Z") and same_instant(task["not_before"], run_at)
    assert task["start_by"].endswith("Z") and same_instant(task["start_by"], start_by)
    assert task["cancel_after_s"] == 30
    assert (task["status"], task["resource"], task["waiting_for"]) == ("queued", None, None)
    assert api.get(f"/v1/tasks/{task['id']}").json() == task


def test_a_run_at_in_the_past_means_now(api: httpx.Client) -> None:
    earlier = utcnow() - timedelta(minutes=5)
    created = api.post("/v1/tasks", json=echo(run_at=earlier.isoformat()))
    assert created.status_code == 201, created.text
    assert same_instant(created.json()["not_before"], earlier)


def test_the_client_sends_deadlines_and_batch_defaults(api: httpx.Client) -> None:
    with Client(str(api.base_url)) as client:
        start_by = utcnow() + timedelta(hours=2)
        task = client.submit("debug.echo", {}, delay_s=600, start_by=start_by, cancel_after_s=9)
        assert task.not_before is not None and same_instant(task.start_by, start_by)
        assert 590 < (task.not_before - task.created_at).total_seconds() <= 600
        assert task.cancel_after_s == 9
        with pytest.raises(InvalidInputError) as info:
            client.submit("debug.echo", {}, run_at=datetime(2030, 1, 1, 12))  # no zone
        assert [p.field for p in info.value.problems] == ["run_at"]
        # The batch's delay is every task's default; a task's own run_at replaces it.
        own = utcnow() + timedelta(hours=1)
        batch = client.submit_batch(
            [{"kind": "debug.echo"}, {"kind": "debug.echo", "run_at": own}],
            delay_s=300,
            cancel_after_s=7,
        )
        first, second = (client.get(task_id) for task_id in batch.task_ids)
        assert first.not_before is not None and same_instant(second.not_before, own)
        assert 290 < (first.not_before - first.created_at).total_seconds() <= 300
        assert first.cancel_after_s == second.cancel_after_s == 7


def test_cli_submit_takes_delay_start_by_and_cancel_after(
    cluster_api: tuple[Cluster, httpx.Client],
) -> None:
    cluster, api = cluster_api
    command = [sys.executable, "-m", "genqueue", "submit", "debug.echo", "cli=yes"]
    options = ["--delay", "30s", "--start-by", "10m", "--cancel-after", "5", "--url", cluster.url]
    run = subprocess.run(
        [*command, *options], capture_output=True, text=True, timeout=60, env=cluster.env
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "queued" in run.stdout and "not before" in run.stdout
    [task] = [t for t in snapshot(api)[0] if t["payload"] == {"cli": "yes"}]
    created = datetime.fromisoformat(task["created_at"])
    assert 25 < (datetime.fromisoformat(task["not_before"]) - created).total_seconds() <= 30
    assert 590 < (datetime.fromisoformat(task["start_by"]) - created).total_seconds() <= 600
    assert task["cancel_after_s"] == 5
    bad = subprocess.run(
        [*command, "--start-by", "teatime", "--url", cluster.url],
        capture_output=True,
        text=True,
        timeout=60,
        env=cluster.env,
    )
    assert bad.returncode == 2 and "--start-by" in bad.stderr, bad.stderr


def test_a_delayed_task_does_not_start_before_its_time(cluster: Cluster) -> None:
    cluster.start_worker()
    with Client(cluster.url) as client:
        # The worker is up and running tasks before the delayed one is submitted.
        warm = client.wait(client.submit("debug.echo", {"warm": True}).id, timeout_s=20)
        assert warm.status == TaskStatus.SUCCEEDED
        delayed = client.submit("debug.echo", {"late": True}, delay_s=1.5)
        assert delayed.not_before is not None
        assert 1.4 < (delayed.not_before - delayed.created_at).total_seconds() <= 1.5
        # A task submitted after it runs at once: the worker is free, the delay holds it back.
        prompt = client.wait(client.submit("debug.echo", {"prompt": True}).id, timeout_s=10)
        assert prompt.status == TaskStatus.SUCCEEDED
        done = client.wait(delayed.id, timeout_s=10)
        assert done.status == TaskStatus.SUCCEEDED, done
        assert done.started_at is not None and done.started_at >= delayed.not_before


def test_a_task_nobody_starts_by_its_deadline_expires(cluster: Cluster) -> None:
    with Client(cluster.url) as client:
        start_by = utcnow() + timedelta(seconds=1)
        task = client.submit("debug.echo", {"alone": True}, start_by=start_by)
        batch = client.submit_batch(
            [{"kind": "debug.echo"}, {"kind": "debug.echo"}], start_by=start_by
        )
        # No worker: the API's sweeper expires them; wait answers once they are finished.
        done = client.wait(task.id, timeout_s=10)
        assert done.status == TaskStatus.EXPIRED, done
        assert done.started_at is None and done.finished_at is not None
        assert done.finished_at >= start_by
        wait_until(lambda: client.get_batch(batch.id).finished, 10, 0.05, "the batch to expire")
        counts = client.get_batch(batch.id).counts
        assert counts[TaskStatus.EXPIRED] == 2 and counts[TaskStatus.QUEUED] == 0
        listed = client.list_tasks(status="expired").items
        assert {t.id for t in listed} == {task.id, *batch.task_ids}
        assert all(t.status == TaskStatus.EXPIRED for t in listed)
        [debug] = [q for q in client.queues() if q.name == "debug"]
        assert debug.counts[TaskStatus.EXPIRED] == 3
    metrics = httpx.get(f"{cluster.url}/metrics", timeout=10).text
    assert 'genqueue_tasks{queue="debug",status="expired"} 3.0' in metrics


@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_a_task_expires_on_every_store(tmp_path: Path, backend: str) -> None:
    cluster = Cluster(tmp_path, backend=backend)
    try:
        cluster.start_api()
        with Client(cluster.url) as client:
            start_by = utcnow() + timedelta(seconds=1)
            task = client.submit("debug.echo", {}, delay_s=0.5, start_by=start_by)
            assert task.not_before is not None and same_instant(task.start_by, start_by)
            assert client.wait(task.id, timeout_s=10).status == TaskStatus.EXPIRED
            assert [t.id for t in client.list_tasks(status="expired").items] == [task.id]
            [debug] = [q for q in client.queues() if q.name == "debug"]
            assert debug.counts[TaskStatus.EXPIRED] == 1
    finally:
        cluster.stop()
