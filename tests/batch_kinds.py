"""Test-only kinds module: ``test.batched`` runs in batches of up to 8 (``--kinds
tests.batch_kinds``). Every call writes one line to the file named by
``GENQUEUE_TEST_BATCH_LOG``: the task ids it was given. A payload may fail its own task, and a
gate file holds the whole batch until it exists, so a test can act while a batch runs."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from genqueue import TaskContext, kind
from genqueue.errors import FieldProblem, InvalidInputError
from genqueue.kinds import Batching
from genqueue.retry import RetryPolicy
from tests.helpers import wait_until

QUEUE = "batched"
MAX_SIZE = 8


class Item(BaseModel):
    n: int
    fail: bool = False
    gate: str | None = None  # a file path: the batch runs on once it exists


@kind(
    "test.batched",
    payload=Item,
    queue=QUEUE,
    executor="thread",
    retry=RetryPolicy(max_attempts=3, base_delay_s=0.05, max_delay_s=0.1),
    timeout_s=60.0,
    batching=Batching(max_size=MAX_SIZE, max_wait_s=0.3),
)
def batched(items: list[Item], contexts: list[TaskContext]) -> list[dict[str, int] | Exception]:
    """Double each n; a failing item fails alone, at once (bad input is not retried)."""
    with open(os.environ["GENQUEUE_TEST_BATCH_LOG"], "a") as log:
        log.write(" ".join(ctx.task_id for ctx in contexts) + "\n")
    for gate in {item.gate for item in items if item.gate}:
        wait_until(lambda g=gate: Path(g).exists(), 50, 0.02, f"gate {gate}")  # type: ignore[misc]
    bad = [InvalidInputError([FieldProblem("payload.fail", f"item {i.n} is bad")]) for i in items]
    return [b if i.fail else {"double": 2 * i.n} for i, b in zip(items, bad, strict=True)]


def batches(log: Path) -> list[list[str]]:
    """The task ids of every call so far, one list per call."""
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []
