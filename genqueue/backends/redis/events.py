"""The event stream of the Redis store: following ``{p}:events`` from a point, telling when
that point is no longer kept (``EventsExpiredError``), and one task's entries."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from redis.exceptions import ResponseError

from genqueue.backends.redis.connection import UNREACHABLE
from genqueue.backends.redis.records import event_from
from genqueue.errors import BackendUnavailableError, EventsExpiredError
from genqueue.models import Event

EVENTS_BLOCK_MS = 1000
TASK_EVENTS_KEPT = 1000  # entry ids per task in {p}:task:{id}:events (common.lua's event())


async def task_events(redis: Any, prefix: str, task_id: str, limit: int) -> list[Event]:
    """``Store.task_events``: the newest ``limit`` ids of the task's list, each entry read from
    the stream; an id the stream has trimmed since is skipped."""
    if limit <= 0:
        return []
    ids = await redis.lrange(f"{prefix}:task:{task_id}:events", -limit, -1)
    async with redis.pipeline(transaction=False) as pipe:
        for entry_id in ids:
            pipe.xrange(f"{prefix}:events", entry_id, entry_id)
        replies = await pipe.execute()
    return [event_from(entry_id, fields) for reply in replies for entry_id, fields in reply]


async def watch(redis: Any, key: str, after: str | None) -> AsyncGenerator[Event, None]:
    """Events after ``after`` (None: from now), followed as they come (``Store.watch``)."""
    try:
        if after is not None:
            return _follow(redis, key, await _resume_point(redis, key, after))
        newest = await redis.xrevrange(key, count=1)
    except UNREACHABLE as exc:
        raise BackendUnavailableError(f"Redis: {exc}") from exc
    return _follow(redis, key, newest[0][0] if newest else "0-0")


def _stream_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def _resume_point(redis: Any, key: str, after: str) -> str:
    """``after``, if the stream still holds every entry after it. Trimming (MAXLEN) leaves
    no trace but the first entry, so losing only ``after`` itself counts as a loss too."""
    try:
        position = _stream_id(after)
    except ValueError:
        raise EventsExpiredError(f"{after!r} is not a Redis stream id") from None
    try:
        info = await redis.xinfo_stream(key)
    except ResponseError:  # no such key: nothing was ever kept here (or Redis lost it)
        if position == (0, 0):
            return after
        raise EventsExpiredError(f"event {after!r} is not kept: {key} does not exist") from None
    newest = _stream_id(info["last-generated-id"])
    first = info.get("first-entry")
    kept_from = _stream_id(first[0]) if first else newest
    trimmed = info.get("entries-added", -1) != info["length"]  # unknown before Redis 7
    if position > newest or (trimmed and position < kept_from):
        raise EventsExpiredError(f"event {after!r} is no longer kept in {key}")
    return after


async def _follow(redis: Any, key: str, last: str) -> AsyncGenerator[Event, None]:
    # A connection of its own for the blocking reads, so they never hold up other commands.
    reader = redis.client()
    try:
        while True:
            try:
                reply = await reader.xread({key: last}, count=500, block=EVENTS_BLOCK_MS)
            except UNREACHABLE as exc:
                raise BackendUnavailableError(f"Redis: {exc}") from exc
            for _, entries in reply:
                for entry_id, fields in entries:
                    last = entry_id
                    yield event_from(entry_id, fields)
    finally:
        await reader.aclose()
