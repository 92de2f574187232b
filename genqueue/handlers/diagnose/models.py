"""Payload and result of ``image.diagnose``: plain pydantic data, no OpenCV (the API imports
this module to validate submissions; the heavy imports happen only in a worker)."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from genqueue.inputs import InputFile

Check = Literal[
    "blur",
    "dark",
    "bright",
    "contrast",
    "colour_cast",
    "noise",
    "signal_loss",
    "occlusion",
    "frozen",
    "faces",
    "people",
]
ALL_CHECKS: tuple[Check, ...] = get_args(Check)
# "skipped": the check could not say anything (no camera_id for "frozen"; no picture to judge
# after a signal loss), which is neither healthy nor an alert.
Verdict = Literal["ok", "alert", "skipped"]
CAMERA_ID = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$"
Threshold = Annotated[float, Field(ge=0.0, le=1e6, allow_inf_nan=False)]
MAX_BOXES = 50  # per detector: keeps results and events small on a crowd


class DiagnosePayload(BaseModel):
    """One camera frame to check. Extra keys are refused, so a misspelt option is a 422
    rather than a silently ignored setting."""

    model_config = ConfigDict(extra="forbid")

    image: InputFile
    camera_id: str | None = Field(None, pattern=CAMERA_ID, max_length=128)
    checks: list[Check] | None = Field(None, min_length=1, max_length=len(ALL_CHECKS))
    thresholds: dict[Check, Threshold] | None = Field(None, max_length=len(ALL_CHECKS))
    alert_on_faces: bool | None = None  # None: the worker's setting (default: report only)
    alert_on_people: bool | None = None
    annotate: bool = True

    @field_validator("checks")
    @classmethod
    def _unique(cls, value: list[Check] | None) -> list[Check] | None:
        return None if value is None else list(dict.fromkeys(value))


class Box(BaseModel):
    """A detection in the coordinates of the original image."""

    x: int
    y: int
    width: int
    height: int
    score: float


class Finding(BaseModel):
    """One check's answer: its measurement, the threshold it was held to, and the verdict."""

    check: Check
    score: float | None
    threshold: float | None
    verdict: Verdict
    detail: str = Field(max_length=300)
    boxes: list[Box] = Field(default_factory=list)


class Counts(BaseModel):
    faces: int = 0
    people: int = 0
    alerts: int = 0


class DiagnoseResult(BaseModel):
    camera_id: str | None
    verdict: Literal["ok", "alert"]
    alerts: list[Check]
    findings: list[Finding]
    counts: Counts
    width: int
    height: int
    analysed_width: int
    analysed_height: int
    annotated_url: str | None
    elapsed_s: float
    stage_ms: dict[str, float]
