"""``image.diagnose``: is this camera frame healthy? (seed 004, EasySight's camera diagnosis)

Blur, exposure, contrast, colour cast, noise, signal loss, occlusion and frozen frames, plus
faces and people, on OpenCV 4.x with no model download; each check answers with a score, the
threshold it was held to and a verdict, and every alert is also raised as a
``diagnosis.alert`` event. CPU-bound, so it runs in the worker's process pool; OpenCV is
imported there only, never by the API.

    models.py    payload and result (no OpenCV)
    checks.py    the picture checks, each documenting its measure and default threshold
    detect.py    Haar faces and HOG people
    frozen.py    per-camera fingerprints in the shared artifact store
    annotate.py  the PNG with boxes and a legend of failed checks
    pipeline.py  one diagnosis, stage by stage
"""

from __future__ import annotations

from genqueue.handlers.diagnose.models import DiagnosePayload, DiagnoseResult
from genqueue.kinds import TaskContext, kind
from genqueue.retry import RetryPolicy


@kind(
    "image.diagnose",
    payload=DiagnosePayload,
    result=DiagnoseResult,
    queue="diagnosis",
    timeout_s=60.0,
    retry=RetryPolicy(max_attempts=2, base_delay_s=0.5, max_delay_s=5.0),
    executor="process",
)
def diagnose(payload: DiagnosePayload, ctx: TaskContext) -> DiagnoseResult:
    """Diagnose one camera frame: picture quality checks, faces and people, frozen feed."""
    from genqueue.handlers.diagnose.pipeline import run_diagnosis

    return run_diagnosis(payload, ctx, ctx.settings.diagnosis)


KINDS = [diagnose]
