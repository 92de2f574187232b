"""Quotas and back-pressure end to end, on every store: a real API with GENQUEUE_AUTH=on and
GENQUEUE_QUEUE_LIMITS={"q": 2}, keys made with the CLI and over /v1/keys. Past a key's tasks
per minute, its tasks in flight or a queue's bound, a submit answers 429 with Retry-After
and a body naming the limit, and stores nothing; once a worker drains the queue, submits are
accepted again."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from genqueue import Client, QuotaExceededError
from genqueue.api.quotas import RETRY_MAX_S, RETRY_MIN_S, WINDOW_S
from tests.helpers import Cluster, cli, cli_key, json_of, unique_name, wait_until

pytestmark = pytest.mark.system

BOUNDED = "q"


@dataclass
class Deployment:
    cluster: Cluster
    admin: httpx.Client

    def client(self, key: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.cluster.url, headers=headers, timeout=30)


@pytest.fixture(scope="module", params=["sqlite", "redis", "postgres"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    env = {"GENQUEUE_AUTH": "on", "GENQUEUE_QUEUE_LIMITS": json.dumps({BOUNDED: 2})}
    cluster = Cluster(tmp_path_factory.mktemp("quotas"), extra_env=env, backend=request.param)
    try:
        cluster.start_api()
        admin_key = cli_key(cluster, "root", "admin")
        with httpx.Client(
            base_url=cluster.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
        ) as admin:
            yield Deployment(cluster, admin)
    finally:
        cluster.stop()


def task(queue: str) -> dict[str, Any]:
    return {"kind": "debug.echo", "payload": {"n": 1}, "queue": queue}


def refused(response: httpx.Response, limit: str) -> dict[str, Any]:
    """The body of a 429 for ``limit``, its Retry-After checked."""
    body = json_of(response, 429)
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit() and RETRY_MIN_S <= int(retry_after) <= RETRY_MAX_S
    assert body["error"] == "quota_exceeded" and body["limit"] == limit, body
    assert body["retry_after_s"] == int(retry_after)
    return body


def json_of_list(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    return items


def stored(client: httpx.Client, **filters: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json_of(client.get("/v1/tasks", params=filters))["items"]
    return items


def test_past_tasks_per_minute_the_fourth_is_refused_and_not_stored(
    deployment: Deployment,
) -> None:
    user = unique_name("ann")
    out = cli(
        deployment.cluster, "keys", "create", "--user", user, "--role", "user",
        "--tasks-per-minute", "3",
    )  # fmt: skip
    [key] = [line for line in out.splitlines() if line.startswith("gq_")]
    [listed] = [k for k in json_of_list(deployment.admin.get("/v1/keys")) if k["user"] == user]
    assert (listed["tasks_per_minute"], listed["in_flight"]) == (3, None)
    # Four submits inside one window: start them well before the minute turns.
    wait_until(lambda: time.time() % WINDOW_S < WINDOW_S - 15, WINDOW_S, 0.2, "a fresh minute")
    queue = unique_name("held")
    with deployment.client(key) as ann:
        for _ in range(3):
            json_of(ann.post("/v1/tasks", json=task(queue)), 201)
        response = ann.post("/v1/tasks", json=task(queue))
        body = refused(response, "tasks_per_minute")
        assert (body["allowed"], body["current"], body["requested"]) == (3, 3, 1)
        assert int(response.headers["Retry-After"]) <= WINDOW_S
        assert len(stored(ann)) == 3
    with (
        Client(deployment.cluster.url, api_key=key) as client,
        pytest.raises(QuotaExceededError) as caught,
    ):
        client.submit("debug.echo", {"n": 1}, queue=queue)
    assert caught.value.limit == "tasks_per_minute"
    assert RETRY_MIN_S <= caught.value.retry_after_s <= WINDOW_S
    metrics = deployment.admin.get("/metrics").text
    assert 'genqueue_quota_refusals_total{limit="tasks_per_minute"}' in metrics


def test_past_in_flight_the_third_is_refused_while_nothing_runs(deployment: Deployment) -> None:
    user = unique_name("bob")
    made = deployment.admin.post("/v1/keys", json={"user": user, "role": "user", "in_flight": 2})
    created = json_of(made, 201)
    assert (created["in_flight"], created["tasks_per_minute"]) == (2, None)
    queue = unique_name("held")  # no worker serves it: nothing leaves flight
    with deployment.client(created["key"]) as bob:
        for _ in range(2):
            json_of(bob.post("/v1/tasks", json=task(queue)), 201)
        body = refused(bob.post("/v1/tasks", json=task(queue)), "in_flight")
        assert (body["allowed"], body["current"], body["requested"]) == (2, 2, 1)
        batch = bob.post("/v1/batches", json={"tasks": [task(queue)]})
        refused(batch, "in_flight")
        assert len(stored(bob)) == 2
        assert json_of(bob.get("/v1/batches"))["items"] == []


def test_a_bounded_queue_refuses_past_its_bound_and_takes_again_once_drained(
    deployment: Deployment,
) -> None:
    user = unique_name("cy")
    key = json_of(deployment.admin.post("/v1/keys", json={"user": user, "role": "user"}), 201)
    with deployment.client(key["key"]) as cy:
        for _ in range(2):
            json_of(cy.post("/v1/tasks", json=task(BOUNDED)), 201)
        body = refused(cy.post("/v1/tasks", json=task(BOUNDED)), "queue")
        assert (body["queue"], body["allowed"], body["current"]) == (BOUNDED, 2, 2)
        batch = cy.post("/v1/batches", json={"tasks": [task(BOUNDED)] * 3})
        assert refused(batch, "queue")["requested"] == 3
        assert len(stored(cy, queue=BOUNDED)) == 2  # the batch stored nothing
        assert json_of(cy.get("/v1/batches"))["items"] == []

        deployment.cluster.start_worker(queues=BOUNDED)

        def accepted(path: str, body: dict[str, Any]) -> dict[str, Any] | None:
            response = cy.post(path, json=body)
            return None if response.status_code == 429 else json_of(response, 201)

        wait_until(lambda: accepted("/v1/tasks", task(BOUNDED)), 60, 0.2, "a task taken again")
        two = {"tasks": [task(BOUNDED)] * 2}
        wait_until(lambda: accepted("/v1/batches", two), 60, 0.2, "a batch taken again")
