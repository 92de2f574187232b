"""genqueue: a distributed job queue for AI workloads.

The public surface is what this module exports; everything else is internal.
"""

from genqueue.client import AsyncClient, Client
from genqueue.errors import (
    GenqueueError,
    QuotaExceededError,
    RateLimited,
    Retry,
    TaskFailedError,
    WaitTimeoutError,
)
from genqueue.kinds import Kind, TaskContext, kind
from genqueue.models import Task, TaskStatus
from genqueue.retry import RetryPolicy

__all__ = [
    "AsyncClient",
    "Client",
    "GenqueueError",
    "Kind",
    "QuotaExceededError",
    "RateLimited",
    "Retry",
    "RetryPolicy",
    "Task",
    "TaskContext",
    "TaskFailedError",
    "TaskStatus",
    "WaitTimeoutError",
    "kind",
]
