"""Test-only kinds module (``--kinds tests.slot_kinds``): ``test.gpu`` takes one ``gpu`` slot
per run and holds it until its gate file exists; ``test.cpu`` takes none and returns at once."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from genqueue import TaskContext, kind
from tests.helpers import wait_for


class Gated(BaseModel):
    gate: str = ""  # a file path: the run ends once it exists


@kind("test.gpu", payload=Gated, queue="gpu", slots={"gpu": 1}, timeout_s=60.0)
async def on_gpu(payload: Gated, ctx: TaskContext) -> dict[str, str]:
    """Hold a GPU slot until the gate opens."""

    async def opened() -> bool:
        return Path(payload.gate).exists()

    await wait_for(opened, 50, message=f"gate {payload.gate}")
    return {"ran": "gpu"}


@kind("test.cpu", payload=Gated, queue="cpu")
async def on_cpu(payload: Gated, ctx: TaskContext) -> dict[str, str]:
    """No capacity beyond a worker slot."""
    return {"ran": "cpu"}
