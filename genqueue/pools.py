"""Killable work of a handler's own, in warm processes: the public face of the worker's pool.

An async handler that must run CPU work it can stop at once (``video.generate`` local renders
in a child while the cloud provider of the same kind waits on HTTP) declares a pool as a
resource and runs plain functions in it:

    renderer = process_pool("video-render", size=1)

    @kind("video.generate", ..., resources=[renderer])
    async def generate(payload, ctx):
        out = await ctx.resource(renderer).run(render, payload.model_dump(), ctx)

``render(argument, ctx)`` must be a module-level function (the child imports it by name); its
``ctx`` reports progress, events and previews up the pipe, and what it returns comes back as
it is (anything picklable). The processes stay up between runs, so imports and whatever
their own resources load are paid once per worker; cancelling the awaiting coroutine (a
cancel, a timeout, a shutdown) kills only the process doing that run, and the next run gets a
fresh one. The pool is torn down with the worker's resources.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from genqueue.kinds import TaskContext
from genqueue.resources import Resource
from genqueue.settings import Settings
from genqueue.worker.procpool import Job, ProcessPool

R = TypeVar("R")


class KillablePool:
    """``size`` warm processes running one function call each at a time."""

    def __init__(self, size: int, settings: Settings) -> None:
        self._pool = ProcessPool(size, settings)

    async def run(
        self, function: Callable[[Any, TaskContext], R], argument: Any, ctx: TaskContext
    ) -> R:
        """``function(argument, ctx)`` in a pool process; cancelling this kills that process."""
        path = f"{function.__module__}:{function.__qualname__}"
        if "<" in path:
            raise ValueError(f"{path}: only a module-level function can run in a pool process")
        # The child saves nothing itself (the caller saves artifacts from the result), so any
        # root will do for its context.
        root = tempfile.gettempdir()
        job = Job(path, argument, ctx.task_id, ctx.attempt, root, ctx.inputs, ctx.settings)
        result: R = await self._pool.run(job, ctx)
        return result

    async def aclose(self) -> None:
        await self._pool.aclose()


def process_pool(name: str, size: int = 1) -> Resource[KillablePool]:
    """A worker-scoped pool of ``size`` processes, started on first use."""

    async def setup(settings: Settings) -> AsyncIterator[KillablePool]:
        pool = KillablePool(size, settings)
        try:
            yield pool
        finally:
            await pool.aclose()

    setup.__qualname__ = setup.__name__ = f"process_pool_{name}"
    return Resource(name, setup)
