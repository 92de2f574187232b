"""The annotated picture: detections boxed, and a legend naming the checks that failed, drawn
on the analysed (reduced) frame so the PNG stays small and quick to encode."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from genqueue.handlers.diagnose.detect import Detection
from genqueue.handlers.diagnose.models import Finding

# RGB; the frame is RGB until it is encoded.
FACE_COLOUR = (40, 220, 40)
PERSON_COLOUR = (255, 160, 0)
ALERT_COLOUR = (255, 70, 60)
OK_COLOUR = (90, 230, 90)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def annotate(
    rgb: NDArray[np.uint8],
    faces: Sequence[Detection],
    people: Sequence[Detection],
    findings: Sequence[Finding],
) -> bytes:
    """A PNG of the frame with boxes and the legend (fast zlib level: this is a preview)."""
    canvas = np.ascontiguousarray(rgb).copy()
    for found, colour, label in ((faces, FACE_COLOUR, "face"), (people, PERSON_COLOUR, "person")):
        for d in found:
            cv2.rectangle(canvas, (d.x, d.y), (d.x + d.width, d.y + d.height), colour, 2)
            cv2.putText(canvas, label, (d.x, max(12, d.y - 4)), FONT, 0.45, colour, 1, cv2.LINE_AA)
    _legend(canvas, [f for f in findings if f.verdict == "alert"])
    bgr = cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding of the annotated frame failed")
    return encoded.tobytes()


def _legend(canvas: NDArray[np.uint8], alerts: Sequence[Finding]) -> None:
    """A dark panel in the top-left corner: one line per failed check, or 'all checks ok'."""
    lines = [(_line(f), ALERT_COLOUR) for f in alerts] or [("all checks ok", OK_COLOUR)]
    scale, step = 0.45, 17
    width = max(cv2.getTextSize(text, FONT, scale, 1)[0][0] for text, _ in lines) + 12
    height = step * len(lines) + 8
    panel = canvas[:height, :width]
    panel[:] = (panel.astype(np.uint16) * 2 // 7).astype(np.uint8)  # darken, keep a hint
    for row, (text, colour) in enumerate(lines):
        y = 4 + step * (row + 1) - 4
        cv2.putText(canvas, text, (6, y), FONT, scale, colour, 1, cv2.LINE_AA)


def _line(finding: Finding) -> str:
    score = "-" if finding.score is None else f"{finding.score:.3g}"
    threshold = "-" if finding.threshold is None else f"{finding.threshold:.3g}"
    return f"ALERT {finding.check}: {score} (threshold {threshold})"
