"""Every error genqueue raises, under one root, and the two signals a handler raises on purpose.

    GenqueueError
    ├── ConfigError                 bad setting, unknown backend scheme, missing driver
    ├── BackendUnavailableError     store or broker cannot be reached
    ├── EventsExpiredError          resuming an event feed from an id the store no longer keeps
    ├── TaskNotFoundError           no task (or batch) with that id
    ├── ResultExpiredError          a task's results and artifacts expired (retention): 410 Gone
    ├── InvalidInputError           a request or payload is wrong; names the field
    │   └── UnknownKindError        no kind registered under that name
    ├── ForbiddenPathError          a path outside the allowed input root (never read)
    ├── IdempotencyConflictError    same idempotency key, different request
    ├── QuotaExceededError          a submit past a key's quota or a queue's bound: 429
    ├── LeaseLostError              the lease expired or was taken over; stop and record nothing
    ├── TaskFailedError             (client) a task ended failed, cancelled or expired
    ├── WaitTimeoutError            (client) a task or batch did not finish in the time given
    └── WebhookVerificationError    a webhook's signature, id or timestamp does not check out

Signals (not failures, not GenqueueErrors): ``Retry`` asks for another attempt after a delay;
``RateLimited`` says an upstream refused for now, so the task is retried later and does not
count against its attempts budget the way a failure does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from genqueue.api.schemas import TaskPublic


class GenqueueError(Exception):
    """Root of every error genqueue raises."""


class ConfigError(GenqueueError):
    """A setting is wrong: an unknown backend scheme, a missing driver, a bad value."""


class BackendUnavailableError(GenqueueError):
    """The store or the broker cannot be reached right now; the API answers 503."""


class EventsExpiredError(GenqueueError):
    """``Store.watch(after=id)`` cannot resume: the store no longer keeps that event (retention)
    or never knew it, so events may have been missed. Re-read the state you need, then watch
    from now; the API tells SSE clients with a ``lagged`` frame and a fresh snapshot."""


class TaskNotFoundError(GenqueueError):
    """No task or batch with that id (or it expired under retention)."""


class ResultExpiredError(GenqueueError):
    """The task existed, but its results and artifacts are past their ``expires_at``
    (``GENQUEUE_RETENTION`` after it finished; genqueue/expiry.py): the API answers 410 Gone,
    not 404, so a client knows to stop asking rather than suspect a wrong id."""


@dataclass
class FieldProblem:
    """One thing wrong with a request, located by a dotted field path."""

    field: str
    message: str


class InvalidInputError(GenqueueError):
    """A request is wrong; carries one problem per bad field so the caller can fix them all."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


class UnknownKindError(InvalidInputError):
    """No kind is registered under that name."""

    def __init__(self, kind: str, known: list[str]) -> None:
        message = f"unknown kind {kind!r}; known kinds: {', '.join(sorted(known))}"
        super().__init__([FieldProblem("kind", message)])


class ForbiddenPathError(GenqueueError):
    """A request names a file outside what genqueue may read (HTTP 403); nothing is read."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class IdempotencyConflictError(GenqueueError):
    """An idempotency key was reused for a different request."""


QuotaLimit = Literal["tasks_per_minute", "in_flight", "queue"]


class QuotaExceededError(GenqueueError):
    """A submit past a quota or a queue bound (HTTP 429): nothing was stored. ``limit`` says
    which (``tasks_per_minute``, ``in_flight`` or ``queue``), ``retry_after_s`` when to try
    again (the answer's ``Retry-After``); ``allowed``, ``current`` and ``requested`` are the
    figures (``current`` as counted, at most ``allowed``), ``queue`` the bounded queue."""

    def __init__(
        self,
        message: str,
        limit: QuotaLimit,
        retry_after_s: int,
        allowed: int | None = None,
        current: int | None = None,
        requested: int | None = None,
        queue: str | None = None,
    ) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.allowed = allowed
        self.current = current
        self.requested = requested
        self.queue = queue
        super().__init__(message)


class LeaseLostError(GenqueueError):
    """The lease on a task expired or belongs to another run; the holder must stop."""


class TaskFailedError(GenqueueError):
    """A task ended without a result: failed, cancelled or expired. ``task`` is the task as
    the API showed it at the end (``task.status`` says which, ``task.error`` why), so a
    caller can log it, resubmit it or look at its batch."""

    def __init__(self, task: TaskPublic) -> None:
        self.task = task
        why = f": {task.error}" if task.error else ""
        super().__init__(f"task {task.id} ({task.kind}) {task.status.value}{why}")


class WaitTimeoutError(GenqueueError):
    """Waiting outlasted the time the caller gave. The work goes on on the server: ``task``
    (its state when the wait gave up) or ``batch_id`` says what to wait for again or cancel."""

    def __init__(
        self, message: str, task: TaskPublic | None = None, batch_id: str | None = None
    ) -> None:
        self.task = task
        self.batch_id = batch_id
        super().__init__(message)


class WebhookVerificationError(GenqueueError):
    """A webhook request is not proven to come from the sender: a header is missing or
    malformed, its timestamp is outside the tolerance, or no signature matches the secret.
    The receiver should answer 4xx and not act on it."""


class Retry(Exception):
    """Raised by a handler to ask for another attempt after ``delay_s`` (policy delay if None)."""

    def __init__(self, reason: str = "retry requested", delay_s: float | None = None) -> None:
        self.delay_s = delay_s
        super().__init__(reason)


class RateLimited(Retry):
    """Raised when an upstream refuses for its limit (HTTP 429 and the like): the task is
    retried after ``delay_s`` without spending an attempt, and the shared limiter of the
    kind's resource is cut. ``retry_after_s`` is what the upstream asked for (its
    ``Retry-After``), if it did: then every call to that resource waits that long."""

    def __init__(
        self,
        reason: str = "rate limited",
        delay_s: float | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(reason, retry_after_s if delay_s is None else delay_s)
        self.retry_after_s = retry_after_s


# What an unreachable backend looks like to a caller: our own error, and a deadline that passed
# inside a driver that did not say more. Callers that wait out outages catch exactly these.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (BackendUnavailableError, TimeoutError)
