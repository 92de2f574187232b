"""``image.diagnose`` on real pixels: each check flips on its own defect and on nothing else,
frozen frames per camera, people on a real CCTV clip and a face on a real photo (batched or one
frame at a time), the annotated PNG and the alert events."""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from genqueue.artifacts import ArtifactStore
from genqueue.errors import ConfigError, InvalidInputError
from genqueue.handlers.diagnose import detect, diagnose
from genqueue.handlers.diagnose.frozen import camera_folder
from genqueue.handlers.diagnose.models import DiagnosePayload, DiagnoseResult, Finding
from genqueue.handlers.diagnose.pipeline import default_detectors, run_diagnosis
from genqueue.inputs import InputReader
from genqueue.resources import Resources
from genqueue.settings import DiagnosisSettings, load_settings
from genqueue.worker.execution import LocalContext
from tests import diagnose_scenes as scenes

DATA = Path(__file__).parent / "data"
PICTURE_CHECKS = {
    "blur",
    "dark",
    "bright",
    "contrast",
    "colour_cast",
    "noise",
    "signal_loss",
    "occlusion",
}
Diagnose = Callable[..., tuple[DiagnoseResult, LocalContext]]


@pytest.fixture(scope="module")
def sharp() -> scenes.Frame:
    return scenes.scene()


@pytest.fixture(scope="module")
def vtest() -> list[scenes.Frame]:
    """Six frames of opencv-doc's pedestrian clip; without the package, skipped loudly (failed
    under CI=true, where `make test` has installed it)."""
    try:
        return scenes.vtest_frames()
    except FileNotFoundError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(str(error))
        pytest.skip(str(error))


@pytest.fixture
def run(tmp_path: Path) -> Diagnose:
    """Diagnose a frame as a worker would: the frame is a file under the input root, read by a
    real InputReader; artifacts and fingerprints go to a real ArtifactStore on tmp_path."""
    inputs, artifacts = tmp_path / "inputs", str(tmp_path / "artifacts")
    inputs.mkdir()
    names = itertools.count()

    def diagnose_frame(
        image: scenes.Frame | bytes, task_id: str = "t-1", **payload: Any
    ) -> tuple[DiagnoseResult, LocalContext]:
        name = f"frame-{next(names)}.png"
        data = image if isinstance(image, bytes) else scenes.encode(image)
        (inputs / name).write_bytes(data)
        reader = InputReader(artifacts, str(inputs), 10**8)
        ctx = LocalContext(task_id, 1, ArtifactStore(artifacts), reader)
        body = DiagnosePayload.model_validate({"image": {"path": name}, **payload})
        return run_diagnosis(body, ctx, DiagnosisSettings(), default_detectors()), ctx

    return diagnose_frame


def by_check(result: DiagnoseResult) -> dict[str, Finding]:
    return {f.check: f for f in result.findings}


def test_a_sharp_well_exposed_scene_passes_every_check(run: Diagnose, sharp: scenes.Frame) -> None:
    result, ctx = run(sharp)
    assert result.verdict == "ok" and result.alerts == []
    found = by_check(result)
    assert {c for c, f in found.items() if f.verdict == "ok"} == PICTURE_CHECKS | {
        "faces",
        "people",
    }
    assert found["frozen"].verdict == "skipped"  # no camera_id
    blur = found["blur"]
    assert blur.score is not None and blur.threshold is not None
    assert blur.score > 10 * blur.threshold
    assert (result.width, result.height) == (640, 480)
    assert ctx.events == []


DEFECTS: list[tuple[str, Callable[[scenes.Frame], scenes.Frame], set[str]]] = [
    ("blurred", scenes.blurred, {"blur"}),
    ("dark", scenes.dark, {"dark"}),
    ("overexposed", scenes.overexposed, {"bright"}),
    ("low-contrast", scenes.low_contrast, {"contrast"}),
    ("colour-cast", scenes.colour_cast, {"colour_cast"}),
    ("noisy", scenes.noisy, {"noise"}),
    ("half-covered", scenes.half_covered, {"occlusion"}),
    ("black", scenes.black, {"signal_loss", "dark"}),
    ("uniform-grey", scenes.uniform, {"signal_loss"}),
]


@pytest.mark.parametrize(
    ("defect", "expected"), [(d[1], d[2]) for d in DEFECTS], ids=[d[0] for d in DEFECTS]
)
def test_each_defect_alerts_its_own_check_and_no_other(
    run: Diagnose,
    sharp: scenes.Frame,
    defect: Callable[[scenes.Frame], scenes.Frame],
    expected: set[str],
) -> None:
    result, ctx = run(defect(sharp), camera_id="cam-7")
    assert set(result.alerts) == expected, [f.detail for f in result.findings]
    assert result.verdict == "alert" and result.counts.alerts == len(expected)
    for finding in result.findings:
        if finding.verdict == "alert":
            assert finding.score is not None and finding.threshold is not None
    events = [(kind, data["check"]) for kind, data in ctx.events]
    assert events == [("diagnosis.alert", check) for check in result.alerts]
    assert all(data["camera_id"] == "cam-7" for _, data in ctx.events)


def test_a_lost_signal_skips_the_checks_that_need_a_picture(
    run: Diagnose, sharp: scenes.Frame
) -> None:
    result, _ = run(scenes.black(sharp), camera_id="cam-1")
    found = by_check(result)
    skipped = {c for c, f in found.items() if f.verdict == "skipped"}
    assert skipped == {"blur", "contrast", "colour_cast", "noise", "occlusion", "frozen"} | {
        "faces",
        "people",
    }
    assert found["signal_loss"].score == 1.0


def test_an_alert_event_carries_the_camera_check_score_threshold_and_detail(
    run: Diagnose, sharp: scenes.Frame
) -> None:
    result, ctx = run(scenes.blurred(sharp), camera_id="gate-2")
    [(kind, data)] = ctx.events
    blur = by_check(result)["blur"]
    assert kind == "diagnosis.alert"
    assert data == {
        "camera_id": "gate-2",
        "check": "blur",
        "score": blur.score,
        "threshold": 15.0,
        "detail": blur.detail,
    }
    assert "Laplacian variance" in data["detail"]


def test_thresholds_and_checks_given_per_task_override_the_defaults(
    run: Diagnose, sharp: scenes.Frame
) -> None:
    result, _ = run(sharp, checks=["blur", "dark"], thresholds={"blur": 1e5, "dark": 10})
    assert [f.check for f in result.findings] == ["dark", "blur"]
    found = by_check(result)
    assert (found["blur"].threshold, found["blur"].verdict) == (1e5, "alert")
    assert (found["dark"].threshold, found["dark"].verdict) == (10.0, "ok")


def test_the_same_frame_twice_from_one_camera_is_frozen_the_second_time(
    run: Diagnose, sharp: scenes.Frame, tmp_path: Path
) -> None:
    first, _ = run(sharp, task_id="t-1", camera_id="lobby", checks=["frozen"])
    assert by_check(first)["frozen"].verdict == "skipped"  # nothing to compare with yet
    second, ctx = run(sharp, task_id="t-2", camera_id="lobby", checks=["frozen"])
    frozen = by_check(second)["frozen"]
    assert (frozen.verdict, frozen.score) == ("alert", 0.0)
    assert [data["check"] for _, data in ctx.events] == ["frozen"]
    stored = ArtifactStore(str(tmp_path / "artifacts")).read(
        camera_folder("lobby"), "fingerprint.json"
    )
    assert b"lobby" not in stored  # the folder is named by a hash, nothing of the id leaks


def test_a_live_camera_is_not_frozen_even_when_its_scene_stands_still(
    run: Diagnose, sharp: scenes.Frame
) -> None:
    rng = np.random.default_rng(5)
    run(sharp, task_id="t-1", camera_id="yard", checks=["frozen"])
    # The same view with the faint grain of a fresh exposure: the scene did not move.
    still, _ = run(scenes.with_grain(sharp, rng, 2.0), task_id="t-2", camera_id="yard")
    assert by_check(still)["frozen"].verdict == "ok"
    moved, _ = run(scenes.scene(seed=1), task_id="t-3", camera_id="yard", checks=["frozen"])
    frozen = by_check(moved)["frozen"]
    assert frozen.verdict == "ok" and frozen.score is not None and frozen.score > 5


def test_cameras_do_not_share_their_last_frame(run: Diagnose, sharp: scenes.Frame) -> None:
    run(sharp, task_id="t-1", camera_id="north", checks=["frozen"])
    other, _ = run(sharp, task_id="t-2", camera_id="south", checks=["frozen"])
    assert by_check(other)["frozen"].verdict == "skipped"  # south's first frame
    again, _ = run(scenes.scene(seed=2), task_id="t-3", camera_id="north", checks=["frozen"])
    assert by_check(again)["frozen"].verdict == "ok"


def test_a_retried_task_is_not_compared_with_its_own_first_attempt(
    run: Diagnose, sharp: scenes.Frame
) -> None:
    run(scenes.scene(seed=3), task_id="t-1", camera_id="dock", checks=["frozen"])
    run(sharp, task_id="t-2", camera_id="dock", checks=["frozen"])
    retry, _ = run(sharp, task_id="t-2", camera_id="dock", checks=["frozen"])
    assert by_check(retry)["frozen"].verdict == "ok"  # compared with t-1's frame


def test_a_face_is_found_on_a_real_portrait(run: Diagnose) -> None:
    photo = (DATA / "astronaut.jpg").read_bytes()
    result, _ = run(photo, alert_on_faces=True)
    faces = by_check(result)["faces"]
    assert result.counts.faces >= 1 and faces.verdict == "alert"
    [box] = faces.boxes[:1]
    # The face of the 384 px portrait: above the middle, slightly left of centre.
    assert 90 < box.x + box.width / 2 < 210 and 40 < box.y + box.height / 2 < 140
    assert result.alerts == ["faces"]


def test_no_face_and_no_person_on_a_landscape(run: Diagnose) -> None:
    result, _ = run(scenes.landscape(), alert_on_faces=True, alert_on_people=True)
    found = by_check(result)
    assert (found["faces"].score, found["people"].score) == (0.0, 0.0)
    assert (result.counts.faces, result.counts.people) == (0, 0)


def test_people_are_found_on_every_frame_of_a_pedestrian_clip(vtest: list[scenes.Frame]) -> None:
    found = detect.detect_people(vtest)
    counts = [len(people) for people in found]
    assert all(2 <= n <= 8 for n in counts), counts  # 2-8 walkers are in view at a time
    for frame, people in zip(vtest, found, strict=True):
        height, width = frame.shape[:2]
        for box in people:
            assert box.height > box.width  # standing people
            assert box.x + box.width <= width and box.y + box.height <= height
            assert detect.PEOPLE_MIN_SCORE <= box.score <= 1


def test_one_person_and_one_face_are_found_on_a_portrait() -> None:
    photo = scenes.astronaut()
    [person] = detect.people(photo)
    [face] = detect.faces(photo)
    assert face.score > 0.8
    # The face is the person's: inside the person's box, in its upper half.
    assert person.x <= face.x and face.x + face.width <= person.x + person.width
    assert person.y <= face.y and face.y + face.height / 2 < person.y + person.height / 2


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((480, 640, 3), np.uint8),
        np.full((576, 768, 3), 128, np.uint8),
        scenes.scene(),
        scenes.landscape(),
    ],
    ids=["black", "grey", "shapes", "landscape"],
)
def test_nobody_is_found_on_frames_without_people(frame: scenes.Frame) -> None:
    assert detect.detect_people([frame]) == [[]]
    assert detect.detect_faces([frame]) == [[]]


def same_boxes(a: list[detect.Detection], b: list[detect.Detection]) -> bool:
    """Equal but for float noise: a batch may sum in another order than a single frame."""
    return len(a) == len(b) and all(
        abs(p.x - q.x) <= 1
        and abs(p.y - q.y) <= 1
        and abs(p.width - q.width) <= 1
        and abs(p.height - q.height) <= 1
        and abs(p.score - q.score) < 1e-3
        for p, q in zip(a, b, strict=True)
    )


def test_a_batch_finds_what_one_frame_at_a_time_finds(vtest: list[scenes.Frame]) -> None:
    frames = [*vtest[:3], scenes.astronaut(), scenes.scene()]  # three sizes in one batch
    people, faces = detect.detect_people(frames), detect.detect_faces(frames)
    for frame, in_batch in zip(frames, people, strict=True):
        assert same_boxes(in_batch, detect.people(frame))
    for frame, in_batch in zip(frames, faces, strict=True):
        assert same_boxes(in_batch, detect.faces(frame))
    assert sum(map(len, people)) >= 7 and sum(map(len, faces)) == 1  # the astronaut's face
    assert detect.detect_people([]) == [] and detect.detect_faces([]) == []


def test_a_missing_person_model_fails_naming_the_install_step(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="make models"):
        detect.PeopleDetector(tmp_path / "absent.onnx")


def test_people_on_a_camera_frame_alert_when_asked(
    run: Diagnose, vtest: list[scenes.Frame]
) -> None:
    result, ctx = run(vtest[1], camera_id="path", alert_on_people=True, checks=["people"])
    people = by_check(result)["people"]
    assert people.verdict == "alert" and people.score is not None and people.score >= 2
    # Found on the 640 px analysis frame, reported in the 768 x 576 camera frame: where the
    # detector puts them on the camera frame itself, give or take the rounding (a marginal
    # walker may fall under the score threshold at one size and not the other).
    assert (result.analysed_width, result.width) == (640, 768)
    direct = detect.people(vtest[1])
    for box in people.boxes:
        assert any(
            abs(box.x - d.x) <= 3 and abs(box.y + box.height - d.y - d.height) <= 3 for d in direct
        )
    assert [data["check"] for _, data in ctx.events] == ["people"]


def test_faces_are_reported_without_alerting_by_default(run: Diagnose) -> None:
    result, ctx = run((DATA / "astronaut.jpg").read_bytes(), checks=["faces"])
    faces = by_check(result)["faces"]
    assert faces.verdict == "ok" and faces.score is not None and faces.score >= 1
    assert "report only" in faces.detail and ctx.events == []


def test_the_annotated_png_is_the_analysed_frame_with_a_legend(
    run: Diagnose, sharp: scenes.Frame, tmp_path: Path
) -> None:
    big = np.asarray(Image.fromarray(scenes.blurred(sharp)).resize((1280, 960)), np.uint8)
    result, _ = run(big, task_id="t-9")
    assert result.annotated_url == "/v1/artifacts/t-9/annotated.png"
    assert (result.width, result.analysed_width, result.analysed_height) == (1280, 640, 480)
    png = ArtifactStore(str(tmp_path / "artifacts")).read("t-9", "annotated.png")
    annotated = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.int16)
    assert annotated.shape == (480, 640, 3)
    reference = np.asarray(Image.fromarray(big).resize((640, 480)), np.int16)
    corner = np.abs(annotated[:20, :200] - reference[:20, :200]).mean()
    assert corner > 20  # the legend panel is drawn there
    without, _ = run(big, task_id="t-10", annotate=False)
    assert without.annotated_url is None


async def test_the_kind_diagnoses_a_batch_and_a_bad_frame_fails_alone(
    tmp_path: Path, sharp: scenes.Frame
) -> None:
    root = str(tmp_path / "artifacts")
    resources = Resources(load_settings())
    await resources.ready(diagnose.all_resources)
    contexts = [
        LocalContext(f"t-{i}", 1, ArtifactStore(root), InputReader(root, None, 10**8))
        for i in range(3)
    ]
    for ctx in contexts:
        ctx.resources = resources
    small = np.asarray(Image.fromarray(sharp).resize((160, 120)), np.uint8)
    frames = [scenes.dark(small), small]
    payloads = [diagnose.validate_payload({"image": scenes.inline(f)}) for f in frames]
    payloads.insert(1, diagnose.validate_payload({"image": {"base64": "bm90IGFuIGltYWdl"}}))
    try:
        dark, bad, fine = diagnose.handler(payloads, contexts)  # type: ignore[arg-type,misc]
    finally:
        await resources.aclose()
    assert isinstance(dark, DiagnoseResult) and "dark" in dark.alerts
    assert isinstance(fine, DiagnoseResult) and "dark" not in fine.alerts
    assert isinstance(bad, InvalidInputError)  # one unreadable frame fails its own task
    assert (diagnose.queue, diagnose.executor) == ("diagnosis", "thread")
    assert diagnose.batching is not None and diagnose.batching.max_size == 16
    assert contexts[0].latest is not None and contexts[0].latest.fraction == 1.0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"camera_id": "../../etc"}, "payload.camera_id"),
        ({"camera_id": "x" * 129}, "payload.camera_id"),
        ({"checks": ["blur", "sharpness"]}, "payload.checks.1"),
        ({"checks": []}, "payload.checks"),
        ({"thresholds": {"blur": -1}}, "payload.thresholds.blur"),
        ({"thresholds": {"loudness": 3}}, "payload.thresholds.loudness.[key]"),
        ({"threshold": {"blur": 3}}, "payload.threshold"),
    ],
    ids=[
        "path-like-camera",
        "long-camera",
        "unknown-check",
        "no-checks",
        "negative",
        "key",
        "typo",
    ],
)
def test_bad_payloads_are_refused_naming_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        diagnose.validate_payload({"image": {"upload": "u-" + "0" * 32}, **payload})
    assert field in [p.field for p in info.value.problems]


def test_a_file_that_is_not_an_image_fails_naming_the_image_field(run: Diagnose) -> None:
    with pytest.raises(InvalidInputError) as info:
        run(b"not a picture at all")
    assert [p.field for p in info.value.problems] == ["image"]
