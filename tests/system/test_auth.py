"""API keys and isolation between users, end to end: a real API with GENQUEUE_AUTH=on, a
worker, two users (ann, bob), an operator and an admin. Another user's ids answer 404 exactly
like unknown ones; no key is 401; a revoked key stops working within the cache time."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from genqueue.api.auth import CACHE_S, COOKIE
from tests.helpers import Cluster, cli, cli_key, json_of, wait_until

pytestmark = pytest.mark.system


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Deployment:
    cluster: Cluster
    admin: httpx.Client
    operator: httpx.Client
    ann: httpx.Client
    bob: httpx.Client
    anonymous: httpx.Client

    def key_for(self, user: str, role: str) -> tuple[str, str]:
        """A key made over HTTP by the admin: (id, key)."""
        body = json_of(self.admin.post("/v1/keys", json={"user": user, "role": role}), 201)
        return body["id"], body["key"]

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.cluster.url, headers=bearer(key), timeout=30)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    cluster = Cluster(tmp_path_factory.mktemp("auth"), extra_env={"GENQUEUE_AUTH": "on"})
    cluster.start_api()
    cluster.start_worker()
    admin_key = cli_key(cluster, "root", "admin")  # the first key: from the CLI
    clients: list[httpx.Client] = []
    try:
        admin = httpx.Client(base_url=cluster.url, headers=bearer(admin_key), timeout=30)
        clients.append(admin)
        d = Deployment(cluster, admin, admin, admin, admin, httpx.Client(base_url=cluster.url))
        clients.append(d.anonymous)
        for name, role in (("operator", "operator"), ("ann", "user"), ("bob", "user")):
            _, key = d.key_for("ops" if name == "operator" else name, role)
            setattr(d, name, d.client(key))
            clients.append(getattr(d, name))
        yield d
    finally:
        for client in clients:
            client.close()
        cluster.stop()


def submit(client: httpx.Client, kind: str = "debug.echo", **body: Any) -> dict[str, Any]:
    payload = body.pop("payload", {"n": 1})
    return json_of(client.post("/v1/tasks", json={"kind": kind, "payload": payload, **body}), 201)


def finished(client: httpx.Client, task_id: str) -> dict[str, Any]:
    task = json_of(client.get(f"/v1/tasks/{task_id}/wait", params={"timeout": 60}))
    assert task["status"] == "succeeded", task
    return task


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def not_found_like_unknown(client: httpx.Client, method: str, path: str, real_id: str) -> None:
    """``path`` with another user's ``real_id`` answers exactly as with an unknown id."""
    fake_id = "0" * len(real_id) if not real_id.startswith("u-") else "u-" + "0" * 32
    mine = client.request(method, path.format(real_id))
    unknown = client.request(method, path.format(fake_id))
    assert mine.status_code == unknown.status_code == 404, (path, mine.text)
    assert mine.json()["error"] == unknown.json()["error"]
    assert mine.json()["message"] == unknown.json()["message"].replace(fake_id, real_id)


def test_health_is_open_and_everything_else_needs_a_key(deployment: Deployment) -> None:
    anonymous = deployment.anonymous
    assert anonymous.get("/health").status_code == 200
    for method, path in [
        ("GET", "/v1/tasks"),
        ("POST", "/v1/tasks"),
        ("GET", "/v1/queues"),
        ("GET", "/v1/events"),
        ("GET", "/metrics"),
        ("GET", "/v1/keys"),
        ("GET", "/v1/session"),
    ]:
        response = anonymous.request(method, path)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["error"] == "unauthorized"
    for headers in (
        {"Authorization": "Basic cm9vdDpyb290"},
        bearer("gq_" + "x" * 40),  # well formed, never made
        bearer("not-a-key"),
    ):
        response = anonymous.get("/v1/tasks", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_user_cannot_see_or_touch_another_users_task(deployment: Deployment) -> None:
    ann, bob = deployment.ann, deployment.bob
    task = submit(ann, payload={"secret": "ann's"})
    assert task["user"] == "ann"  # the key's user, not written by the caller
    finished(ann, task["id"])
    assert json_of(ann.get(f"/v1/tasks/{task['id']}"))["result"] == {"secret": "ann's"}
    for method, path in [
        ("GET", "/v1/tasks/{}"),
        ("GET", "/v1/tasks/{}/events"),
        ("GET", "/v1/tasks/{}/wait?timeout=0"),
        ("POST", "/v1/tasks/{}/cancel"),
        ("GET", "/v1/events?task_id={}"),
    ]:
        not_found_like_unknown(bob, method, path, task["id"])
    assert task["id"] not in {t["id"] for t in json_of(bob.get("/v1/tasks"))["items"]}
    assert json_of(bob.get("/v1/tasks", params={"user": "ann"}))["items"] == []
    assert task["id"] in {t["id"] for t in json_of(ann.get("/v1/tasks"))["items"]}


def test_a_user_cannot_cancel_another_users_queued_task(deployment: Deployment) -> None:
    ann, bob = deployment.ann, deployment.bob
    task = submit(ann, delay_s=3600)  # stays queued
    assert bob.post(f"/v1/tasks/{task['id']}/cancel").status_code == 404
    assert json_of(ann.get(f"/v1/tasks/{task['id']}"))["status"] == "queued"
    assert json_of(ann.post(f"/v1/tasks/{task['id']}/cancel"))["status"] == "cancelled"


def test_a_user_submits_as_its_own_user_only(deployment: Deployment) -> None:
    ann = deployment.ann
    body = {"kind": "debug.echo", "payload": {}, "user": "bob"}
    refused = ann.post("/v1/tasks", json=body)
    assert refused.status_code == 422
    assert [f["field"] for f in refused.json()["fields"]] == ["user"]
    assert submit(ann, user="ann")["user"] == "ann"
    # The operator submits on anyone's behalf.
    assert submit(deployment.operator, user="bob", delay_s=3600)["user"] == "bob"


def test_idempotency_keys_of_two_users_do_not_meet(deployment: Deployment) -> None:
    ann, bob = deployment.ann, deployment.bob
    headers = {"Idempotency-Key": "order-42"}
    body = {"kind": "debug.echo", "payload": {"n": 1}}
    first = json_of(ann.post("/v1/tasks", json=body, headers=headers), 201)
    other = json_of(bob.post("/v1/tasks", json=body, headers=headers), 201)
    assert other["id"] != first["id"] and other["user"] == "bob"
    again = json_of(ann.post("/v1/tasks", json=body, headers=headers), 200)
    assert again["id"] == first["id"]


def test_batches_are_isolated(deployment: Deployment) -> None:
    ann, bob = deployment.ann, deployment.bob
    tasks = [{"kind": "debug.echo", "payload": {"i": i}} for i in range(2)]
    batch = json_of(ann.post("/v1/batches", json={"tasks": tasks}), 201)
    for method, path in [("GET", "/v1/batches/{}"), ("POST", "/v1/batches/{}/cancel")]:
        not_found_like_unknown(bob, method, path, batch["id"])
    assert bob.get("/v1/events", params={"batch_id": batch["id"]}).status_code == 404
    assert batch["id"] not in {b["id"] for b in json_of(bob.get("/v1/batches"))["items"]}
    assert batch["id"] in {b["id"] for b in json_of(ann.get("/v1/batches"))["items"]}
    listed = json_of(bob.get("/v1/tasks", params={"batch_id": batch["id"]}))["items"]
    assert listed == []
    item = {"kind": "debug.echo", "payload": {}, "user": "bob"}
    refused = ann.post("/v1/batches", json={"tasks": [item]})
    assert refused.status_code == 422
    assert refused.json()["fields"][0]["field"] == "tasks.0.user"


def test_artifacts_and_uploads_are_their_owners_only(deployment: Deployment) -> None:
    ann, bob, operator = deployment.ann, deployment.bob, deployment.operator
    payload = {"prompt": "a lighthouse", "width": 64, "height": 64, "steps": 1}
    task = finished(ann, submit(ann, "image.generate", payload=payload)["id"])
    url = task["result"]["image_url"]
    assert ann.get(url).status_code == 200
    assert operator.get(url).content[:4] == b"\x89PNG"
    not_found_like_unknown(bob, "GET", "/v1/artifacts/{}/image.png", task["id"])
    upload = json_of(ann.post("/v1/uploads", content=png()), 201)
    assert ann.get(upload["url"]).status_code == 200
    assert operator.get(upload["url"]).status_code == 200
    not_found_like_unknown(bob, "GET", "/v1/artifacts/{}/original", upload["id"])


def test_a_task_names_only_its_users_own_uploads(deployment: Deployment) -> None:
    ann, bob, operator = deployment.ann, deployment.bob, deployment.operator
    upload = json_of(ann.post("/v1/uploads", content=png()), 201)["id"]
    payload = {"image": {"upload": upload}, "top_k_labels": 1}
    before = {t["id"] for t in json_of(operator.get("/v1/tasks", params={"limit": 500}))["items"]}
    # Bob names Ann's upload: refused as if it did not exist, in a task and in a batch.
    task = {"kind": "feature.extract", "payload": payload}
    refused = json_of(bob.post("/v1/tasks", json=task), 422)
    assert [f["field"] for f in refused["fields"]] == ["payload.image.upload"]
    assert "never made" in refused["fields"][0]["message"]
    batch = {"tasks": [{"kind": "debug.echo"}, task]}
    refused = json_of(bob.post("/v1/batches", json=batch), 422)
    assert [f["field"] for f in refused["fields"]] == ["tasks.1.payload.image.upload"]
    after = {t["id"] for t in json_of(operator.get("/v1/tasks", params={"limit": 500}))["items"]}
    assert after == before  # nothing stored
    # Ann names it, and an operator may on anyone's behalf.
    mine = json_of(ann.post("/v1/tasks", json=task), 201)
    theirs = {**task, "user": "bob"}
    assert operator.post("/v1/tasks", json=theirs).status_code == 201
    assert mine["user"] == "ann"


def test_the_event_stream_of_a_user_carries_only_its_own_tasks(deployment: Deployment) -> None:
    ann, bob = deployment.ann, deployment.bob
    seen: list[dict[str, Any]] = []
    with bob.stream("GET", "/v1/events", timeout=30) as stream:
        assert stream.status_code == 200
        theirs = submit(ann)  # committed before bob's own, so it would come first
        mine = submit(bob)
        data = None
        for line in stream.iter_lines():
            if line.startswith("data:"):
                data = json.loads(line.removeprefix("data:"))
                seen.append(data)
                if data["task_id"] == mine["id"]:
                    break
    assert data is not None and data["task_id"] == mine["id"]
    assert {e["user"] for e in seen} == {"bob"}
    assert theirs["id"] not in {e["task_id"] for e in seen}


def test_the_operator_sees_every_user_and_the_cluster(deployment: Deployment) -> None:
    ann, bob, operator = deployment.ann, deployment.bob, deployment.operator
    a, b = submit(ann, delay_s=3600), submit(bob, delay_s=3600)
    listed = {t["id"] for t in json_of(operator.get("/v1/tasks", params={"limit": 500}))["items"]}
    assert {a["id"], b["id"]} <= listed
    assert json_of(operator.get(f"/v1/tasks/{a['id']}"))["user"] == "ann"
    assert json_of(operator.post(f"/v1/tasks/{b['id']}/cancel"))["status"] == "cancelled"
    for path in ("/v1/queues", "/v1/workers", "/v1/limits", "/metrics"):
        assert operator.get(path).status_code == 200, path
        refused = ann.get(path)
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden", path
    assert ann.get("/v1/kinds").status_code == 200  # the console's forms need them
    assert operator.get("/v1/keys").status_code == 403  # keys are the admin's


def test_an_admin_creates_lists_and_revokes_keys_over_http(deployment: Deployment) -> None:
    key_id, key = deployment.key_for("carol", "user")
    assert key.startswith("gq_")
    with deployment.client(key) as carol:
        assert submit(carol)["user"] == "carol"
        response = deployment.admin.get("/v1/keys")
        assert response.status_code == 200
        listed = {k["id"]: k for k in response.json()}
        assert listed[key_id]["user"] == "carol" and listed[key_id]["revoked_at"] is None
        assert "key" not in listed[key_id] and key not in json.dumps(listed)
        revoked = json_of(deployment.admin.delete(f"/v1/keys/{key_id}"))
        assert revoked["revoked_at"] is not None
        refused = carol.get("/v1/tasks")  # revoked here: refused at once by this process
        assert refused.status_code == 401 and "revoked" in refused.json()["message"]
    assert deployment.admin.delete("/v1/keys/nosuchkey0").status_code == 404
    bad = deployment.admin.post("/v1/keys", json={"user": "dan", "role": "superuser"})
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "role"


def test_a_key_revoked_in_the_store_stops_working_within_the_cache_time(
    deployment: Deployment,
) -> None:
    key = cli_key(deployment.cluster, "erin", "user")  # the CLI's key works
    with deployment.client(key) as erin:
        assert erin.get("/v1/tasks").status_code == 200  # now cached by the API
        key_id = key[3:13]
        assert key_id in cli(deployment.cluster, "keys", "list")
        cli(deployment.cluster, "keys", "revoke", key_id)  # in the store, not via this API
        wait_until(
            lambda: erin.get("/v1/tasks").status_code == 401,
            CACHE_S + 5,
            0.2,
            "the revoked key to be refused",
        )


def test_the_session_cookie_signs_the_console_in_and_out(deployment: Deployment) -> None:
    _, key = deployment.key_for("fay", "user")
    with httpx.Client(base_url=deployment.cluster.url, timeout=30) as browser:
        wrong = browser.post("/v1/session", json={"key": "gq_" + "y" * 40})
        assert wrong.status_code == 401 and COOKIE not in browser.cookies
        signed_in = browser.post("/v1/session", json={"key": key})
        assert json_of(signed_in)["user"] == "fay" and json_of(signed_in)["role"] == "user"
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert browser.get("/v1/tasks").status_code == 200  # the cookie alone
        with browser.stream("GET", "/v1/events") as stream:  # what EventSource does
            assert stream.status_code == 200
        assert browser.delete("/v1/session").status_code == 204
        assert browser.get("/v1/tasks").status_code == 401


def test_seed_adapters_serve_operator_keys_only(deployment: Deployment) -> None:
    assert deployment.anonymous.get("/aigc/queue/info").status_code == 401
    assert deployment.ann.get("/aigc/queue/info").status_code == 403
    assert deployment.operator.get("/aigc/queue/info").status_code == 200


def test_auto_turns_auth_on_off_loopback(tmp_path: Path) -> None:
    on_all = Cluster(tmp_path, extra_env={"GENQUEUE_AUTH": "auto"})
    try:
        on_all.start_api(["--host", "0.0.0.0"])
        assert httpx.get(f"{on_all.url}/v1/tasks").status_code == 401
    finally:
        on_all.stop()
    (tmp_path / "loopback").mkdir()
    loopback = Cluster(tmp_path / "loopback", extra_env={"GENQUEUE_AUTH": "auto"})
    try:
        loopback.start_api()
        assert httpx.get(f"{loopback.url}/v1/tasks").status_code == 200
    finally:
        loopback.stop()
