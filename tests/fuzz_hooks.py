"""Schemathesis hooks for fuzzing genqueue (loaded through ``SCHEMATHESIS_HOOKS``).

JSON Schema has no clock, so the document cannot say that ``start_by`` must be in the future
and after the start, or that ``run_at`` is at most 30 days ahead (the API answers 422, as its
``TaskCreate`` description says). Generated times that parse are moved into that window, so
that valid tasks stay valid; a malformed time is left alone and stays a negative case.
Nor can it say which hosts resolve to public addresses: a webhook URL the schema accepts
points at the receiver the fuzzed API is allowed to call (``WEBHOOK_URL``), so it stays valid;
nor that feature.extract's ``ids`` and ``images`` have one length (unequal ones are dropped).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis
from pydantic import TypeAdapter, ValidationError

RUN_AT_AHEAD = timedelta(minutes=1)
# Nothing listens there; the fuzzed API runs with GENQUEUE_WEBHOOKS__ALLOW_PRIVATE=true, so
# its deliveries fail and are retried in the background, which the fuzzer never sees.
WEBHOOK_URL = "http://127.0.0.1:9/fuzz"
# After any start: delay_s is at most 30 days (schemas.MAX_DELAY_S).
START_BY_AHEAD = timedelta(days=31)


_TIME = TypeAdapter(datetime)


def _parses(value: Any) -> bool:
    """Whether the API reads ``value`` as a time with its zone (as pydantic does: more
    spellings than ``datetime.fromisoformat``, such as a lowercase ``z``)."""
    if not isinstance(value, str):
        return False
    try:
        return _TIME.validate_python(value).tzinfo is not None
    except ValidationError:
        return False


def in_window(task: Any, now: datetime) -> Any:
    """``task`` with parseable ``run_at`` / ``start_by`` moved to times the API takes."""
    if not isinstance(task, dict):
        return task
    moved = dict(task)
    for name, ahead in (("run_at", RUN_AT_AHEAD), ("start_by", START_BY_AHEAD)):
        if _parses(moved.get(name)):
            moved[name] = (now + ahead).isoformat()
    return with_ids_for_images(with_callable_webhook(moved))


def with_ids_for_images(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` whose payload names as many ``ids`` as ``images`` (feature.extract: the schema
    cannot say that two arrays have one length), or none when they differ."""
    payload = body.get("payload")
    if not isinstance(payload, dict):
        return body
    images, ids = payload.get("images"), payload.get("ids")
    if isinstance(images, list) and isinstance(ids, list) and len(images) != len(ids):
        payload = {key: value for key, value in payload.items() if key != "ids"}
        return {**body, "payload": payload}
    return body


def with_callable_webhook(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the URL of a well-formed ``webhook`` moved to ``WEBHOOK_URL``."""
    webhook = body.get("webhook")
    if isinstance(webhook, dict) and isinstance(webhook.get("url"), str):
        body = {**body, "webhook": {**webhook, "url": WEBHOOK_URL}}
    return body


@schemathesis.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    now = datetime.now(UTC)
    if isinstance(body, dict) and isinstance(body.get("tasks"), list):
        tasks = [in_window(task, now) for task in body["tasks"]]
        return with_callable_webhook({**body, "tasks": tasks})
    return in_window(body, now)


WAIT_S_MAX = 1.0  # a long poll answers at its timeout (up to 300 s): keep the run short


@schemathesis.hook
def map_query(context: schemathesis.HookContext, query: Any) -> Any:
    operation = context.operation
    if operation is None or operation.path != "/v1/tasks/{task_id}/wait":
        return query
    query = dict(query) if isinstance(query, dict) else {}
    timeout = query.get("timeout")
    if timeout is None:  # the default wait (60 s) outlasts the fuzzer's request timeout
        query["timeout"] = WAIT_S_MAX
    elif isinstance(timeout, int | float) and not isinstance(timeout, bool):
        query["timeout"] = min(timeout, WAIT_S_MAX)
    return query
