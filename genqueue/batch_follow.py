"""Following a submitted batch to its end, for ``client.map``: which tasks have finished, the
progress bar, and the results in input order. Pure bookkeeping; the client does the I/O.

Why a catch-up listing besides the event stream: the stream of ``/v1/events?batch_id=``
starts when it is opened, after the batch was stored, so tasks that finished in between are
not in it. The follower starts *stale*; once the stream is live (its first frame) the
client lists the batch's finished tasks and hands them over (:meth:`BatchFollower.caught_up`).
Both may report the same task; the follower counts each task once. A ``lagged`` frame (the
server dropped events) makes it stale again.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel

from genqueue.api.schemas import BatchPublic, TaskPublic
from genqueue.errors import GenqueueError, TaskFailedError, WaitTimeoutError
from genqueue.models import FINISHED, TaskStatus
from genqueue.sse import ServerEvent
from genqueue.task_updates import result_of

if TYPE_CHECKING:
    from rich.progress import Progress

LAGGED = "lagged"


def progress_bar() -> Progress:
    """The bar ``map(progress=True)`` shows on stderr (rich is imported only then)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


class BatchFollower:
    """The state of one ``map`` call: a context manager, so the bar is taken down however
    the call ends."""

    def __init__(
        self, batch: BatchPublic, label: str, timeout_s: float, progress: bool = False
    ) -> None:
        self.batch = batch
        self.stale = True
        self._ids = set(batch.task_ids)
        self._ended: dict[str, TaskStatus] = {}
        self._failed: list[str] = []
        self._deadline = time.monotonic() + timeout_s
        self._timeout_s = timeout_s
        self._bar: Progress | None = None
        if progress:
            self._bar = progress_bar()
            self._row = self._bar.add_task(label, total=len(self._ids), failed=0)
            self._bar.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    @property
    def done(self) -> bool:
        return len(self._ended) == len(self._ids)

    @property
    def first_failed(self) -> str | None:
        """The id of the first task seen to end without a result, if any."""
        return self._failed[0] if self._failed else None

    def saw(self, event: ServerEvent) -> None:
        """One frame of the batch's event stream."""
        if event.event == LAGGED:
            self.stale = True
            return
        status = event.data.get("status")
        if status in FINISHED:
            self._end(str(event.data.get("task_id")), TaskStatus(status))

    def caught_up(self, tasks: list[TaskPublic]) -> None:
        """The batch's finished tasks, listed once the stream was live."""
        for task in tasks:
            if task.status in FINISHED:
                self._end(task.id, task.status)
        self.stale = False

    def check_deadline(self) -> None:
        """``WaitTimeoutError`` (with the batch id) once the time given has passed."""
        if not self.done and time.monotonic() > self._deadline:
            left = len(self._ids) - len(self._ended)
            raise WaitTimeoutError(
                f"batch {self.batch.id}: {left} of {len(self._ids)} tasks not finished"
                f" after {self._timeout_s:g} s",
                batch_id=self.batch.id,
            )

    def _end(self, task_id: str, status: TaskStatus) -> None:
        if task_id not in self._ids or task_id in self._ended:
            return
        self._ended[task_id] = status
        if status != TaskStatus.SUCCEEDED:
            self._failed.append(task_id)
        if self._bar is not None:
            self._bar.update(self._row, completed=len(self._ended), failed=len(self._failed))

    def outcomes(
        self,
        tasks: list[TaskPublic],
        result_type: type[BaseModel] | None,
        return_exceptions: bool,
    ) -> list[Any]:
        """Results in input order; a task without one is its ``TaskFailedError`` in the list
        with ``return_exceptions``, else the first such (in input order) is raised."""
        by_id = {task.id: task for task in tasks}
        missing = [i for i in self.batch.task_ids if i not in by_id]
        if missing:
            raise GenqueueError(f"batch {self.batch.id}: tasks {missing[:5]} were not listed")
        out: list[Any] = []
        for task_id in self.batch.task_ids:
            try:
                out.append(result_of(by_id[task_id], result_type))
            except TaskFailedError as exc:
                if not return_exceptions:
                    raise
                out.append(exc)
        return out
