"""Diagnoses from start to end: read, prepare, run the chosen checks, compare with the camera's
last frame, detect (each detector once for a whole batch of frames), annotate, raise an event
per alert. Everything it needs comes from the payloads, the contexts, the settings and the
detectors passed in."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from genqueue.artifacts import ArtifactStore
from genqueue.handlers.diagnose import checks, detect, frozen
from genqueue.handlers.diagnose.annotate import annotate
from genqueue.handlers.diagnose.models import (
    ALL_CHECKS,
    MAX_BOXES,
    Box,
    Check,
    Counts,
    DiagnosePayload,
    DiagnoseResult,
    Finding,
)
from genqueue.kinds import TaskContext, alone
from genqueue.settings import DiagnosisSettings

PICTURE_CHECKS: dict[Check, Callable[[checks.Frame], checks.Measure]] = {
    "signal_loss": checks.signal_loss,  # first: when it alerts, most others have nothing to judge
    "dark": checks.dark,
    "bright": checks.bright,
    "contrast": checks.contrast,
    "blur": checks.blur,
    "noise": checks.noise,
    "colour_cast": checks.colour_cast,
    "occlusion": checks.occlusion,
}
ALERT_BELOW: frozenset[Check] = frozenset({"blur", "dark", "contrast", "frozen"})
# Still meaningful on a lost signal: they tell a black screen from a white one.
JUDGED_WITHOUT_PICTURE: frozenset[Check] = frozenset({"signal_loss", "dark", "bright"})
ANNOTATED = "annotated.png"


class _Stages:
    """Milliseconds per stage, to see where a frame's time goes."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._last = time.perf_counter()

    def done(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = round(self.ms.get(stage, 0.0) + (now - self._last) * 1000, 2)
        self._last = now

    def add(self, stage: str, ms: float) -> None:
        """A stage timed elsewhere (a detector run shared by a batch); the clock restarts."""
        self.ms[stage] = round(self.ms.get(stage, 0.0) + ms, 2)
        self._last = time.perf_counter()


def judge(check: Check, score: float, threshold: float) -> bool:
    """True when the score is on the wrong side of its threshold (ties are healthy)."""
    return score < threshold if check in ALERT_BELOW else score > threshold


@dataclass
class Detectors:
    """The models a diagnosis runs (worker-scoped resources of ``image.diagnose``)."""

    people: detect.PeopleDetector
    faces: detect.FaceDetector


def default_detectors() -> Detectors:
    """This process's detectors, loaded once (for tests and benches; workers use resources)."""
    return Detectors(detect.load_people_detector(), detect.load_face_detector())


@dataclass
class _Diagnosis:
    """One frame between its picture checks and its conclusion (detection comes between,
    batched across the frames of a batch)."""

    payload: DiagnosePayload
    ctx: TaskContext
    started: float
    stages: _Stages
    wanted: set[Check]
    thresholds: dict[Check, float]
    width: int
    height: int
    frame: checks.Frame
    findings: list[Finding]
    no_picture: bool
    found: dict[Check, list[detect.Detection]] = field(
        default_factory=lambda: {"faces": [], "people": []}
    )

    def detects(self, check: Check) -> bool:
        return check in self.wanted and not self.no_picture and not self.ctx.cancelled


def run_diagnosis(
    payload: DiagnosePayload, ctx: TaskContext, settings: DiagnosisSettings, models: Detectors
) -> DiagnoseResult:
    """Diagnose one frame: the batch of one."""
    return alone(run_diagnosis_batch([payload], [ctx], settings, models))


def run_diagnosis_batch(
    payloads: list[DiagnosePayload],
    contexts: list[TaskContext],
    settings: DiagnosisSettings,
    models: Detectors,
) -> list[DiagnoseResult | Exception]:
    """Diagnose frames: picture checks frame by frame, then each detector once for every
    frame that asks for it, then each frame's conclusion. A frame that fails (unreadable, a
    task cancelled meanwhile) fails its own task only."""
    runs: list[_Diagnosis | Exception] = []
    for payload, ctx in zip(payloads, contexts, strict=True):
        try:
            runs.append(_check_picture(payload, ctx, settings))
        except Exception as exc:
            runs.append(exc)
    stages: list[tuple[Check, float, detect.FaceDetector | detect.PeopleDetector]] = [
        ("faces", 0.6, models.faces),
        ("people", 0.75, models.people),
    ]
    for check, progress, detector in stages:
        asking = [r for r in runs if isinstance(r, _Diagnosis) and r.detects(check)]
        if not asking:
            continue
        for r in asking:
            r.ctx.progress(progress, f"looking for {check}")
        started = time.perf_counter()
        found = detector.detect([r.frame.rgb for r in asking])
        ms = (time.perf_counter() - started) * 1000
        for r, boxes in zip(asking, found, strict=True):
            r.found[check] = boxes
            r.stages.add(check, ms)
    outcomes: list[DiagnoseResult | Exception] = []
    for run in runs:
        try:
            outcomes.append(run if isinstance(run, Exception) else _conclude(run, settings))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def _check_picture(
    payload: DiagnosePayload, ctx: TaskContext, settings: DiagnosisSettings
) -> _Diagnosis:
    """Read, prepare, the picture checks and the frozen check. A signal loss found first
    marks the checks that need a picture as skipped, so one dead feed raises one or two alerts
    rather than eight."""
    started = time.perf_counter()
    stages = _Stages()
    wanted = set(payload.checks or ALL_CHECKS)
    thresholds: dict[Check, float] = {c: float(getattr(settings, c)) for c in ALL_CHECKS}
    thresholds |= payload.thresholds or {}
    ctx.progress(0.02, "reading the image")
    image = ctx.inputs.image(payload.image, "image")
    width, height = image.size
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    stages.done("decode")
    frame = checks.prepare(rgb, settings.analysis_side)
    stages.done("prepare")

    findings: list[Finding] = []
    no_picture = False
    picture = [c for c in PICTURE_CHECKS if c in wanted]
    for n, check in enumerate(picture):
        ctx.progress(0.05 + 0.45 * n / len(picture), f"checking {check.replace('_', ' ')}")
        if no_picture and check not in JUDGED_WITHOUT_PICTURE:
            findings.append(_skipped(check, thresholds[check], "no picture (signal loss)"))
            continue
        measure = PICTURE_CHECKS[check](frame)
        alert = judge(check, measure.score, thresholds[check])
        no_picture = no_picture or (check == "signal_loss" and alert)
        findings.append(_finding(check, measure.score, thresholds[check], alert, measure.detail))
        stages.done(check)

    if "frozen" in wanted:
        ctx.progress(0.5, "comparing with the camera's last frame")
        findings.append(_frozen(payload, ctx, frame, thresholds["frozen"], no_picture))
        stages.done("frozen")
    return _Diagnosis(
        payload,
        ctx,
        started,
        stages,
        wanted,
        thresholds,
        width,
        height,
        frame,
        findings,
        no_picture,
    )


def _conclude(r: _Diagnosis, settings: DiagnosisSettings) -> DiagnoseResult:
    """The detections as findings, the annotated picture, an event per alert, the result."""
    payload, ctx, findings = r.payload, r.ctx, r.findings
    scale = r.width / r.frame.rgb.shape[1]
    for check, asked, default in (
        ("faces", payload.alert_on_faces, settings.alert_on_faces),
        ("people", payload.alert_on_people, settings.alert_on_people),
    ):
        if check not in r.wanted:
            continue
        if r.no_picture:
            findings.append(_skipped(check, r.thresholds[check], "no picture (signal loss)"))
            continue
        alert_on = default if asked is None else asked
        findings.append(_count(check, r.found[check], r.thresholds[check], alert_on, scale))

    alerts = [f for f in findings if f.verdict == "alert"]
    annotated_url = None
    if payload.annotate:
        ctx.progress(0.9, "drawing the annotated picture")
        png = annotate(r.frame.rgb, r.found["faces"], r.found["people"], findings)
        annotated_url = ctx.save_artifact(ANNOTATED, png, "image/png")
        r.stages.done("annotate")
    for f in alerts:
        ctx.emit(
            "diagnosis.alert",
            {
                "camera_id": payload.camera_id,
                "check": f.check,
                "score": f.score,
                "threshold": f.threshold,
                "detail": f.detail,
            },
        )
    ctx.progress(1.0, f"{len(alerts)} alert(s)" if alerts else "all checks ok")
    return DiagnoseResult(
        camera_id=payload.camera_id,
        verdict="alert" if alerts else "ok",
        alerts=[f.check for f in alerts],
        findings=findings,
        counts=Counts(
            faces=len(r.found["faces"]), people=len(r.found["people"]), alerts=len(alerts)
        ),
        width=r.width,
        height=r.height,
        analysed_width=int(r.frame.rgb.shape[1]),
        analysed_height=int(r.frame.rgb.shape[0]),
        annotated_url=annotated_url,
        elapsed_s=round(time.perf_counter() - r.started, 4),
        stage_ms=r.stages.ms,
    )


def _finding(check: Check, score: float, threshold: float, alert: bool, detail: str) -> Finding:
    return Finding(
        check=check,
        score=round(score, 4),
        threshold=threshold,
        verdict="alert" if alert else "ok",
        detail=detail,
    )


def _skipped(check: Check, threshold: float, why: str) -> Finding:
    return Finding(check=check, score=None, threshold=threshold, verdict="skipped", detail=why)


def _frozen(
    payload: DiagnosePayload,
    ctx: TaskContext,
    frame: checks.Frame,
    threshold: float,
    no_picture: bool,
) -> Finding:
    """Compare with the camera's last frame. A lost signal is not compared nor remembered, so
    a feed that comes back stuck on its last picture is still caught."""
    if payload.camera_id is None:
        return _skipped("frozen", threshold, "needs a camera_id")
    if no_picture:
        return _skipped("frozen", threshold, "no picture (signal loss)")
    store = ArtifactStore(ctx.inputs.artifact_root)
    seen = frozen.compare_and_remember(
        store, payload.camera_id, ctx.task_id, frozen.thumbnail(frame.gray)
    )
    if seen.difference is None:
        return _skipped("frozen", threshold, "first frame seen from this camera")
    detail = (
        f"mean difference {seen.difference:.3f} grey levels to the frame seen "
        f"{seen.age_s or 0.0:.0f} s ago"
    )
    return _finding("frozen", seen.difference, threshold, seen.difference < threshold, detail)


def _count(
    check: Check,
    found: list[detect.Detection],
    threshold: float,
    alert_on: bool,
    scale: float,
) -> Finding:
    """Detections as a finding: the score is the count, the threshold the number tolerated
    (default 0: any face or person), and it alerts only when asked to (``alert_on_faces``,
    ``alert_on_people``): people in view are normal for most cameras, forbidden for some."""
    alert = alert_on and len(found) > threshold
    noun = {"faces": ("face", "faces"), "people": ("person", "people")}[check][len(found) != 1]
    rule = f"alert above {threshold:g}" if alert_on else "report only"
    boxes = [
        Box(
            x=round(d.x * scale),
            y=round(d.y * scale),
            width=round(d.width * scale),
            height=round(d.height * scale),
            score=round(d.score, 3),
        )
        for d in found[:MAX_BOXES]
    ]
    return Finding(
        check=check,
        score=float(len(found)),
        threshold=threshold,
        verdict="alert" if alert else "ok",
        detail=f"{len(found)} {noun} ({rule})",
        boxes=boxes,
    )
