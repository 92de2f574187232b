"""Test and bench kinds module (``--kinds tests.model_kinds``): ``test.model``, whose tasks each
need one of several models (``payload.model``) that cost ``GENQUEUE_TEST_MODEL_LOAD_S`` seconds
to load (default 2, a GIL-free wait as reading weights from disk is) and
``GENQUEUE_TEST_MODEL_RUN_S`` to run (default 0.02). Every load and unload is written to the
file named by ``GENQUEUE_TEST_MODEL_LOG`` with the process id, so a test or bench can count
model loads per worker process. The two waits stand for cost (what affinity saves), never for
synchronisation: a test that needs a run held open gives it a ``gate`` file to wait for."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from genqueue import TaskContext, kind
from genqueue.settings import Settings
from genqueue.warm import model_loader
from tests.helpers import wait_until

QUEUE = "models"


def _note(what: str, model: str) -> None:
    if path := os.environ.get("GENQUEUE_TEST_MODEL_LOG"):
        with open(path, "a") as log:
            log.write(f"{what} {model} {os.getpid()}\n")


@model_loader("test-models")
def load_model(settings: Settings, name: str) -> Iterator[dict[str, str]]:
    time.sleep(float(os.environ.get("GENQUEUE_TEST_MODEL_LOAD_S", "2")))
    _note("load", name)
    yield {"name": name, "pid": str(os.getpid())}
    _note("unload", name)


class ModelPayload(BaseModel):
    model: str
    n: int = 0
    seconds: float | None = None  # this run's cost (None: GENQUEUE_TEST_MODEL_RUN_S)
    gate: str | None = None  # a file path: the run then ends once it exists


@kind(
    "test.model",
    payload=ModelPayload,
    queue=QUEUE,
    executor="thread",
    model=lambda payload: str(payload["model"]),
    models=load_model,
)
def run_model(payload: ModelPayload, ctx: TaskContext) -> dict[str, str]:
    """Run one item through the task's model; say which model and process served it."""
    model = ctx.model()
    assert model["name"] == payload.model
    seconds = payload.seconds
    time.sleep(
        seconds
        if seconds is not None
        else float(os.environ.get("GENQUEUE_TEST_MODEL_RUN_S", "0.02"))
    )
    if payload.gate:
        gate = Path(payload.gate)
        wait_until(gate.exists, timeout_s=50.0, message=f"gate {gate} opened")
    return dict(model)


def loads(log: Path) -> list[tuple[str, int]]:
    """(model, pid) of every load so far."""
    if not log.exists():
        return []
    lines = (line.split() for line in log.read_text().splitlines())
    return [(model, int(pid)) for what, model, pid in lines if what == "load"]
