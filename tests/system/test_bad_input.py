"""Bad input to the HTTP API: a 4xx in one JSON shape naming the field at fault, never a 500,
and nothing stored.

One API process serves the whole module (no worker, so stored tasks stay queued and the store
is a stable snapshot); every test compares the task list and the queue counts before and after
the bad request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import Cluster

pytestmark = pytest.mark.system

MAX_BODY = 1_048_576
Snapshot = tuple[list[dict[str, Any]], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """One API on a fresh data dir, holding one good queued task so the store is never empty."""
    cluster = Cluster(tmp_path_factory.mktemp("bad-input"))
    cluster.start_api()
    try:
        with httpx.Client(base_url=cluster.url, timeout=30) as client:
            seeded = client.post(
                "/v1/tasks",
                json={"kind": "image.generate", "payload": {"prompt": "a seed"}, "user": "seed"},
            )
            assert seeded.status_code == 201, seeded.text
            yield client
    finally:
        cluster.stop()


def snapshot(api: httpx.Client) -> Snapshot:
    """Every stored task (as the API shows it) and every queue's counts and broker depth."""
    tasks = api.get("/v1/tasks", params={"limit": 500})
    queues = api.get("/v1/queues")
    assert tasks.status_code == queues.status_code == 200
    assert tasks.json()["next_cursor"] is None
    items: list[dict[str, Any]] = tasks.json()["items"]
    return items, queues.json()


def assert_error(
    response: httpx.Response, status: int, error: str, fields: list[str] | None = None
) -> dict[str, Any]:
    """The response is ``status`` with the error body; ``fields`` (if given) are exactly the
    fields named, in order. Returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "fields"}, body
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["fields"], list)
    for item in body["fields"]:
        assert set(item) == {"field", "message"} and item["message"], item
    if fields is not None:
        assert [f["field"] for f in body["fields"]] == fields, body
    return body


def field_message(body: dict[str, Any], field: str) -> str:
    messages = [f["message"] for f in body["fields"] if f["field"] == field]
    assert len(messages) == 1, body
    message: str = messages[0]
    return message


def image(**payload: Any) -> dict[str, Any]:
    return {"kind": "image.generate", "payload": {"prompt": "a red fox", **payload}}


# (request body, fields named, a word the message of the first field must contain)
BAD_TASKS: dict[str, tuple[Any, list[str], str]] = {
    "missing-prompt": (
        {"kind": "image.generate", "payload": {"width": 128}},
        ["payload.prompt"],
        "required",
    ),
    "width-too-large": (image(width=100000), ["payload.width"], "2048"),
    "width-too-small": (image(width=63), ["payload.width"], "64"),
    "width-not-a-number": (image(width="big"), ["payload.width"], "integer"),
    "blank-prompt": (image(prompt="   "), ["payload.prompt"], "blank"),
    "empty-prompt": (image(prompt=""), ["payload.prompt"], "at least 1"),
    "steps-out-of-range": (image(steps=151), ["payload.steps"], "150"),
    "unknown-style": (image(style="sepia"), ["payload.style"], "abstract"),
    "negative-seed": (image(seed=-1), ["payload.seed"], "0"),
    "every-payload-field-wrong": (
        {"kind": "image.generate", "payload": {"width": 1, "height": 99999, "steps": 0}},
        ["payload.prompt", "payload.width", "payload.height", "payload.steps"],
        "required",
    ),
    "sleep-negative-seconds": (
        {"kind": "debug.sleep", "payload": {"seconds": -1}},
        ["payload.seconds"],
        "0",
    ),
    "missing-kind": ({"payload": {"prompt": "x"}}, ["kind"], "required"),
    "empty-kind": ({"kind": "", "payload": {}}, ["kind"], "at least 1"),
    "kind-not-a-string": ({"kind": 7, "payload": {}}, ["kind"], "string"),
    "priority-not-a-number": ({**image(), "priority": "high"}, ["priority"], "integer"),
    "priority-too-high": ({**image(), "priority": 1001}, ["priority"], "1000"),
    "priority-too-low": ({**image(), "priority": -1001}, ["priority"], "-1000"),
    "payload-a-list": (
        {"kind": "image.generate", "payload": ["a red fox"]},
        ["payload"],
        "dictionary",
    ),
    "payload-a-string": ({"kind": "debug.echo", "payload": "hi"}, ["payload"], "dictionary"),
    "unknown-top-level-field": ({**image(), "colour": "red"}, ["colour"], "not permitted"),
    "user-with-spaces": ({**image(), "user": "bad user!"}, ["user"], "pattern"),
    "queue-with-slash": ({**image(), "queue": "a/b"}, ["queue"], "pattern"),
    "body-a-list": ([image()], ["body"], "dictionary"),
    "body-null": (None, ["body"], "required"),
}


@pytest.mark.parametrize(("body", "fields", "word"), BAD_TASKS.values(), ids=BAD_TASKS.keys())
def test_bad_task_is_refused_with_422_naming_each_field_and_stores_nothing(
    api: httpx.Client, body: Any, fields: list[str], word: str
) -> None:
    before = snapshot(api)
    response = api.post("/v1/tasks", json=body)
    answer = assert_error(response, 422, "invalid_request", fields)
    assert word in answer["fields"][0]["message"], answer
    for field in fields:
        assert field in answer["message"]
    assert snapshot(api) == before


def test_unknown_kind_is_refused_naming_kind_and_listing_the_known_kinds(
    api: httpx.Client,
) -> None:
    before = snapshot(api)
    response = api.post("/v1/tasks", json={"kind": "image.paint", "payload": {"prompt": "x"}})
    answer = assert_error(response, 422, "invalid_request", ["kind"])
    message = field_message(answer, "kind")
    assert "image.paint" in message
    known = [k["name"] for k in api.get("/v1/kinds").json()]
    assert {"image.generate", "debug.echo", "debug.sleep"} <= set(known)
    for name in known:
        assert name in message
    assert snapshot(api) == before


def test_malformed_json_is_refused_naming_the_body(api: httpx.Client) -> None:
    before = snapshot(api)
    response = api.post(
        "/v1/tasks",
        content=b'{"kind": "image.generate", "payload": {"prompt": ',
        headers={"Content-Type": "application/json"},
    )
    answer = assert_error(response, 422, "invalid_request", ["body"])
    assert field_message(answer, "body").startswith("malformed JSON")
    assert snapshot(api) == before


def test_json_with_a_trailing_comma_is_malformed(api: httpx.Client) -> None:
    before = snapshot(api)
    response = api.post(
        "/v1/tasks",
        content=b'{"kind": "debug.echo", "payload": {},}',
        headers={"Content-Type": "application/json"},
    )
    answer = assert_error(response, 422, "invalid_request", ["body"])
    assert "malformed JSON" in field_message(answer, "body")
    assert snapshot(api) == before


def test_nan_and_infinity_in_a_payload_are_refused_not_stored_as_null(
    api: httpx.Client,
) -> None:
    before = snapshot(api)
    response = api.post(
        "/v1/tasks",
        content=b'{"kind": "debug.echo", "payload": {"a": [1, {"b": NaN}], "c": Infinity}}',
        headers={"Content-Type": "application/json"},
    )
    answer = assert_error(response, 422, "invalid_request", ["payload"])
    assert "payload.a.1.b is NaN or Infinity" in field_message(answer, "payload")
    assert snapshot(api) == before


def oversized_task() -> bytes:
    """A valid debug.echo task (it would be stored if accepted) just over the body limit."""
    blob = "x" * MAX_BODY
    return httpx.Request("POST", "/", json={"kind": "debug.echo", "payload": {"blob": blob}}).read()


def test_body_over_one_mib_is_refused_with_413(api: httpx.Client) -> None:
    before = snapshot(api)
    content = oversized_task()
    assert len(content) > MAX_BODY
    response = api.post("/v1/tasks", content=content, headers={"Content-Type": "application/json"})
    answer = assert_error(response, 413, "body_too_large")
    assert str(MAX_BODY) in answer["message"]
    assert snapshot(api) == before


def test_streamed_body_over_one_mib_without_length_is_refused_with_413(
    api: httpx.Client,
) -> None:
    content = oversized_task()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(content), 64 * 1024):
            yield content[start : start + 64 * 1024]

    before = snapshot(api)
    response = api.post("/v1/tasks", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    answer = assert_error(response, 413, "body_too_large")
    assert str(MAX_BODY) in answer["message"]
    assert snapshot(api) == before


def echo(i: int) -> dict[str, Any]:
    return {"kind": "debug.echo", "payload": {"i": i}}


# (batch body, fields named)
BAD_BATCHES: dict[str, tuple[Any, list[str]]] = {
    "bad-payload-in-the-middle": (
        {"tasks": [image(), image(width=100000), echo(3)]},
        ["tasks.1.payload.width"],
    ),
    "missing-prompt-last": (
        {"tasks": [echo(1), echo(2), {"kind": "image.generate", "payload": {}}]},
        ["tasks.2.payload.prompt"],
    ),
    "unknown-kind-first": (
        {"tasks": [{"kind": "nope.nothing"}, echo(2)]},
        ["tasks.0.kind"],
    ),
    "two-bad-items": (
        {"tasks": [image(prompt=" "), echo(1), image(steps=0)]},
        ["tasks.0.payload.prompt", "tasks.2.payload.steps"],
    ),
    "wrong-type-in-item": (
        {"tasks": [echo(0), {**echo(1), "priority": "high"}]},
        ["tasks.1.priority"],
    ),
    "unknown-field-in-item": (
        {"tasks": [echo(0), {**echo(1), "extra": True}]},
        ["tasks.1.extra"],
    ),
    "empty": ({"tasks": []}, ["tasks"]),
    "missing-tasks": ({"user": "ann"}, ["tasks"]),
    "tasks-not-a-list": ({"tasks": echo(1)}, ["tasks"]),
    "unknown-top-level-field": ({"tasks": [echo(1)], "priority": 3}, ["priority"]),
    "over-the-batch-limit": ({"tasks": [echo(i) for i in range(1001)]}, ["tasks"]),
}


@pytest.mark.parametrize(("body", "fields"), BAD_BATCHES.values(), ids=BAD_BATCHES.keys())
def test_batch_with_a_bad_item_is_refused_whole_naming_the_item(
    api: httpx.Client, body: Any, fields: list[str]
) -> None:
    before = snapshot(api)
    response = api.post("/v1/batches", json=body)
    answer = assert_error(response, 422, "invalid_request", fields)
    for field in fields:
        assert field in answer["message"]
    assert snapshot(api) == before


def test_unknown_task_id_answers_404(api: httpx.Client) -> None:
    before = snapshot(api)
    answer = assert_error(api.get("/v1/tasks/unknown-id"), 404, "not_found", [])
    assert "unknown-id" in answer["message"]
    assert snapshot(api) == before


def test_cancelling_an_unknown_task_answers_404(api: httpx.Client) -> None:
    before = snapshot(api)
    answer = assert_error(api.post("/v1/tasks/unknown-id/cancel"), 404, "not_found", [])
    assert "unknown-id" in answer["message"]
    assert snapshot(api) == before


def test_waiting_on_an_unknown_task_answers_404(api: httpx.Client) -> None:
    response = api.get("/v1/tasks/unknown-id/wait", params={"timeout": 0})
    assert_error(response, 404, "not_found", [])


def test_unknown_batch_answers_404_on_get_and_cancel(api: httpx.Client) -> None:
    before = snapshot(api)
    assert_error(api.get("/v1/batches/unknown-id"), 404, "not_found", [])
    assert_error(api.post("/v1/batches/unknown-id/cancel"), 404, "not_found", [])
    assert snapshot(api) == before


def test_unknown_route_answers_404_in_the_error_shape(api: httpx.Client) -> None:
    assert_error(api.get("/v1/nothing-here"), 404, "http_error", [])


def test_wrong_method_answers_405_in_the_error_shape(api: httpx.Client) -> None:
    before = snapshot(api)
    assert_error(api.delete("/v1/tasks"), 405, "http_error", [])
    assert snapshot(api) == before


# (query, fields named)
BAD_LISTS: dict[str, tuple[dict[str, str], list[str]]] = {
    "unknown-status": ({"status": "bogus"}, ["status"]),
    "zero-limit": ({"limit": "0"}, ["limit"]),
    "limit-over-500": ({"limit": "501"}, ["limit"]),
    "limit-not-a-number": ({"limit": "many"}, ["limit"]),
    "cursor-not-digits": ({"cursor": "abc"}, ["cursor"]),
}


@pytest.mark.parametrize(("query", "fields"), BAD_LISTS.values(), ids=BAD_LISTS.keys())
def test_bad_list_query_is_refused_naming_the_parameter(
    api: httpx.Client, query: dict[str, str], fields: list[str]
) -> None:
    answer = assert_error(api.get("/v1/tasks", params=query), 422, "invalid_request", fields)
    assert fields[0] in answer["message"]


def test_unknown_status_message_lists_the_statuses(api: httpx.Client) -> None:
    answer = assert_error(api.get("/v1/tasks", params={"status": "bogus"}), 422, "invalid_request")
    message = field_message(answer, "status")
    for status in ("queued", "running", "succeeded", "failed", "cancelled"):
        assert status in message


@pytest.mark.parametrize("timeout", ["-1", "301", "soon"])
def test_wait_with_a_bad_timeout_is_refused_naming_timeout(api: httpx.Client, timeout: str) -> None:
    before = snapshot(api)
    task_id = before[0][0]["id"]
    response = api.get(f"/v1/tasks/{task_id}/wait", params={"timeout": timeout})
    assert_error(response, 422, "invalid_request", ["timeout"])
    assert snapshot(api) == before


def test_reused_idempotency_key_with_another_payload_answers_409_and_keeps_the_original(
    api: httpx.Client,
) -> None:
    headers = {"Idempotency-Key": "bad-input-order-1"}
    first = api.post("/v1/tasks", json=echo(1), headers=headers)
    assert first.status_code == 201, first.text
    original = first.json()
    before = snapshot(api)
    assert original["id"] in [t["id"] for t in before[0]]

    for body in (echo(2), {"kind": "debug.sleep", "payload": {}}, {**echo(1), "user": "other"}):
        response = api.post("/v1/tasks", json=body, headers=headers)
        answer = assert_error(response, 409, "idempotency_conflict", [])
        assert "bad-input-order-1" in answer["message"]
        assert original["id"] in answer["message"]
        assert snapshot(api) == before

    stored = api.get(f"/v1/tasks/{original['id']}").json()
    assert stored["payload"] == {"i": 1} and stored["kind"] == "debug.echo"
    assert stored == original | {"position": stored["position"]}
    replay = api.post("/v1/tasks", json=echo(1), headers=headers)
    assert replay.status_code == 200 and replay.json()["id"] == original["id"]
    assert snapshot(api) == before


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_idempotency_key_of_a_bad_length_is_refused_naming_the_header(
    api: httpx.Client, key: str
) -> None:
    before = snapshot(api)
    response = api.post("/v1/tasks", json=echo(1), headers={"Idempotency-Key": key})
    assert_error(response, 422, "invalid_request", ["Idempotency-Key"])
    assert snapshot(api) == before


def test_bad_input_never_answers_500(api: httpx.Client) -> None:
    """Odd but not malicious requests: each answers 4xx in the error shape."""
    before = snapshot(api)
    odd: list[httpx.Request] = [
        api.build_request("POST", "/v1/tasks", content=b""),
        api.build_request("POST", "/v1/tasks", content=b"\xff\xfe\x00garbage"),
        api.build_request(
            "POST", "/v1/tasks", content=b"\xff\xfe", headers={"Content-Type": "application/json"}
        ),
        api.build_request(
            "POST",
            "/v1/tasks",
            content=iter([oversized_task()]),
            headers={"Content-Type": "application/json"},
        ),
        api.build_request("POST", "/v1/tasks", json=image(width=2**70)),
        api.build_request("POST", "/v1/tasks", json=image(seed=2**32)),
        api.build_request("POST", "/v1/tasks", json={"kind": "x" * 129}),
        api.build_request(
            "POST", "/v1/batches", content=b"[[[[", headers={"Content-Type": "application/json"}
        ),
        api.build_request("GET", "/v1/tasks/%00/wait", params={"timeout": "0"}),
        api.build_request("GET", "/v1/artifacts/..%2F..%2Fetc/passwd"),
        api.build_request("GET", "/v1/artifacts/nope/image.png"),
    ]
    for request in odd:
        response = api.send(request)
        assert 400 <= response.status_code < 500, (request.url, response.text)
        assert_error(response, response.status_code, response.json()["error"])
    assert snapshot(api) == before
