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
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

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
from genqueue.previews import Preview, PreviewThrottle
from genqueue.resources import Resource, ResourceNotReadyError, Resources
from genqueue.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
CLOSE_WAIT_S = 5.0  # for an idle pool process to tear its resources down at shutdown


class TaskCancelledError(Exception):
    """Raised inside a handler's ``ctx.progress`` once its task is cancelled."""


class RemoteError(Exception):
    """A handler failed inside a pool process; the message carries its type and text."""


@dataclass(frozen=True)
class Job:
    import_path: str  # a Kind, or a plain function f(payload, ctx)
    payload: Any
    task_id: str
    attempt: int
    artifact_root: str
    inputs: InputReader
    settings: Settings


class _ChildContext:
    """TaskContext inside a pool process: progress, events and previews go up the pipe.

    A picture waiting for its time is sent by a timer once that has come, so a handler busy
    with a long step without calling the context still shows its last picture (as the
    worker's flusher does for handlers it runs itself). The handler's thread and the timer
    share the pipe under a lock; ``end`` stops the timer before the outcome is sent."""

    def __init__(self, conn: Connection, job: Job, resources: Resources) -> None:
        self._conn = conn
        self._job = job
        self._resources = resources
        self._artifacts = ArtifactStore(job.artifact_root)
        self._previews = PreviewThrottle()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._ended = False

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
        self._send(("progress", min(1.0, max(0.0, fraction)), message))
        self._send_preview(self._previews.due())

    def save_artifact(self, name: str, data: bytes, content_type: str) -> str:
        return self._artifacts.save(self._job.task_id, name, data)

    def resource(self, wanted: Resource[T]) -> T:
        return self._resources.get(wanted)

    def model(self) -> Any:
        raise ResourceNotReadyError("models are held by the worker: kinds with models do not pool")

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        check_event(event_type, data)
        self._send(("event", event_type, data))

    def preview(self, image: Any) -> None:
        self._send_preview(self._previews.offer(image))
        if self._previews.waiting:
            self._arm()

    def end(self, flush: bool) -> None:
        """The run is over: no more timed sends, and (``flush``, a run that returned) the
        preview still waiting for its time, before the outcome."""
        with self._lock:
            self._ended = True
            timer = self._timer
        if timer is not None:
            timer.cancel()
            timer.join()  # a send under way ends before the outcome goes
        if flush:
            self._send_preview(self._previews.flush())

    def _arm(self) -> None:
        with self._lock:
            if self._timer is None and not self._ended:
                self._timer = threading.Timer(self._previews.due_in_s(), self._on_time)
                self._timer.daemon = True
                self._timer.start()

    def _on_time(self) -> None:
        preview = self._previews.due()  # encoded here, off the handler's thread
        with self._lock:
            self._timer = None
        self._send_preview(preview)
        if self._previews.waiting:  # taken by a context call meanwhile, or a newer one came
            self._arm()

    def _send_preview(self, preview: Preview | None) -> None:
        if preview is not None:
            self._send(("preview", preview))

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            self._conn.send(message)

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


def _child_main(conn: Connection, settings: Settings, preload: list[str]) -> None:
    from genqueue.kinds import resolve_kind

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    # This process's resources, kept across jobs: a warm pool keeps its models loaded.
    resources = Resources(settings)
    try:
        for path in preload:
            resources.ready_sync(resolve_kind(path).all_resources)
        _serve(conn, resources)
    finally:
        resources.close_sync()


def _serve(conn: Connection, resources: Resources) -> None:
    """Run jobs until the parent closes the pipe: a kind's handler (its payload validated,
    its resources set up, its result dumped), or a plain function ``f(argument, ctx)`` of a
    handler's own (``genqueue.pools``; its return value comes back as it is)."""
    from genqueue.kinds import Kind, import_object

    while True:
        try:
            job: Job = conn.recv()
        except EOFError:
            return
        ctx = _ChildContext(conn, job, resources)
        outcome: tuple[Any, ...]
        try:
            target = import_object(job.import_path)
            if isinstance(target, Kind):
                payload = target.payload_model.model_validate(job.payload)
                resources.ready_sync(target.resources_for(job.payload))
                result = target.dump_result(target.handler(payload, ctx))
            else:
                result = target(job.payload, ctx)
            outcome = ("ok", result)
        except Retry as exc:
            asked = exc.retry_after_s if isinstance(exc, RateLimited) else None
            outcome = ("retry", type(exc) is RateLimited, str(exc), exc.delay_s, asked)
        except (InvalidInputError, ForbiddenPathError) as exc:
            outcome = ("invalid", str(exc))
        except Exception as exc:
            outcome = ("error", f"{type(exc).__name__}: {exc}")
        ctx.end(flush=outcome[0] == "ok")
        conn.send(outcome)


class _Child:
    def __init__(self, ctx: Any, settings: Settings, preload: list[str]) -> None:
        self.conn, child_conn = ctx.Pipe()
        self.process: BaseProcess = ctx.Process(
            target=_child_main,
            args=(child_conn, settings, preload),
            daemon=True,
            name="genqueue-pool",
        )
        self.process.start()
        child_conn.close()

    def close(self, wait_s: float) -> None:
        """Let the child tear its resources down and exit; kill it if it takes too long."""
        self.conn.close()  # the child reads EOF
        self.process.join(wait_s)
        if self.process.is_alive():
            self.kill()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, ValueError):
            if self.process.pid is not None:
                os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(5)
        self.conn.close()


class ProcessPool:
    """``size`` child processes (started on first use); ``run`` one job in a free one."""

    def __init__(self, size: int, settings: Settings, *, preload: list[str] | None = None) -> None:
        self._size = size
        self._settings = settings
        self._preload = preload or []  # kinds whose resources each child sets up at start
        self._mp = multiprocessing.get_context("spawn")
        self._idle: list[_Child] = []
        self._slots = asyncio.Semaphore(size)
        self._all: set[_Child] = set()

    async def run(self, job: Job, ctx: TaskContext) -> Any:
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

    async def start(self) -> None:
        """Start every process now (``--preload``), each setting up its resources, rather
        than on first use."""
        while len(self._all) < self._size:
            self._idle.append(await self._spawn())

    async def _spawn(self) -> _Child:
        child = await asyncio.to_thread(_Child, self._mp, self._settings, self._preload)
        self._all.add(child)
        return child

    async def _exchange(self, child: _Child, job: Job, ctx: TaskContext) -> Any:
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
                    case ("preview", preview):
                        ctx.preview(preview)  # throttled in the child: it goes as it is
                    case ("ok", result):
                        return result
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
        """Idle children exit cleanly (their resources torn down); busy ones are killed."""
        idle = set(self._idle)
        for child in list(self._all):
            if child in idle:
                await asyncio.to_thread(child.close, CLOSE_WAIT_S)
            else:
                await asyncio.to_thread(child.kill)
        self._all.clear()
        self._idle.clear()


def _was_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
