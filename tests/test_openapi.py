"""The OpenAPI document tells the truth: a task body is a union on ``kind`` with each kind's
payload schema, errors have the body really sent, and a 405 says what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from genqueue.api.app import create_app
from genqueue.kinds import load_kinds
from genqueue.settings import load_settings

REF = "#/components/schemas/"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("openapi"))
    return create_app(settings, load_kinds(["tests.preview_kinds"])).openapi()


def schema(document: dict[str, Any], ref: str) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"][ref.removeprefix(REF)]
    return found


def test_task_create_is_a_union_on_kind_with_every_registered_kind(
    document: dict[str, Any],
) -> None:
    union = schema(document, REF + "TaskCreate")
    mapping = union["discriminator"]["mapping"]
    assert union["discriminator"]["propertyName"] == "kind"
    assert set(mapping) == {k.name for k in load_kinds(["tests.preview_kinds"])}
    assert "image.generate" in mapping and "test.preview-async" in mapping  # a --kinds module
    assert [v["$ref"] for v in union["oneOf"]] == list(mapping.values())
    variant = schema(document, mapping["image.generate"])
    assert variant["properties"]["kind"]["const"] == "image.generate"
    assert variant["required"] == ["kind", "payload"]  # a prompt is required
    payload = schema(document, variant["properties"]["payload"]["$ref"])
    assert payload["properties"]["width"]["maximum"] == 2048
    assert variant["additionalProperties"] is False


def test_batch_tasks_are_the_same_union_bounded_by_max_batch(document: dict[str, Any]) -> None:
    tasks = schema(document, REF + "BatchCreate")["properties"]["tasks"]
    assert tasks["items"] == {"$ref": REF + "TaskCreate"}
    assert tasks["maxItems"] == load_settings().max_batch


def test_errors_are_documented_with_the_body_really_sent(document: dict[str, Any]) -> None:
    submit = document["paths"]["/v1/tasks"]["post"]["responses"]
    assert {"200", "201", "400", "403", "409", "413", "422", "503"} <= set(submit)
    for status in ("400", "409", "413", "422", "503"):
        body = submit[status]["content"]["application/json"]["schema"]
        assert body == {"$ref": REF + "ErrorBody"}, status
    assert "Retry-After" in submit["503"]["headers"]
    assert "404" in document["paths"]["/v1/tasks/{task_id}"]["get"]["responses"]
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_a_405_names_every_method_of_the_path(tmp_path: Path) -> None:
    app = create_app(load_settings(data_dir=tmp_path))
    with TestClient(app) as client:
        answer = client.request("TRACE", "/v1/collections/some-name")
        assert answer.status_code == 405
        assert answer.json()["error"] == "http_error"
        assert {m.strip() for m in answer.headers["allow"].split(",")} == {"DELETE", "GET"}
        assert client.put("/v1/tasks").headers["allow"] == "GET, POST"
