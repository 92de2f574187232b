"""Test-only kinds module: ``test.gated`` takes a permit of the shared limit of
``test-upstream`` and runs until its gate file exists, so a test holds a permit for exactly as
long as it needs (``--kinds tests.limited_kinds`` on the API and the workers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from genqueue import TaskContext, kind
from tests.helpers import wait_for

RESOURCE = "test-upstream"


class Gate(BaseModel):
    gate: str  # a file path: the run ends once it exists


@kind("test.gated", payload=Gate, queue="gated", timeout_s=60.0, resource=RESOURCE)
async def gated(payload: Gate, ctx: TaskContext) -> dict[str, Any]:
    """Hold a permit of ``test-upstream`` until the gate file appears."""
    gate = Path(payload.gate)

    async def opened() -> bool:
        return gate.exists()

    await wait_for(opened, timeout_s=50.0, message=f"gate {gate} opened")
    return {"passed": payload.gate}
