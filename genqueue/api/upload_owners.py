"""A user's task reads only the uploads that user sent.

An upload is kept with its owner beside it (``routes/uploads.py``), and reading another
user's upload through ``/v1/artifacts`` is a 404. A payload naming an upload is read by a
worker, which knows nothing of users: without this check, a user key could name someone
else's upload id in a task and get it back processed. So at submit, every ``upload`` a user
key's payload names must be one of its own; else 422 naming the field, worded as for an
upload that does not exist, so ids do not leak. Operators and admins name any upload (they
submit on anyone's behalf).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

from genqueue.api.auth import Principal
from genqueue.api.routes.uploads import OWNER_NAME
from genqueue.api.runtime import Runtime
from genqueue.dispatch import TaskRequest
from genqueue.errors import FieldProblem, InvalidInputError, TaskNotFoundError
from genqueue.inputs import UPLOAD_ID


def named_uploads(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """``(field, upload id)`` for every ``{"upload": "u-..."}`` inside ``value``."""
    if isinstance(value, dict):
        upload = value.get("upload")
        if isinstance(upload, str) and UPLOAD_ID.match(upload):
            yield f"{path}.upload", upload
        for key, item in value.items():
            yield from named_uploads(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from named_uploads(item, f"{path}.{index}")


async def check_upload_owners(
    runtime: Runtime, caller: Principal, requests: Sequence[TaskRequest], prefix: str = ""
) -> None:
    """Raise ``InvalidInputError`` naming each upload in ``requests``' payloads that is not
    the caller's (a user key's); ``prefix(i)`` names request ``i`` in a batch (``tasks.i.``)."""
    if caller.sees_all:
        return
    owners: dict[str, str | None] = {}
    problems = []
    for index, request in enumerate(requests):
        where = f"{prefix}{index}.payload" if prefix else "payload"
        for field, upload in named_uploads(request.payload, where):
            if upload not in owners:
                owners[upload] = await _owner(runtime, upload)
            if owners[upload] != caller.user:
                problems.append(
                    FieldProblem(field, f"no upload {upload!r} (expired or never made)")
                )
    if problems:
        raise InvalidInputError(problems)


async def _owner(runtime: Runtime, upload: str) -> str | None:
    try:
        owner = await asyncio.to_thread(runtime.artifacts.read, upload, OWNER_NAME)
    except TaskNotFoundError:
        return None
    return owner.decode()
