"""A process pool for CPU-bound kinds whose runs can be stopped by force.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one running call, so this pool keeps
one child process per slot, talks to it over a pipe (job in; progress messages and the result
out) and, to stop a run, kills that child and starts a fresh one for the next job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from genqueue.artifacts import ArtifactStore
from genqueue.errors import (
    FieldProblem,
    ForbiddenPathError,
    InvalidInputError,
    RateLimited,
    Retry,
)
from genqueue.inputs import InputReader
from genqueue.kinds import TaskContext, check_event
from genqueue.settings import Settings

log = logging.getLogger(__name__)


class TaskCancelledError(Exception):
    """Raised inside a handler's ``ctx.progress`` once its task is cancelled."""


class RemoteError(Exception):
    """A handler failed inside a pool process; the message carries its type and text."""


@dataclass(frozen=True)
class Job:
    import_path: str
    payload: dict[str, Any]
    task_id: str
    attempt: int
    artifact_root: str
    inputs: InputReader
    settings: Settings


class _ChildContext:
    """TaskContext inside a pool process: progress goes up the pipe."""

    def __init__(self, conn: Connection, job: Job) -> None:
        self._conn = conn
        self._job = job
        self._artifacts = ArtifactStore(job.artifact_root)

    @property
    def task_id(self) -> str:
        return self._job.task_id

    @property
    def attempt(self) -> int:
        return self._job.attempt

    @property
    def cancelled(self) -> bool:
        return False  # a cancelled run is killed, it never needs to look

    def progress(self, fraction: float, message: str = "") -> None:
        self._conn.send(("progress", min(1.0, max(0.0, fraction)), message))

    def save_artifact(self, name: str, data: bytes, content_type: str) -> str:
        return self._artifacts.save(self._job.task_id, name, data)

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        check_event(event_type, data)
        self._conn.send(("event", event_type, data))

    @property
    def inputs(self) -> InputReader:
        return self._job.inputs

    @property
    def settings(self) -> Settings:
        return self._job.settings


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Linux: get ``sig`` when the parent dies, even by SIGKILL, so no child outlives it
    (pool processes get SIGKILL; the workers of ``genqueue up`` get SIGTERM, a clean stop)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, sig)


def _child_main(conn: Connection) -> None:
    from genqueue.kinds import resolve_kind

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    while True:
        try:
            job: Job = conn.recv()
        except EOFError:
            return
        try:
            kind = resolve_kind(job.import_path)
            payload = kind.payload_model.model_validate(job.payload)
            result = kind.handler(payload, _ChildContext(conn, job))
            conn.send(("ok", kind.dump_result(result)))
        except Retry as exc:
            asked = exc.retry_after_s if isinstance(exc, RateLimited) else None
            conn.send(("retry", type(exc) is RateLimited, str(exc), exc.delay_s, asked))
        except (InvalidInputError, ForbiddenPathError) as exc:
            conn.send(("invalid", str(exc)))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class _Child:
    def __init__(self, ctx: Any) -> None:
        self.conn, child_conn = ctx.Pipe()
        self.process: BaseProcess = ctx.Process(
            target=_child_main, args=(child_conn,), daemon=True, name="genqueue-pool"
        )
        self.process.start()
        child_conn.close()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, ValueError):
            if self.process.pid is not None:
                os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(5)
        self.conn.close()


class ProcessPool:
    """``size`` child processes (started on first use); ``run`` one job in a free one."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._mp = multiprocessing.get_context("spawn")
        self._idle: list[_Child] = []
        self._slots = asyncio.Semaphore(size)
        self._all: set[_Child] = set()

    async def run(self, job: Job, ctx: TaskContext) -> dict[str, Any]:
        """Run ``job`` in a child; cancelling this coroutine kills the child (hard stop)."""
        async with self._slots:
            child = self._idle.pop() if self._idle else await self._spawn()
            clean = False
            try:
                result = await self._exchange(child, job, ctx)
                clean = True
                return result
            finally:
                if clean or (child.process.is_alive() and not _was_cancelled()):
                    self._idle.append(child)
                else:
                    self._all.discard(child)
                    await asyncio.to_thread(child.kill)

    async def _spawn(self) -> _Child:
        child = await asyncio.to_thread(_Child, self._mp)
        self._all.add(child)
        return child

    async def _exchange(self, child: _Child, job: Job, ctx: TaskContext) -> dict[str, Any]:
        """Send the job; relay its progress and events to ``ctx`` until it ends."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        fd = child.conn.fileno()

        def readable() -> None:
            try:
                inbox.put_nowait(child.conn.recv())
            except (EOFError, OSError):
                loop.remove_reader(fd)
                inbox.put_nowait(("died",))

        loop.add_reader(fd, readable)
        try:
            child.conn.send(job)
            while True:
                message = await inbox.get()
                match message:
                    case ("progress", fraction, text):
                        ctx.progress(fraction, text)
                    case ("event", event_type, data):
                        ctx.emit(event_type, data)
                    case ("ok", result):
                        return dict(result)
                    case ("retry", rate_limited, reason, delay_s, asked):
                        if rate_limited:
                            raise RateLimited(reason, delay_s, asked)
                        raise Retry(reason, delay_s)
                    case ("invalid", text):
                        raise InvalidInputError([FieldProblem("payload", text)])
                    case ("error", text):
                        raise RemoteError(text)
                    case _:
                        code = child.process.exitcode
                        raise RemoteError(f"pool process died (exit code {code})")
        finally:
            loop.remove_reader(fd)

    async def aclose(self) -> None:
        for child in list(self._all):
            await asyncio.to_thread(child.kill)
        self._all.clear()
        self._idle.clear()


def _was_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
