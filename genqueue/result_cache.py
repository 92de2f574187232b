"""The result cache: an identical submission of a deterministic kind is answered at once with
the task that already computed it, instead of running again.

A kind declares itself deterministic (``Kind.deterministic``, for every payload or per
payload). Such a task is stored with ``cache_key``: the SHA-256 of the canonical JSON of its
kind and validated payload (defaults filled in, keys sorted), computed here and nowhere else.
A later submission of the same user, kind and payload finds it by :meth:`Store.cached` while
it has ``succeeded`` and not expired (``GENQUEUE_RETENTION``); the API answers 200 with that
task and ``cached: true``, storing and running nothing. The queue, priority and scheduling
fields do not count: they change when a result is computed, not what it is.

Not served from the cache: a submission with ``Cache-Control: no-cache`` (it runs anew), one
with an ``Idempotency-Key`` (its key must keep naming the one task made with it), one with a
``webhook`` (it waits for calls that a hit would never make), batches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from genqueue.contracts import Store
from genqueue.kinds import Kind, KindRegistry
from genqueue.models import Task

if TYPE_CHECKING:
    from genqueue.dispatch import TaskRequest


def canonical_json(value: Any) -> str:
    """One text per JSON value: keys sorted, no spaces, UTF-8 as is, NaN refused."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def cache_key(kind: Kind, payload: dict[str, Any]) -> str | None:
    """The cache key of a (validated, dumped) payload of ``kind``; None when the kind does not
    declare this payload deterministic."""
    declared = kind.deterministic
    if not (declared(payload) if callable(declared) else declared):
        return None
    text = canonical_json({"kind": kind.name, "payload": payload})
    return hashlib.sha256(text.encode()).hexdigest()


def reads_paths(*files: Mapping[str, Any] | None) -> bool:
    """Whether any of these dumped ``InputFile``s is read by path: the file there may change
    between two runs (an upload id or inline bytes always name the same bytes)."""
    return any(f is not None and f.get("path") is not None for f in files)


def no_cache(cache_control: str | None) -> bool:
    """Whether a ``Cache-Control`` request header asks for a fresh run (``no-cache``)."""
    if not cache_control:
        return False
    directives = (part.split("=", 1)[0].strip().lower() for part in cache_control.split(","))
    return "no-cache" in directives


async def cached_task(
    store: Store, kinds: KindRegistry, request: TaskRequest, fresh_s: float
) -> Task | None:
    """The stored task that answers ``request`` (its user's, same kind and payload, succeeded
    less than ``fresh_s`` ago), or None: then submit it as usual. A payload that is not
    valid raises ``InvalidInputError`` exactly as a submit would."""
    if request.idempotency_key is not None or request.webhook is not None or fresh_s <= 0:
        return None
    kind = kinds.get(request.kind)
    if kind.deterministic is False:
        return None  # no need to validate: the submit does
    payload = kind.validate_payload(request.payload).model_dump(mode="json")
    key = cache_key(kind, payload)
    if key is None:
        return None
    return await store.cached(request.user, kind.name, key, fresh_s)
