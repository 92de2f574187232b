"""Test-only kinds module: ``test.resourced`` (a thread) and ``test.resourced-in-pool`` (a pool
process) both use ``counted``, a resource that writes a line to the file named by
``GENQUEUE_TEST_RESOURCE_LOG`` on every setup and teardown, with the process id, so a test can
count how often each process set it up (``--kinds tests.resource_kinds``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from genqueue import TaskContext, kind
from genqueue.resources import resource
from genqueue.settings import Settings

QUEUE = "resourced"


def note(what: str) -> None:
    with open(os.environ["GENQUEUE_TEST_RESOURCE_LOG"], "a") as log:
        log.write(f"{what} {os.getpid()}\n")


@resource("test-counted")
def counted(settings: Settings) -> Iterator[dict[str, int]]:
    note("setup")
    yield {"pid": os.getpid()}
    note("teardown")


class Nothing(BaseModel):
    n: int = 0


@kind("test.resourced", payload=Nothing, queue=QUEUE, executor="thread", resources=[counted])
def resourced(payload: Nothing, ctx: TaskContext) -> dict[str, int]:
    """Say which process's resource served this run."""
    return {"pid": ctx.resource(counted)["pid"]}


@kind(
    "test.resourced-in-pool",
    payload=Nothing,
    queue=QUEUE,
    executor="process",
    resources=[counted],
)
def resourced_in_pool(payload: Nothing, ctx: TaskContext) -> dict[str, int]:
    """The same, in a pool process."""
    return {"pid": ctx.resource(counted)["pid"]}


def lines(log: Path) -> list[tuple[str, int]]:
    """The (event, pid) lines written so far."""
    if not log.exists():
        return []
    return [(w, int(p)) for w, p in (line.split() for line in log.read_text().splitlines())]
