"""``feature.extract`` payload and result, and the wire encoding of a vector (no numpy needed
to validate a payload, so the API imports this freely).

A vector travels as base64 of little-endian float32 (``encoding: "f32le-base64"``): 6.8 KB of
JSON for 1280 numbers instead of ~25 KB as a list of decimals, and exact, so the vector an API
process indexes is bit for bit the one the worker computed.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genqueue.inputs import InputFile

ENCODING = "f32le-base64"
COLLECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
ITEM_ID = r"^[^\x00-\x1f]{1,256}$"
MAX_IMAGES = 256
MAX_METADATA_BYTES = 4096

Metadata = dict[str, str | int | float | bool | None]


def check_collection(value: str) -> str:
    if not COLLECTION_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a collection name: 1-64 of a-z, 0-9, '_', '-', starting with a"
            " letter or digit"
        )
    return value


def encode_vector(vector: npt.NDArray[np.float32]) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: str) -> npt.NDArray[np.float32]:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


class FeaturePayload(BaseModel):
    """One image (``image``, with ``id``) or several in one task (``images``, with ``ids``);
    ``collection`` indexes the vectors there once the task succeeds."""

    # _one_form's rules in the schema too (but for ids matching images in length, which JSON
    # Schema cannot say); the validator gives the message.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "object"},
                        "images": {"type": "null"},
                        "ids": {"type": "null"},
                    },
                },
                {
                    "required": ["images"],
                    "properties": {
                        "images": {"type": "array"},
                        "image": {"type": "null"},
                        "id": {"type": "null"},
                    },
                },
            ]
        }
    )

    image: InputFile | None = None
    images: list[InputFile] | None = Field(None, min_length=1, max_length=MAX_IMAGES)
    collection: str | None = Field(None, json_schema_extra={"pattern": COLLECTION_NAME.pattern})
    id: str | None = Field(None, pattern=ITEM_ID)
    ids: list[str] | None = Field(
        None, max_length=MAX_IMAGES, json_schema_extra={"items": {"pattern": ITEM_ID}}
    )
    metadata: Metadata = Field(default_factory=dict)
    top_k_labels: int = Field(5, ge=0, le=20)

    @field_validator("collection")
    @classmethod
    def _collection(cls, value: str | None) -> str | None:
        return None if value is None else check_collection(value)

    @field_validator("ids")
    @classmethod
    def _ids(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if not re.match(ITEM_ID, item):
                raise ValueError(f"item id {item[:40]!r}: 1-256 printable characters")
        return value

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: Metadata) -> Metadata:
        if len(json.dumps(value)) > MAX_METADATA_BYTES:
            raise ValueError(f"over {MAX_METADATA_BYTES} bytes of JSON")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> FeaturePayload:
        if (self.image is None) == (self.images is None):
            raise ValueError("give exactly one of image, images")
        if self.images is not None and self.id is not None:
            raise ValueError("id goes with image; with images, give ids")
        if self.image is not None and self.ids is not None:
            raise ValueError("ids go with images; with image, give id")
        if self.images is not None and self.ids is not None and len(self.ids) != len(self.images):
            raise ValueError(f"ids: {len(self.ids)} given for {len(self.images)} images")
        return self

    def sources(self) -> list[InputFile]:
        return [self.image] if self.image is not None else list(self.images or [])

    def item_ids(self, task_id: str) -> list[str]:
        """Each vector's id in a collection: given, or derived from the task id."""
        if self.image is not None:
            return [self.id or task_id]
        return self.ids or [f"{task_id}:{i}" for i in range(len(self.sources()))]


class LabelScore(BaseModel):
    index: int
    name: str
    score: float


class FeatureItem(BaseModel):
    id: str
    embedding: str = Field(description=f"{ENCODING}: L2-normalised float32 vector")
    labels: list[LabelScore]
    metadata: dict[str, Any] = Field(default_factory=dict)


class FeatureResult(BaseModel):
    model: str
    dim: int
    encoding: str = ENCODING
    collection: str | None = None
    items: list[FeatureItem]
    elapsed_s: float
