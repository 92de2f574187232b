"""Payload and result of ``video.generate``: what may be asked of each provider, with bounds.

The bounds keep one request from exhausting a worker (local) or from sending the cloud API a
value it would refuse after the task has waited in line (cloud): bad input is a 422 at submit.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from genqueue.handlers.image import NOT_BLANK
from genqueue.handlers.render_kit import Style

Provider = Literal["local", "cloud"]
Resolution = Literal["240p", "360p", "480p", "720p", "768p", "1080p"]
AspectRatio = Literal["16:9", "9:16", "1:1"]

LOCAL_MAX_DURATION_S = 10.0
LOCAL_DEFAULT_DURATION_S = 2.0
LOCAL_DEFAULT_RESOLUTION: Resolution = "360p"
LOCAL_DEFAULT_FPS = 24
# What VOD's CreateAigcVideoTask accepts across its models (Kling 5/10, Hailuo 6/10, GV 8).
CLOUD_DURATIONS_S = (5, 6, 8, 10)
CLOUD_RESOLUTIONS: tuple[Resolution, ...] = ("720p", "768p", "1080p")
_MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"


def frame_size(resolution: Resolution, aspect_ratio: AspectRatio) -> tuple[int, int]:
    """(width, height) in pixels, both even as H.264 in yuv420p requires: "720p" at 16:9 is
    1280x720, at 9:16 720x1280, at 1:1 720x720."""
    short = int(resolution[:-1])
    long = 2 * round(short * 16 / 9 / 2) if aspect_ratio != "1:1" else short
    return (long, short) if aspect_ratio == "16:9" else (short, long)


class VideoGenerate(BaseModel):
    """What to film. ``None`` means the provider's default (settings for cloud)."""

    # What _fits_provider checks, said in the schema too (the validator gives the message).
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"required": ["provider"], "properties": {"provider": {"const": "cloud"}}},
            "then": {
                "properties": {
                    "duration_s": {"enum": [*CLOUD_DURATIONS_S, None]},
                    "resolution": {"enum": [*CLOUD_RESOLUTIONS, None]},
                    "fps": {"type": "null"},
                }
            },
            "else": {
                "properties": {"model_name": {"type": "null"}, "model_version": {"type": "null"}}
            },
        }
    )

    prompt: str = Field(min_length=1, max_length=2000, json_schema_extra={"pattern": NOT_BLANK})
    provider: Provider = "local"
    duration_s: float | None = Field(None, gt=0, le=LOCAL_MAX_DURATION_S)
    resolution: Resolution | None = None
    aspect_ratio: AspectRatio = "16:9"
    fps: int | None = Field(None, ge=1, le=30, description="local only")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="local only")
    style: Style = Field("default", description="local only: the keyframe's style")
    model_name: str | None = Field(None, pattern=_MODEL_PATTERN, description="cloud only")
    model_version: str | None = Field(None, pattern=_MODEL_PATTERN, description="cloud only")

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must not be blank")
        return value

    @field_validator("resolution", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value  # "720P" as VOD spells it

    @field_validator("duration_s", "resolution", "fps", "model_name", "model_version")
    @classmethod
    def _fits_provider(cls, value: object, info: ValidationInfo) -> object:
        # A field validator (not a model one) so that the error names the field.
        provider = info.data.get("provider")
        if value is None or provider is None:
            return value
        field = info.field_name
        if provider == "local":
            if field in ("model_name", "model_version"):
                raise ValueError(f"{field} applies to provider cloud only")
            return value
        if field == "duration_s" and value not in CLOUD_DURATIONS_S:
            allowed = ", ".join(map(str, CLOUD_DURATIONS_S))
            raise ValueError(f"for provider cloud, duration_s must be one of {allowed}")
        if field == "resolution" and value not in CLOUD_RESOLUTIONS:
            allowed = ", ".join(CLOUD_RESOLUTIONS)
            raise ValueError(f"for provider cloud, resolution must be one of {allowed}")
        if field == "fps":
            raise ValueError("fps applies to provider local only")
        return value


class VideoResult(BaseModel):
    """What was made, measured from the MP4 itself (not echoed from the request)."""

    video_url: str
    duration_s: float
    width: int
    height: int
    fps: float
    frames: int
    file_size: int
    provider: Provider
    generator: str
    model: str | None = None
    upstream_task_id: str | None = None
    seed: int | None = None
    elapsed_s: float
