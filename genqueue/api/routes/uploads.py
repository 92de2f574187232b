"""POST /v1/uploads: an image for a later task, checked before it is kept.

The body is the file itself (``curl --data-binary @photo.jpg``), capped by
``GENQUEUE_MAX_UPLOAD_BYTES``. It is decoded once here, pixel count checked from the header
first, so a corrupt file or a decompression bomb is refused with a 4xx and nothing is stored;
what is kept lives in the artifact store (shared by every machine) under its own id and expires
with the retention period like any artifact.
"""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from genqueue.api.auth import Principal, PrincipalDep, check_owner
from genqueue.api.deps import RuntimeDep
from genqueue.api.errors import error_responses
from genqueue.api.openapi import raw_body
from genqueue.api.runtime import Runtime
from genqueue.api.schemas import UploadPublic
from genqueue.artifacts import artifact_url
from genqueue.errors import FieldProblem, InvalidInputError, TaskNotFoundError
from genqueue.inputs import UPLOAD_NAME, open_image

router = APIRouter(prefix="/v1", tags=["uploads"])

OWNER_NAME = "owner"  # beside an upload's file: the user who sent it (isolation)


async def check_artifact_owner(
    runtime: Runtime, caller: Principal, task_id: str, name: str
) -> None:
    """404 unless ``caller`` may read the artifacts of ``task_id``: a task of theirs, or an
    upload they sent (an upload sent with auth off has no owner: operators only). The 404
    reads the same whether the id is unknown or someone else's."""
    try:
        if task_id.startswith("u-"):
            data = await asyncio.to_thread(runtime.artifacts.read, task_id, OWNER_NAME)
            owner: str | None = data.decode()
        else:
            owner = (await runtime.store.get(task_id)).user
        check_owner(caller, owner, "task", task_id)
    except TaskNotFoundError:
        raise TaskNotFoundError(f"no artifact {name!r} for task {task_id!r}") from None


@router.post(
    "/uploads",
    status_code=201,
    response_model=UploadPublic,
    responses=error_responses(503),
    openapi_extra=raw_body(
        ["application/octet-stream", "image/*"],
        "the image file itself: PNG, JPEG, WEBP, BMP, GIF or TIFF, decodable and within the"
        " pixel cap (else 422)",
    ),
)
async def upload(request: Request, runtime: RuntimeDep, caller: PrincipalDep) -> JSONResponse:
    """Store an image (PNG, JPEG, WEBP, BMP, GIF, TIFF) sent as the raw request body."""
    data = await request.body()
    if not data:
        raise InvalidInputError([FieldProblem("body", "empty: send the image file as the body")])
    image = await asyncio.to_thread(open_image, data, runtime.settings.max_image_pixels, "body")
    upload_id = f"u-{uuid.uuid4().hex}"
    if caller.user is not None:  # first, so the upload is never readable without its owner
        owner = caller.user.encode()
        await asyncio.to_thread(runtime.artifacts.save, upload_id, OWNER_NAME, owner)
    await asyncio.to_thread(runtime.artifacts.save, upload_id, UPLOAD_NAME, data)
    body = UploadPublic(
        id=upload_id,
        url=artifact_url(upload_id, UPLOAD_NAME),
        size=len(data),
        format=str(image.format),
        width=image.width,
        height=image.height,
    )
    return JSONResponse(body.model_dump(), status_code=201)
