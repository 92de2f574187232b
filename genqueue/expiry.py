"""Result expiry: when a finished task's results and artifacts stop being served.

A finished task expires ``GENQUEUE_RETENTION`` after it finished (``expires_at``). From then
on reads of it answer 410 Gone: while its record still exists (until the sweeper's next purge)
by this arithmetic, afterwards by the :class:`~genqueue.models.Tombstone` the purge left,
kept ``GENQUEUE_EXPIRED_KEPT_S``. Unfinished tasks never expire. Pure: the API applies it
(``genqueue/api/expiry.py``), stores keep the tombstones (``Store.purge``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from genqueue.errors import ResultExpiredError
from genqueue.models import Task, utcnow


def expires_at(task: Task, retention_s: float) -> datetime | None:
    """When ``task``'s results expire: ``finished_at`` + retention; None while unfinished."""
    if not task.status.finished or task.finished_at is None:
        return None
    return task.finished_at + timedelta(seconds=retention_s)


def expired(task: Task, retention_s: float, now: datetime | None = None) -> bool:
    """Whether ``task``'s results are past their ``expires_at`` (purged or not yet)."""
    at = expires_at(task, retention_s)
    return at is not None and at <= (now or utcnow())


def without_expired_result(task: Task, retention_s: float) -> Task:
    """``task`` as a listing may show it: an expired one keeps its record until the purge,
    but not its result (a listing must not serve what a read of the task refuses with 410)."""
    if task.result is not None and expired(task, retention_s):
        return task.model_copy(update={"result": None})
    return task


def duration_text(seconds: float) -> str:
    """A retention as people say it, in the largest whole unit: ``1d``, ``36h``, ``90m``,
    ``2.5s``."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def expired_error(task_id: str, expired_at: datetime, retention_s: float) -> ResultExpiredError:
    """The 410's error, saying when and why (the API maps it to ``{"error": "expired"}``)."""
    when = expired_at.isoformat(timespec="seconds")
    return ResultExpiredError(
        f"the results of task {task_id} expired at {when}: results and artifacts are kept"
        f" for {duration_text(retention_s)} after a task finishes (GENQUEUE_RETENTION)"
    )


def check_not_expired(task: Task, retention_s: float) -> None:
    """Raise :func:`expired_error` if ``task``'s results have expired."""
    at = expires_at(task, retention_s)
    if at is not None and at <= utcnow():
        raise expired_error(task.id, at, retention_s)
