"""Hostile input to the HTTP API (issue 14): deep JSON, path tricks, 200 000-task batches and
odd bodies, headers and queries each get a 4xx naming the problem, store nothing, and leave
the API answering (``test_bad_input.py`` covers the ordinary mistakes).

One API process (no worker) serves the module; every test compares what is stored (tasks,
queue counts, batches) before and after, and asks /health at the end.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.helpers import Cluster
from tests.system.test_bad_input import MAX_BODY, Snapshot, assert_error, oversized_task, snapshot

pytestmark = pytest.mark.system

MAX_DEPTH = 64  # genqueue.api.input_guard.MAX_JSON_DEPTH, as documented in docs/security.md
MAX_BATCH = 1000  # GENQUEUE_MAX_BATCH's default
HEALTH_DEADLINE_S = 5.0
SECRET = b"SENTINEL-must-never-be-served"
JSON = {"Content-Type": "application/json"}


@dataclass
class Hostile:
    api: httpx.Client
    data_dir: Path
    upload_id: str  # a real artifact folder, for traversal attempts that start inside one


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    """One API holding a queued task and an upload; sentinel files lie outside its artifact
    root, in its data dir and next to it."""
    data_dir = tmp_path_factory.mktemp("hostile") / "data"
    data_dir.mkdir()
    for folder in (data_dir, data_dir.parent):
        (folder / "sentinel.txt").write_bytes(SECRET)
    cluster = Cluster(data_dir)
    cluster.start_api()
    try:
        with httpx.Client(base_url=cluster.url, timeout=60) as api:
            seeded = api.post("/v1/tasks", json={"kind": "debug.echo", "payload": {"i": 0}})
            assert seeded.status_code == 201, seeded.text
            upload = api.post("/v1/uploads", content=png())
            assert upload.status_code == 201, upload.text
            yield Hostile(api, data_dir, upload.json()["id"])
    finally:
        cluster.stop()


@pytest.fixture
def api(hostile: Hostile) -> Iterator[httpx.Client]:
    """The API; afterwards, it must still be healthy."""
    yield hostile.api
    assert_healthy(hostile.api)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def stored(api: httpx.Client) -> tuple[Snapshot, list[dict[str, Any]]]:
    """Every task and queue count (``test_bad_input.snapshot``) and every batch."""
    batches = api.get("/v1/batches", params={"limit": 100})
    assert batches.status_code == 200, batches.text
    items: list[dict[str, Any]] = batches.json()["items"]
    return snapshot(api), items


def assert_healthy(api: httpx.Client) -> None:
    started = time.monotonic()
    health = api.get("/health", timeout=HEALTH_DEADLINE_S)
    assert health.status_code == 200, health.text
    assert time.monotonic() - started < HEALTH_DEADLINE_S


def post_json(api: httpx.Client, path: str, content: bytes, **headers: str) -> httpx.Response:
    return api.post(path, content=content, headers={**JSON, **headers})


def nested(depth: int, shape: str, inner: str = "1") -> str:
    """``depth`` arrays (or objects) inside one another."""
    if shape == "array":
        return "[" * depth + inner + "]" * depth
    return '{"a":' * depth + inner + "}" * depth


# Each target embeds the nested value at a depth of its own (the message counts from the top).
DEEP_TARGETS: dict[str, tuple[str, str]] = {
    "task-body": ("/v1/tasks", "{}"),
    "task-payload-value": ("/v1/tasks", '{{"kind": "debug.echo", "payload": {{"x": {}}}}}'),
    "batch-body": ("/v1/batches", "{}"),
    "batch-item-payload": (
        "/v1/batches",
        '{{"tasks": [{{"kind": "debug.echo", "payload": {{"x": {}}}}}]}}',
    ),
    "compat-aigc-submit": ("/aigc/create", '{{"prompt": "a fox", "model_name": {}}}'),
    "keys": ("/v1/keys", '{{"user": "ann", "role": "user", "label": {}}}'),
}


@pytest.mark.parametrize("depth", [10_000, 100_000])
@pytest.mark.parametrize("shape", ["array", "object"])
@pytest.mark.parametrize(("path", "template"), DEEP_TARGETS.values(), ids=DEEP_TARGETS.keys())
def test_deeply_nested_json_is_refused_naming_the_depth_limit(
    api: httpx.Client, path: str, template: str, shape: str, depth: int
) -> None:
    before = stored(api)
    body = template.format(nested(depth, shape)).encode()
    answer = assert_error(post_json(api, path, body), 422, "invalid_request", ["body"])
    assert "nested" in answer["message"] and f"at most {MAX_DEPTH}" in answer["message"]
    assert stored(api) == before


@pytest.mark.parametrize("total", [MAX_DEPTH + 1, 302])
def test_payload_past_the_depth_limit_is_refused_where_it_once_answered_500(
    api: httpx.Client, total: int
) -> None:
    """A payload 300 deep passed validation and then broke serialization (500); one level
    past the limit is refused the same way."""
    before = stored(api)
    body = f'{{"kind": "debug.echo", "payload": {{"x": {nested(total - 2, "array")}}}}}'
    answer = assert_error(post_json(api, "/v1/tasks", body.encode()), 422, "invalid_request")
    assert f"nested {total} levels deep" in answer["message"]
    assert stored(api) == before


def test_payload_at_the_depth_limit_is_accepted_and_reads_back(api: httpx.Client) -> None:
    body = f'{{"kind": "debug.echo", "payload": {{"x": {nested(MAX_DEPTH - 2, "object")}}}}}'
    created = post_json(api, "/v1/tasks", body.encode())
    assert created.status_code == 201, created.text
    read = api.get(f"/v1/tasks/{created.json()['id']}")
    assert read.status_code == 200 and read.json()["payload"] == created.json()["payload"]
    assert api.get("/v1/tasks", params={"limit": 500}).status_code == 200


LONG = "a" * 10_000
# Raw request targets (sent as written: no client normalises them) that try to reach a file
# outside the artifact root or a record by a trick name.
PATH_TRICKS = [
    "/v1/artifacts/../sentinel.txt",
    "/v1/artifacts/..%2fsentinel.txt/x",
    "/v1/artifacts/%2e%2e/sentinel.txt",
    "/v1/artifacts/%2e%2e%2f%2e%2e%2fsentinel.txt/x",
    "/v1/artifacts/%2E%2E/%2E%2E/sentinel.txt",
    "/v1/artifacts/.%2e/sentinel.txt",
    "/v1/artifacts/..%5csentinel.txt/x",
    "/v1/artifacts/x/..%5c..%5csentinel.txt",
    "/v1/artifacts/%2fetc%2fpasswd/x",
    "/v1/artifacts/x/%2e%2e%2f%2e%2e%2fsentinel.txt",
    "/v1/artifacts/%00/x",
    "/v1/artifacts/x/sentinel.txt%00.png",
    f"/v1/artifacts/{LONG}/x",
    f"/v1/artifacts/x/{LONG}",
    "/v1/artifacts/%C3%A9/x",
    "/v1/artifacts/x/%EF%BC%8E%EF%BC%8E",  # fullwidth dots
    "/v1/artifacts/%ED%A0%80/x",  # an encoded surrogate: not UTF-8
    "/v1/artifacts/C:%5cWindows/x",
    "/static/..%2f..%2f..%2f..%2fsentinel.txt",
    "/static/%2e%2e/%2e%2e/%2e%2e/sentinel.txt",
    "/v1/tasks/..%2f..%2fsentinel.txt",
    "/v1/tasks/%00",
    "/v1/tasks/%00/events",
    f"/v1/tasks/{LONG}",
    f"/v1/tasks/{LONG}/wait?timeout=0",
    "/v1/tasks/%ED%A0%80",
    "/v1/tasks/a%5cb",
    "/v1/batches/%00",
    f"/v1/batches/{LONG}",
    "/v1/collections/..%2f..%2fsentinel.txt",
    "/v1/collections/%00",
    f"/v1/collections/{LONG}",
    "/v1/collections/%C3%A9",
    "/aigc/status/%00",
    f"/queue-status/{LONG}",
    "/api/v1/diagnosis/tasks/..%2f..%2fsentinel.txt",
    f"/api/v1/diagnosis/tasks/{LONG}",
]
# The same tricks from inside a real artifact folder ({} is an upload's id).
FROM_AN_UPLOAD = [
    "/v1/artifacts/{}/..%2f..%2fsentinel.txt",
    "/v1/artifacts/{}/..%2f..%2f..%2fsentinel.txt",
    "/v1/artifacts/{}/%2e%2e",
    "/v1/artifacts/{}/.",
    "/v1/artifacts/{}/..%5c..%5csentinel.txt",
    "/v1/artifacts/{}/original%00",
    "/v1/artifacts/{}%2f..%2f..%2fsentinel.txt/x",
]


def send_raw(api: httpx.Client, method: str, target: str) -> httpx.Response:
    request = api.build_request(method, "/", extensions={"target": target.encode()})
    return api.send(request, follow_redirects=True)


@pytest.mark.parametrize("target", PATH_TRICKS, ids=range(len(PATH_TRICKS)))
def test_path_tricks_answer_404_or_422_and_never_a_file_outside(
    api: httpx.Client, target: str
) -> None:
    before = stored(api)
    for method in ("GET", "POST", "DELETE"):
        response = send_raw(api, method, target)
        assert response.status_code in (404, 405, 422), (method, target, response.text)
        assert SECRET not in response.content
        assert_error(response, response.status_code, response.json()["error"])
    assert stored(api) == before


@pytest.mark.parametrize("template", FROM_AN_UPLOAD, ids=range(len(FROM_AN_UPLOAD)))
def test_artifact_route_serves_the_folder_and_nothing_outside_it(
    hostile: Hostile, api: httpx.Client, template: str
) -> None:
    assert (hostile.data_dir / "artifacts" / hostile.upload_id / "original").is_file()
    served = api.get(f"/v1/artifacts/{hostile.upload_id}/original")
    assert served.status_code == 200 and served.content == png()
    response = send_raw(api, "GET", template.format(hostile.upload_id))
    assert response.status_code in (404, 422), response.text
    assert SECRET not in response.content


def health_latencies_while(api: httpx.Client, send: Any) -> tuple[httpx.Response, list[float]]:
    """``send()``'s response, and how long each /health took while it was in flight."""
    latencies: list[float] = []
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(send)
        while not future.done() or not latencies:
            started = time.monotonic()
            try:
                api.get("/health", timeout=HEALTH_DEADLINE_S * 4)
            finally:
                latencies.append(time.monotonic() - started)
        return future.result(), latencies


def tasks_body(count: int, item: str) -> bytes:
    return ('{"tasks": [' + ",".join([item] * count) + "]}").encode()


def just_under_the_body_limit() -> bytes:
    item = '{"kind":"debug.echo"}'
    body = tasks_body((MAX_BODY - 20) // (len(item) + 1), item)
    assert MAX_BODY - 100 < len(body) <= MAX_BODY
    return body


BIG_BATCHES: dict[str, tuple[Any, int, str]] = {
    # (body, status, words of the message)
    "200000-tasks": (lambda: tasks_body(200_000, '{"kind": "debug.echo"}'), 413, str(MAX_BODY)),
    "200000-empty-items": (lambda: tasks_body(200_000, "{}"), 422, f"at most {MAX_BATCH}"),
    "just-under-the-body-limit": (just_under_the_body_limit, 422, f"at most {MAX_BATCH}"),
    "350000-numbers": (lambda: tasks_body(350_000, "1"), 422, f"at most {MAX_BATCH}"),
}


@pytest.mark.parametrize(("make", "status", "words"), BIG_BATCHES.values(), ids=BIG_BATCHES)
def test_huge_batch_is_refused_by_its_size_while_the_api_keeps_answering(
    api: httpx.Client, make: Any, status: int, words: str
) -> None:
    before = stored(api)
    body: bytes = make()
    response, latencies = health_latencies_while(api, lambda: post_json(api, "/v1/batches", body))
    answer = assert_error(
        response, status, "body_too_large" if status == 413 else "invalid_request"
    )
    assert words in answer["message"]
    if status == 422:
        assert [f["field"] for f in answer["fields"]] == ["tasks"]
    assert len(response.content) < 1000  # one sentence, not one error per item
    assert max(latencies) < HEALTH_DEADLINE_S, latencies
    assert stored(api) == before


def test_batch_is_counted_before_its_items_are_validated(
    api: httpx.Client,
) -> None:
    before = stored(api)
    over = post_json(api, "/v1/batches", tasks_body(MAX_BATCH + 1, '{"kind": "nope"}'))
    assert_error(over, 422, "invalid_request", ["tasks"])
    at = post_json(api, "/v1/batches", tasks_body(MAX_BATCH, '{"kind": "nope"}'))
    answer = assert_error(at, 422, "invalid_request")  # counted in: each item is validated
    assert answer["fields"][0]["field"] == "tasks.0.kind"
    assert stored(api) == before


def echo_with(raw_value: str) -> bytes:
    return f'{{"kind": "debug.echo", "payload": {{"a": {raw_value}}}}}'.encode()


# (body, Content-Type, status, fields named, words of the first field's message)
ODD_BODIES: dict[str, tuple[bytes, str, int, list[str], str]] = {
    "utf-16": (
        '{"kind": "debug.echo"}'.encode("utf-16"),
        "application/json",
        400,
        ["body"],
        "UTF-8",
    ),
    "latin-1": (
        echo_with('"caf\xe9"').decode().encode("latin-1"),
        "application/json",
        400,
        ["body"],
        "UTF-8",
    ),
    "duplicate-keys": (
        b'{"kind": "debug.echo", "kind": "debug.sleep"}',
        "application/json",
        422,
        ["body"],
        "'kind' appears twice",
    ),
    "duplicate-payload-keys": (
        echo_with('{"b": 1, "b": 2}'),
        "application/json",
        422,
        ["body"],
        "'b' appears twice",
    ),
    "10000-digits": (
        echo_with("9" * 10_000),
        "application/json",
        422,
        ["body"],
        "at most 4300 digits",
    ),
    "10000-digit-priority": (
        b'{"kind": "debug.echo", "priority": ' + b"9" * 10_000 + b"}",
        "application/json",
        422,
        ["body"],
        "digits",
    ),
    "lone-surrogate": (echo_with('"\\ud800"'), "application/json", 422, ["body"], "surrogate"),
    "lone-surrogate-key": (
        echo_with('{"\\udc00": 1}'),
        "application/json",
        422,
        ["body"],
        "surrogate",
    ),
    "text-plain": (b'{"kind": "debug.echo"}', "text/plain", 422, ["body"], "dictionary"),
    "form": (b"kind=debug.echo", "application/x-www-form-urlencoded", 422, ["body"], "dictionary"),
    "xml": (b"<task kind='debug.echo'/>", "application/xml", 422, ["body"], "dictionary"),
    "priority-huge": (
        b'{"kind": "debug.echo", "priority": 1e300}',
        "application/json",
        422,
        ["priority"],
        "integer",
    ),
    "priority-negative": (
        b'{"kind": "debug.echo", "priority": -99999999999}',
        "application/json",
        422,
        ["priority"],
        "-1000",
    ),
    "run-at-past-year-9999-in-utc": (
        b'{"kind": "debug.echo", "run_at": "9999-12-31T23:59:59-14:00"}',
        "application/json",
        422,
        ["run_at"],
        "out of range",
    ),
    "start-by-before-year-1-in-utc": (
        b'{"kind": "debug.echo", "start_by": "0001-01-01T00:00:00+14:00"}',
        "application/json",
        422,
        ["start_by"],
        "out of range",
    ),
}


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fields", "words"), ODD_BODIES.values(), ids=ODD_BODIES
)
def test_odd_body_is_refused_naming_the_problem(
    api: httpx.Client, body: bytes, content_type: str, status: int, fields: list[str], words: str
) -> None:
    before = stored(api)
    response = api.post("/v1/tasks", content=body, headers={"Content-Type": content_type})
    answer = assert_error(response, status, "invalid_request", fields)
    assert words in answer["fields"][0]["message"], answer
    assert stored(api) == before


def test_a_surrogate_pair_and_a_bom_are_still_accepted(api: httpx.Client) -> None:
    """What the body checks must not refuse: an escaped emoji (a valid pair), a UTF-8 BOM."""
    created = post_json(api, "/v1/tasks", b"\xef\xbb\xbf" + echo_with('"\\ud83e\\udd8a"'))
    assert created.status_code == 201, created.text
    assert created.json()["payload"] == {"a": "\U0001f98a"}


@pytest.mark.parametrize("size", [10_000, 100_000])
def test_huge_idempotency_key_is_refused_naming_the_header(api: httpx.Client, size: int) -> None:
    before = stored(api)
    response = api.post(
        "/v1/tasks", json={"kind": "debug.echo"}, headers={"Idempotency-Key": "k" * size}
    )
    assert_error(response, 422, "invalid_request", ["Idempotency-Key"])
    assert stored(api) == before


# (query, fields named)
HOSTILE_QUERIES: dict[str, tuple[str, list[str]]] = {
    "limit-10000-digits": ("limit=" + "9" * 10_000, ["limit"]),
    "limit-2-to-the-70": (f"limit={2**70}", ["limit"]),
    "cursor-past-64-bits": (f"cursor={2**70}", ["cursor"]),
    "cursor-10000-digits": ("cursor=" + "9" * 10_000, ["cursor"]),
}


@pytest.mark.parametrize(("query", "fields"), HOSTILE_QUERIES.values(), ids=HOSTILE_QUERIES)
def test_hostile_list_query_is_refused_naming_the_parameter(
    api: httpx.Client, query: str, fields: list[str]
) -> None:
    before = stored(api)
    response = send_raw(api, "GET", f"/v1/tasks?{query}")
    assert_error(response, 422, "invalid_request", fields)
    assert stored(api) == before


def test_ten_thousand_query_parameters_answer_quickly(api: httpx.Client) -> None:
    """10 000 short parameters are read; 10 000 longer ones make a request line over the
    HTTP server's own limit (about 64 kB), which it refuses (400) before the application."""
    before = stored(api)
    same = "&".join(["a="] * 10_000)
    apart = "&".join(f"p{i}=1" for i in range(10_000))
    for path in ("/v1/tasks", "/v1/batches", "/v1/queues"):
        for query, statuses in ((same, (200,)), (apart, (200, 400))):
            started = time.monotonic()
            response = send_raw(api, "GET", f"{path}?{query}")
            assert response.status_code in statuses, response.text
            assert time.monotonic() - started < HEALTH_DEADLINE_S
    repeated = send_raw(api, "GET", "/v1/tasks?" + "&".join(["limit=5"] * 2_000))
    assert repeated.status_code == 200 and len(repeated.json()["items"]) <= 5
    assert stored(api) == before


def test_oversized_body_and_bad_json_do_not_stop_a_good_submit_after_them(
    api: httpx.Client,
) -> None:
    """After every kind of refusal above on one connection, the API still stores good work."""
    for content in (oversized_task(), nested(100_000, "array").encode(), b'{"a": 1, "a": 2}'):
        assert 400 <= post_json(api, "/v1/tasks", content).status_code < 500
    created = api.post("/v1/tasks", json={"kind": "debug.echo", "payload": {"after": True}})
    assert created.status_code == 201, created.text
