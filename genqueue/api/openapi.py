"""The OpenAPI document as the API really behaves, for clients and fuzzers alike.

FastAPI builds most of it from the routes. This module adds what FastAPI cannot see:

- A task's ``payload`` depends on its ``kind``, and the routes validate it by hand
  (``Kind.validate_payload``, so a 422 names ``payload.width``). The document's ``TaskCreate``
  (the body of ``POST /v1/tasks`` and each task of ``POST /v1/batches``) is therefore a union
  discriminated on ``kind``: one variant per kind registered in this process (entry points
  and ``--kinds`` modules), with that kind's payload schema.
- What the app answers around the routes: 400 (a body that is not UTF-8 JSON) and 413
  (``BodyLimit``) on every operation that reads a body, and the ``ErrorBody`` its validation
  handler really sends for a 422, in place of FastAPI's ``HTTPValidationError``.

Statuses a route itself can answer (404, 409, 503, ...) are declared on the route.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from genqueue.api.errors import error_responses
from genqueue.api.schemas import ErrorBody
from genqueue.kinds import Kind, KindRegistry, import_object

REF = "#/components/schemas/"
BODY_MODEL = "x-genqueue-body-model"  # see json_body; replaced before the document is served
# delay_s and run_at are each optional, but not together (routes/tasks.py task_request).
NOT_BOTH_DELAY_AND_RUN_AT = {
    "not": {
        "required": ["delay_s", "run_at"],
        "properties": {"delay_s": {"type": "number"}, "run_at": {"type": "string"}},
    }
}
WHEN_NOTE = (
    " Also refused (422), as JSON Schema has no clock: a `start_by` already past or not after"
    " the start, a `run_at` more than 30 days ahead."
)


def install_openapi(app: FastAPI, kinds: KindRegistry, max_batch: int) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) serve the completed document."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            add_body_models(document)
            add_kind_union(document, kinds, max_batch)
            document_app_errors(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that parses its JSON body by hand (to answer 403 for
    a forbidden path rather than 422): documents ``model`` as its body. The marker names the
    class (FastAPI's encoder takes JSON only) and ``add_body_models`` imports it again."""
    return {BODY_MODEL: f"{model.__module__}:{model.__qualname__}"}


def raw_body(media_types: list[str], description: str) -> dict[str, Any]:
    """The ``openapi_extra`` of a route whose body is a file, not JSON."""
    schema = {"type": "string", "format": "binary"}
    content = {media_type: {"schema": schema} for media_type in media_types}
    return {"requestBody": {"required": True, "description": description, "content": content}}


def add_body_models(document: dict[str, Any]) -> None:
    """Turn each ``json_body`` marker into the operation's documented JSON body."""
    components: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            path = operation.pop(BODY_MODEL, None)
            if path is not None:
                [ref] = add_models(components, [import_object(path)])
                content = {"application/json": {"schema": ref}}
                operation["requestBody"] = {"required": True, "content": content}


def variant_name(kind_name: str) -> str:
    """The component name of one kind's ``TaskCreate`` variant."""
    return "TaskCreate_" + re.sub(r"[^A-Za-z0-9._-]", "_", kind_name)


def payload_optional(kind: Kind) -> bool:
    """Whether a task of ``kind`` may leave out ``payload`` (it defaults to ``{}``)."""
    try:
        kind.payload_model.model_validate({})
    except ValidationError:
        return False
    return True


def add_kind_union(document: dict[str, Any], kinds: KindRegistry, max_batch: int) -> None:
    """Replace the ``TaskCreate`` component by a union discriminated on ``kind``; a batch
    takes at most ``max_batch`` of them (``GENQUEUE_MAX_BATCH``)."""
    components: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    batch = components.get("BatchCreate")
    if batch is not None:
        batch["properties"]["tasks"]["maxItems"] = max_batch
    base = components.get("TaskCreate")
    registered = sorted(kinds, key=lambda k: k.name)
    if base is None or not registered:
        return
    payload_refs = add_models(components, [k.payload_model for k in registered])
    base = {**base, **NOT_BOTH_DELAY_AND_RUN_AT}
    mapping: dict[str, str] = {}
    for kind, payload_ref in zip(registered, payload_refs, strict=True):
        properties = dict(base["properties"])
        properties["kind"] = {"type": "string", "const": kind.name, "title": "Kind"}
        properties["payload"] = {**payload_ref, "description": "this kind's payload"}
        required = ["kind"] if payload_optional(kind) else ["kind", "payload"]
        name = variant_name(kind.name)
        components[name] = {
            **base,
            "title": name,
            "description": f"A `{kind.name}` task. {kind.description}".strip(),
            "properties": properties,
            "required": required,
        }
        mapping[kind.name] = REF + name
    components["TaskCreate"] = {
        "title": "TaskCreate",
        "description": "A task to submit: its fields depend on `kind`, one of the kinds"
        " registered (GET /v1/kinds)." + WHEN_NOTE,
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "kind", "mapping": mapping},
    }


def add_models(components: dict[str, Any], models: list[type[BaseModel]]) -> list[dict[str, Any]]:
    """Put the validation schemas of ``models`` into ``components`` and return a ``$ref`` to
    each. A name FastAPI already gave to another schema (two classes called ``Point``) is
    not reused: the newcomer gets a ``Kind`` prefix."""
    marker = "#/$defs/"
    refs, top = models_json_schema(
        [(model, "validation") for model in models], ref_template=marker + "{model}"
    )
    defs: dict[str, Any] = top.get("$defs", {})
    renames: dict[str, str] = {}
    for name in defs:
        target = name
        while target in components and components[target] != defs[name]:
            target = f"Kind{target}"
        renames[name] = target
    for name, definition in defs.items():
        components[renames[name]] = _rewrite_refs(definition, marker, renames)
    return [_rewrite_refs(refs[(model, "validation")], marker, renames) for model in models]


def _rewrite_refs(value: Any, marker: str, renames: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {key: _rewrite_refs(item, marker, renames) for key, item in value.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith(marker):
            out["$ref"] = REF + renames[ref.removeprefix(marker)]
        return out
    if isinstance(value, list):
        return [_rewrite_refs(item, marker, renames) for item in value]
    return value


def document_app_errors(document: dict[str, Any]) -> None:
    """400/413/422 where a body is read; every 422 with the ``ErrorBody`` really sent."""
    components: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    add_models(components, [ErrorBody])
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            body = operation.get("requestBody", {}).get("content", {})
            statuses = [413, 422] if body else []
            if "application/json" in body:
                statuses.append(400)  # FastAPI's answer to a body that is not UTF-8
            if "422" in responses:
                statuses.append(422)
            for status, entry in error_responses(*statuses).items():
                responses[str(status)] = _openapi_response(entry)
    for unused in ("HTTPValidationError", "ValidationError"):
        if not _referenced(document, REF + unused):
            components.pop(unused, None)


def _openapi_response(entry: dict[str, Any]) -> dict[str, Any]:
    """One ``error_responses`` entry as an OpenAPI response object."""
    response: dict[str, Any] = {
        "description": entry["description"],
        "content": {"application/json": {"schema": {"$ref": REF + ErrorBody.__name__}}},
    }
    if "headers" in entry:
        response["headers"] = entry["headers"]
    return response


def _referenced(value: Any, ref: str) -> bool:
    if isinstance(value, dict):
        return value.get("$ref") == ref or any(_referenced(v, ref) for v in value.values())
    if isinstance(value, list):
        return any(_referenced(v, ref) for v in value)
    return False
