"""asyncio helpers that every layer needs once."""

from __future__ import annotations

import asyncio
from typing import Any


async def stop_tasks(*tasks: asyncio.Task[Any]) -> None:
    """Cancel ``tasks`` and wait until each has ended, cancelling again while one runs on: on
    Python 3.11, ``asyncio.wait_for`` (inside redis-py and aiormq) can swallow a cancellation
    that races with the completion of what it waits for, and the task would go on."""
    pending = set(tasks)
    while pending := {task for task in pending if not task.done()}:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=1.0)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: it is over, its error no longer matters
