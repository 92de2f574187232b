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

from genqueue.api.deps import RuntimeDep
from genqueue.api.schemas import UploadPublic
from genqueue.artifacts import artifact_url
from genqueue.errors import FieldProblem, InvalidInputError
from genqueue.inputs import UPLOAD_NAME, open_image

router = APIRouter(prefix="/v1", tags=["uploads"])


@router.post("/uploads", status_code=201, response_model=UploadPublic)
async def upload(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Store an image (PNG, JPEG, WEBP, BMP, GIF, TIFF) sent as the raw request body."""
    data = await request.body()
    if not data:
        raise InvalidInputError([FieldProblem("body", "empty: send the image file as the body")])
    image = await asyncio.to_thread(open_image, data, runtime.settings.max_image_pixels, "body")
    upload_id = f"u-{uuid.uuid4().hex}"
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
