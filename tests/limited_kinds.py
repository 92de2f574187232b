"""Test-only kinds module: ``test.gated`` takes a permit of the shared limit of
``test-upstream`` and runs until its gate file exists, so a test holds a permit for exactly as
long as it needs (``--kinds tests.limited_kinds`` on the API and the workers)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from genqueue import TaskContext, kind

RESOURCE = "test-upstream"


class Gate(BaseModel):
    gate: str  # a file path: the run ends once it exists


@kind("test.gated", payload=Gate, queue="gated", timeout_s=60.0, resource=RESOURCE)
async def gated(payload: Gate, ctx: TaskContext) -> dict[str, Any]:
    """Hold a permit of ``test-upstream`` until the gate file appears."""
    gate = Path(payload.gate)
    while not gate.exists():
        await asyncio.sleep(0.02)
    return {"passed": payload.gate}
