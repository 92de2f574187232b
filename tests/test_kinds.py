"""Kinds: declaration, payload validation, registry, entry points."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from genqueue.errors import ConfigError, InvalidInputError, UnknownKindError
from genqueue.kinds import KindRegistry, TaskContext, kind, load_kinds, resolve_kind


class Payload(BaseModel):
    size: int = Field(ge=1, le=10)


@kind("test.double", payload=Payload, queue="tests")
async def double(payload: Payload, ctx: TaskContext) -> dict[str, int]:
    return {"size": payload.size * 2}


def test_builtin_kinds_come_from_the_entry_point() -> None:
    registry = load_kinds()
    assert {"image.generate", "debug.echo", "debug.sleep", "debug.fail"} <= set(registry.names())
    assert registry.get("image.generate").queue == "image"


def test_extra_module_registers_its_kinds() -> None:
    registry = load_kinds(["tests.test_kinds"])
    assert registry.get("test.double") is double
    assert double.executor == "async" and double.queue == "tests"


def test_payload_errors_name_the_field_under_payload() -> None:
    with pytest.raises(InvalidInputError) as info:
        double.validate_payload({"size": 99})
    [problem] = info.value.problems
    assert problem.field == "payload.size" and "less than or equal to 10" in problem.message


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(UnknownKindError, match=r"known kinds: test\.double"):
        KindRegistry([double]).get("nope")


def test_sync_handler_cannot_be_declared_async() -> None:
    with pytest.raises(ConfigError, match="needs an async handler"):

        @kind("test.bad", payload=Payload, executor="async")
        def bad(payload: Payload, ctx: TaskContext) -> None: ...


def test_same_name_twice_is_refused() -> None:
    other = kind("test.double", payload=Payload)(lambda p, c: None)
    with pytest.raises(ConfigError, match="registered twice"):
        KindRegistry([double, other])


def test_a_kind_is_found_again_by_import_path() -> None:
    assert resolve_kind(double.import_path) is double
