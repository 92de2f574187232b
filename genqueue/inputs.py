"""Files a task reads: an upload (``POST /v1/uploads``), a path under the input root, or a
small inline base64 string; and images decoded from them without risk.

Where a path may point is decided twice. At submit time the path must be relative and free of
``..``, so traversal is refused with 403 before anything is stored (the validator's error type
``forbidden_path`` becomes ``ForbiddenPathError`` in ``Kind.validate_payload``: not a malformed
value but a request for something the caller may not have). At run time the resolved path must
still lie inside the root, so a symlink cannot lead out either. Images are checked for format
and pixel count from their header before any decoding, so a decompression bomb is refused
without being expanded.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from genqueue.artifacts import ArtifactStore
from genqueue.errors import FieldProblem, ForbiddenPathError, InvalidInputError, TaskNotFoundError

UPLOAD_ID = re.compile(r"^u-[0-9a-f]{32}$")
UPLOAD_NAME = "original"
IMAGE_FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"}
FORBIDDEN_PATH = "forbidden_path"  # pydantic error type -> HTTP 403
MAX_INLINE_CHARS = 1_000_000  # inline images ride in the JSON body, itself capped at 1 MiB


class InputFile(BaseModel):
    """Exactly one of: ``upload`` (an id from ``POST /v1/uploads``), ``path`` (relative to
    ``GENQUEUE_INPUT_ROOT`` on the workers), ``base64`` (the bytes inline)."""

    # The schema says "exactly one" too, so that clients and the OpenAPI see the rule.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("upload", "path", "base64")
            ]
        }
    )

    upload: str | None = Field(None, pattern=UPLOAD_ID.pattern)
    path: str | None = Field(None, min_length=1, max_length=1024)
    base64: str | None = Field(None, min_length=4, max_length=MAX_INLINE_CHARS)

    @field_validator("path")
    @classmethod
    def _inside_root(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = PurePosixPath(value).parts
        if value.startswith(("/", "\\")) or ".." in parts or "\\" in value or "\x00" in value:
            raise PydanticCustomError(
                FORBIDDEN_PATH,
                "{path} is outside the input root: give a path relative to it",
                {"path": repr(value)},
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> InputFile:
        given = [n for n in ("upload", "path", "base64") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of upload, path, base64 (got {given or 'none'})")
        return self

    def describe(self) -> str:
        return self.upload or self.path or "inline image"


@dataclass(frozen=True)
class InputReader:
    """What a run needs to read its inputs; plain strings, so it travels to pool processes."""

    artifact_root: str
    input_root: str | None
    max_image_pixels: int

    def read(self, source: InputFile) -> bytes:
        return read_input(source, ArtifactStore(self.artifact_root), self.input_root)

    def image(self, source: InputFile, field: str = "image") -> Any:
        return open_image(self.read(source), self.max_image_pixels, field)


def read_input(source: InputFile, artifacts: ArtifactStore, input_root: str | None) -> bytes:
    """The bytes of ``source``. Raises ``InvalidInputError`` for what cannot be read."""
    if source.upload is not None:
        try:
            return artifacts.read(source.upload, UPLOAD_NAME)
        except TaskNotFoundError:
            message = f"no upload {source.upload!r} (expired or never made)"
            raise InvalidInputError([FieldProblem("upload", message)]) from None
    if source.base64 is not None:
        try:
            return base64.b64decode(source.base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInputError([FieldProblem("base64", f"not base64: {exc}")]) from None
    assert source.path is not None
    if not input_root:
        raise ForbiddenPathError("path", "no input root is configured (GENQUEUE_INPUT_ROOT)")
    root = Path(input_root).resolve()
    target = (root / source.path).resolve()
    if not target.is_relative_to(root):
        raise ForbiddenPathError("path", f"{source.path!r} leads outside the input root")
    if not target.is_file():
        raise InvalidInputError([FieldProblem("path", f"no file {source.path!r}")])
    return target.read_bytes()


def open_image(data: bytes, max_pixels: int, field: str = "image") -> Any:
    """A decoded RGB-or-alpha PIL image, after checking format and size from the header."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInputError([FieldProblem(field, f"not an image: {exc}")]) from None
    except Image.DecompressionBombError as exc:
        raise InvalidInputError([FieldProblem(field, f"image too large: {exc}")]) from None
    if image.format not in IMAGE_FORMATS:
        raise InvalidInputError(
            [FieldProblem(field, f"unsupported format {image.format}: use PNG, JPEG or WEBP")]
        )
    width, height = image.size
    if width * height > max_pixels:
        raise InvalidInputError(
            [FieldProblem(field, f"image too large: {width}x{height} is over {max_pixels} px")]
        )
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInputError([FieldProblem(field, f"corrupt image: {exc}")]) from None
    return image
