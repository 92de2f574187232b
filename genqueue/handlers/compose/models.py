"""Payload and result of ``image.compose``: plain pydantic data, no OpenCV (the API imports
this module to validate submissions; the heavy imports happen only in a worker).

Units: positions and the foreground's scale are fractions of the output canvas (so a layout
survives a change of output size); shadow offsets, blur and font size are pixels of the
output, as in CSS. Extra keys are refused, so a misspelt option is a 422, not ignored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genqueue.handlers.image import MAX_SIDE, MIN_SIDE, NOT_BLANK, Style
from genqueue.inputs import InputFile

Anchor = Literal[
    "center", "top", "bottom", "left", "right", "top-left", "top-right", "bottom-left",
    "bottom-right",
]  # fmt: skip
CutoutMode = Literal["auto", "grabcut", "alpha", "none"]
CutoutUsed = Literal["grabcut", "alpha", "none"]
HEX_COLOUR = r"^#[0-9a-fA-F]{6}$"
Fraction = Field(ge=0.0, le=1.0, allow_inf_nan=False)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Point(_Strict):
    """Where the foreground's centre goes, as fractions of the canvas (0, 0 is top left)."""

    x: float = Fraction
    y: float = Fraction


class Background(_Strict):
    """Exactly one of: ``prompt`` (painted by the procedural engine), ``image`` (an uploaded
    picture, scaled to cover the canvas and centre-cropped) or ``colour`` (plain)."""

    # The schema says "exactly one" too (the validator gives the message).
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": [name], "properties": {name: {"type": ["string", "object"]}}}
                for name in ("prompt", "image", "colour")
            ]
        }
    )

    prompt: str | None = Field(
        None, min_length=1, max_length=2000, json_schema_extra={"pattern": NOT_BLANK}
    )
    style: Style = "default"
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    image: InputFile | None = None
    colour: str | None = Field(None, pattern=HEX_COLOUR)

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("prompt must not be blank")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Background:
        given = [n for n in ("prompt", "image", "colour") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of prompt, image, colour (got {given or 'none'})")
        return self


class Shadow(_Strict):
    """A drop shadow: the cut-out's silhouette, offset, blurred and darkened."""

    offset_x: int = Field(12, ge=-500, le=500)
    offset_y: int = Field(16, ge=-500, le=500)
    blur: float = Field(10.0, ge=0.0, le=100.0, allow_inf_nan=False)
    opacity: float = Field(0.5, ge=0.0, le=1.0, allow_inf_nan=False)
    colour: str = Field("#000000", pattern=HEX_COLOUR)


class Caption(_Strict):
    """A line of text (DejaVu Sans when installed, else Pillow's built-in font)."""

    text: str = Field(min_length=1, max_length=200)
    size: int = Field(32, ge=8, le=300)
    colour: str = Field("#ffffff", pattern=HEX_COLOUR)
    position: Anchor = "bottom"
    margin: float = Field(0.04, ge=0.0, le=0.4, allow_inf_nan=False)
    outline: bool = True  # a thin contrasting stroke, readable on any background

    @field_validator("text")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("caption text must not be blank")
        if any(ch in value for ch in "\n\r\t\x00"):
            raise ValueError("caption text must be a single line without control characters")
        return value


class Layout(_Strict):
    """Where and how the cut-out foreground is placed."""

    position: Anchor | Point = "center"
    margin: float = Field(0.05, ge=0.0, le=0.4, allow_inf_nan=False)  # anchors only
    scale: float = Field(0.6, gt=0.0, le=2.0, allow_inf_nan=False)  # of the canvas, fitted
    rotation: float = Field(0.0, ge=-360.0, le=360.0, allow_inf_nan=False)  # degrees, CCW


class ComposePayload(_Strict):
    """A product or garment photo, cut out and placed on a background."""

    foreground: InputFile
    background: Background
    width: int | None = Field(None, ge=MIN_SIDE, le=MAX_SIDE)  # None: 512, or the upload's
    height: int | None = Field(None, ge=MIN_SIDE, le=MAX_SIDE)
    layout: Layout = Field(default_factory=Layout)
    shadow: Shadow | None = Field(default_factory=Shadow)  # null: no shadow
    caption: Caption | None = None
    cutout: CutoutMode = "auto"
    feather: float = Field(1.5, ge=0.0, le=50.0, allow_inf_nan=False)  # px of edge softening
    save_mask: bool = True


class Box(BaseModel):
    x: int
    y: int
    width: int
    height: int


class ComposeResult(BaseModel):
    image_url: str
    mask_url: str | None
    width: int
    height: int
    file_size: int
    cutout: CutoutUsed
    foreground_box: Box  # where the visible foreground landed on the canvas
    duration: float
    stage_ms: dict[str, float]
