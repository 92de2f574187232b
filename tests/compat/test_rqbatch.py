"""Seed 001 (batch image backend, Redis + RQ) keeps its clients: its five endpoints against a
real API (and worker) on Redis, the backend that system used.

Two module clusters: ``idle`` has no worker, so what it stores stays pending (a stable
snapshot for active queues, positions and cancelling); ``served`` has one, for generations that
end. Each test uses users of its own, so the tests need no order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from genqueue.api.app import create_app
from genqueue.settings import load_settings
from tests.helpers import Cluster, json_of, unique_name, wait_until

pytestmark = pytest.mark.system

TAG = "Batch image backend (seed 001)"
SMALL = {"width": 64, "height": 64, "steps": 2}
SUMMARY_KEYS = {
    "queue_id",
    "user_id",
    "status",
    "total",
    "pending",
    "processing",
    "completed",
    "failed",
    "cancelled",
    "progress",
    "created_at",
    "expires_at",
}
ITEM_KEYS = {
    "task_id",
    "queue_id",
    "prompt",
    "width",
    "height",
    "style",
    "status",
    "position",
    "progress",
    "image_url",
    "error",
    "created_at",
    "started_at",
    "completed_at",
}


def client_of(cluster: Cluster) -> httpx.Client:
    return httpx.Client(base_url=cluster.url, timeout=30)


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    cluster = Cluster(tmp_path_factory.mktemp("seed001-idle"), backend="redis")
    try:
        cluster.start_api()
        with client_of(cluster) as client:
            yield client
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    cluster = Cluster(tmp_path_factory.mktemp("seed001-served"), backend="redis")
    try:
        cluster.start_api()
        cluster.start_worker(concurrency=2)
        with client_of(cluster) as client:
            yield client
    finally:
        cluster.stop()


def create(client: httpx.Client, **body: Any) -> dict[str, Any]:
    return json_of(client.post("/create-queue", json=body))


def status_of(client: httpx.Client, queue_id: str) -> dict[str, Any]:
    return json_of(client.get(f"/queue-status/{queue_id}"))


def error_fields(response: httpx.Response, status: int = 422) -> list[str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "fields"} and body["message"], body
    return [f["field"] for f in body["fields"]]


def test_a_created_queue_is_pending_in_submitted_order_with_places_in_line(
    idle: httpx.Client,
) -> None:
    user = unique_name("ann")
    queue = create(idle, user_id=user, prompts=["a red fox", "a blue cat", "a green owl"], **SMALL)
    assert set(queue) == SUMMARY_KEYS | {"items"}
    assert (queue["user_id"], queue["status"], queue["total"], queue["pending"]) == (
        user,
        "pending",
        3,
        3,
    )
    assert queue["progress"] == 0.0 and queue["expires_at"] > queue["created_at"]
    items = queue["items"]
    assert [set(i) for i in items] == [ITEM_KEYS] * 3
    assert [i["prompt"] for i in items] == ["a red fox", "a blue cat", "a green owl"]
    assert {(i["status"], i["queue_id"], i["width"]) for i in items} == {
        ("pending", queue["queue_id"], 64)
    }
    places = [i["position"] for i in items]
    assert all(isinstance(p, int) and p >= 1 for p in places) and places == sorted(places)
    assert status_of(idle, queue["queue_id"]) == queue


def test_items_override_the_queues_defaults(idle: httpx.Client) -> None:
    items = [{"prompt": "a castle", "style": "cartoon"}, {"prompt": "a lake", "width": 128}]
    queue = create(idle, user_id=unique_name("bo"), items=items, style="artistic", **SMALL)
    shapes = [(i["style"], i["width"], i["height"]) for i in queue["items"]]
    assert shapes == [("cartoon", 64, 64), ("artistic", 128, 64)]


def test_active_queues_are_the_users_own_unended_ones_newest_first(idle: httpx.Client) -> None:
    user, other = unique_name("cy"), unique_name("di")
    first = create(idle, user_id=user, prompts=["one"], **SMALL)
    second = create(idle, user_id=user, prompts=["two", "three"], **SMALL)
    create(idle, user_id=other, prompts=["not yours"], **SMALL)
    response = idle.get("/active-queues", params={"user_id": user})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == user
    assert [q["queue_id"] for q in body["queues"]] == [second["queue_id"], first["queue_id"]]
    assert all(set(q) == SUMMARY_KEYS and q["status"] == "pending" for q in body["queues"])
    # Another user's queue is not found through user_id.
    missing = idle.get(f"/queue-status/{first['queue_id']}", params={"user_id": other})
    assert error_fields(missing, 404) == []


def test_a_cancelled_queue_ends_cancelled_and_leaves_the_active_list(idle: httpx.Client) -> None:
    user = unique_name("ed")
    queue = create(idle, user_id=user, prompts=["a", "b"], **SMALL)
    response = idle.post(f"/cancel-queue/{queue['queue_id']}")
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert (cancelled["status"], cancelled["cancelled"], cancelled["progress"]) == (
        "cancelled",
        2,
        1.0,
    )
    assert {i["status"] for i in cancelled["items"]} == {"cancelled"}
    assert idle.post(f"/cancel-queue/{queue['queue_id']}").json() == cancelled  # idempotent
    assert idle.get("/active-queues", params={"user_id": user}).json()["queues"] == []
    history = idle.get("/history", params={"user_id": user}).json()["items"]
    assert [(h["prompt"], h["status"]) for h in history] == [("b", "cancelled"), ("a", "cancelled")]


def test_bad_queues_are_refused_naming_the_field_and_nothing_is_stored(idle: httpx.Client) -> None:
    user = unique_name("fi")
    neon = ["items.1.style"]
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"prompts": ["x"]}, ["user_id"]),
        ({"user_id": user}, ["prompts", "items"]),
        ({"user_id": user, "prompts": ["x"], "items": [{"prompt": "y"}]}, ["prompts", "items"]),
        ({"user_id": user, "prompts": []}, ["prompts"]),
        ({"user_id": user, "prompts": ["ok", "  "]}, ["prompts.1"]),
        ({"user_id": user, "prompts": ["x"], "width": 5}, ["width"]),
        ({"user_id": user, "items": [{"prompt": "x"}, {"prompt": "y", "style": "neon"}]}, neon),
        ({"user_id": "bad user!", "prompts": ["x"]}, ["user_id"]),
    ]
    for body, fields in cases:
        named = error_fields(idle.post("/create-queue", json=body))
        assert named == fields, body
    assert idle.get("/history", params={"user_id": user}).json()["items"] == []
    assert error_fields(idle.get("/queue-status/nope"), 404) == []
    assert error_fields(idle.post("/cancel-queue/nope"), 404) == []
    assert error_fields(idle.get("/history")) == ["user_id"]
    assert error_fields(idle.get("/active-queues")) == ["user_id"]


def test_a_served_queue_completes_with_images_and_shows_in_history(served: httpx.Client) -> None:
    user = unique_name("gu")
    queue = create(served, user_id=user, prompts=["a red fox", "a blue cat"], seed=7, **SMALL)
    queue_id = queue["queue_id"]
    done = wait_until(
        lambda: (q := status_of(served, queue_id))["status"] == "completed" and q,
        timeout_s=60,
        message="the queue to complete",
    )
    assert (done["completed"], done["pending"], done["progress"]) == (2, 0, 1.0)
    for item in done["items"]:
        assert item["status"] == "completed" and item["progress"] == 1.0
        assert item["position"] is None and item["completed_at"] is not None
        image = httpx.get(item["image_url"], timeout=10)
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert served.get("/active-queues", params={"user_id": user}).json()["queues"] == []
    history = served.get("/history", params={"user_id": user, "limit": 1}).json()
    assert [h["prompt"] for h in history["items"]] == ["a blue cat"]
    rest = served.get("/history", params={"user_id": user, "cursor": history["next_cursor"]})
    assert [h["prompt"] for h in rest.json()["items"]] == ["a red fox"]
    assert rest.json()["next_cursor"] is None


def test_queues_past_retention_are_gone_from_every_read(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, backend="redis", extra_env={"GENQUEUE_RETENTION": "1s"})
    try:
        cluster.start_api()
        with client_of(cluster) as client:
            user = unique_name("ha")
            queue = create(client, user_id=user, prompts=["soon gone"], **SMALL)
            assert queue["status"] == "pending"

            def gone() -> bool:
                active = client.get("/active-queues", params={"user_id": user}).json()
                history = client.get("/history", params={"user_id": user}).json()
                status = client.get(f"/queue-status/{queue['queue_id']}")
                return not active["queues"] and not history["items"] and status.status_code == 404

            wait_until(gone, timeout_s=10, message="the queue to expire")
    finally:
        cluster.stop()


def test_the_adapter_has_its_own_tag_and_can_be_switched_off(tmp_path: Path) -> None:
    on = create_app(load_settings(data_dir=tmp_path)).openapi()
    for path in ("/history", "/create-queue", "/active-queues"):
        assert [TAG] in [op["tags"] for op in on["paths"][path].values()]
    off = load_settings(data_dir=tmp_path, compat={"rqbatch": False})
    assert "/create-queue" not in create_app(off).openapi()["paths"]
