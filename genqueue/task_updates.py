"""What ``client.stream(task_id)`` yields: a task's event stream as typed objects.

One class per thing that can happen, so a caller matches on type rather than on event names
and dict keys::

    for update in client.stream(task.id):
        match update:
            case TaskSnapshot(task=t):       print("position", t.position)
            case TaskProgress(fraction=f):   print(f"{f:.0%}")
            case Preview():                  update.image().save("preview.jpg")
            case TaskFinished(task=t):       print(t.status, t.result)

:func:`update_of` is pure: the client reads the stream, this module names what it read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar, overload

from pydantic import BaseModel

from genqueue.api.schemas import TaskPublic
from genqueue.errors import GenqueueError, TaskFailedError
from genqueue.models import FINISHED, EventType, TaskStatus
from genqueue.previews import Preview
from genqueue.sse import ServerEvent

SNAPSHOT = "snapshot"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class TaskSnapshot:
    """The whole task as it stands: the first update of a stream, and again when its place
    in line changes or the stream lost events."""

    task: TaskPublic


@dataclass(frozen=True)
class TaskProgress:
    """The handler reported progress: ``fraction`` in 0..1 and a message."""

    fraction: float
    message: str


@dataclass(frozen=True)
class TaskStatusChange:
    """A lifecycle step short of the end: ``task.started``, ``task.retrying`` (``data`` has
    the error and the delay), ``task.queued``, ``task.cancel_requested``."""

    type: str
    status: TaskStatus
    data: dict[str, Any]


@dataclass(frozen=True)
class TaskEvent:
    """An event the handler raised itself (``ctx.emit``), e.g. ``diagnosis.alert``."""

    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class TaskFinished:
    """The end: the task as finished (succeeded, failed, cancelled or expired), with its
    result or error. Always the last update."""

    task: TaskPublic

    @overload
    def result(self, result_type: None = None) -> dict[str, Any]: ...

    @overload
    def result(self, result_type: type[M]) -> M: ...

    def result(self, result_type: type[BaseModel] | None = None) -> BaseModel | dict[str, Any]:
        """The result, as ``client.run`` returns it; ``TaskFailedError`` if it has none."""
        return result_of(self.task, result_type)


# What a frame of the stream can be read as; a stream adds TaskFinished at its end.
FrameUpdate = TaskSnapshot | TaskProgress | Preview | TaskStatusChange | TaskEvent
TaskUpdate = FrameUpdate | TaskFinished


def update_of(event: ServerEvent) -> FrameUpdate | None:
    """The update a frame of ``/v1/events?task_id=`` stands for; None for frames that are
    not about the task (``lagged``: a fresh snapshot follows). A finishing event comes back
    as a :class:`TaskStatusChange` whose status is finished: the caller fetches the task
    (the event does not carry the result) and yields :class:`TaskFinished`."""
    if event.event == SNAPSHOT:
        return TaskSnapshot(TaskPublic.model_validate(event.data))
    if "task_id" not in event.data:
        return None
    data: dict[str, Any] = event.data.get("data") or {}
    match event.event:
        case EventType.PROGRESS:
            return TaskProgress(float(data.get("fraction", 0.0)), str(data.get("message", "")))
        case EventType.PREVIEW:
            return Preview.from_event(event)
        case name if name.startswith("task."):
            return TaskStatusChange(name, TaskStatus(event.data["status"]), data)
        case name:
            return TaskEvent(name, data)


def finished(event: ServerEvent) -> bool:
    """Whether a frame says its task has finished (its snapshot, or one of its events)."""
    return event.data.get("status") in FINISHED


def ends(update: object) -> bool:
    """Whether this update is the task's last word (a finished snapshot or status change)."""
    if isinstance(update, TaskSnapshot):
        return update.task.status in FINISHED
    return isinstance(update, TaskStatusChange) and update.status in FINISHED


@overload
def result_of(task: TaskPublic, result_type: None = None) -> dict[str, Any]: ...


@overload
def result_of(task: TaskPublic, result_type: type[M]) -> M: ...


def result_of(
    task: TaskPublic, result_type: type[BaseModel] | None = None
) -> BaseModel | dict[str, Any]:
    """A finished task's result, parsed as ``result_type`` if given; ``TaskFailedError``
    (carrying the task) if it did not succeed."""
    if task.status != TaskStatus.SUCCEEDED:
        raise TaskFailedError(task)
    result = task.result or {}
    if result_type is None:
        return result
    try:
        return result_type.model_validate(result)
    except ValueError as exc:
        raise GenqueueError(
            f"the result of task {task.id} ({task.kind}) is no {result_type.__name__}: {exc}"
        ) from None
