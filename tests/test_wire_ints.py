"""Integers of request bodies take whole numbers, 2.0 included (JSON Schema's integer), and
refuse true and false, which Python would read as 1 and 0 (found by the long fuzz)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from genqueue.api.routes.collections import IngestRequest
from genqueue.api.routes.keys import KeyCreate
from genqueue.api.schemas import TaskCreate


@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_is_not_an_integer(flag: bool) -> None:
    with pytest.raises(ValidationError, match="a whole number, not true or false"):
        TaskCreate.model_validate({"kind": "debug.echo", "priority": flag})
    with pytest.raises(ValidationError, match="a whole number"):
        IngestRequest.model_validate({"folder": "x", "images_per_task": flag})
    with pytest.raises(ValidationError, match="a whole number"):
        KeyCreate.model_validate({"user": "ann", "role": "user", "in_flight": flag})


def test_a_whole_float_is_an_integer() -> None:
    assert TaskCreate.model_validate({"kind": "debug.echo", "priority": 2.0}).priority == 2
    with pytest.raises(ValidationError):
        TaskCreate.model_validate({"kind": "debug.echo", "priority": 2.5})
