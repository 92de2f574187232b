"""``feature.extract`` on the real EfficientNet-Lite0 graph: vectors, labels, batching, and the
payload rules. Needs the model ``make models`` exports (``make test`` runs it first)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genqueue.artifacts import ArtifactStore
from genqueue.errors import ConfigError, ForbiddenPathError, InvalidInputError
from genqueue.handlers.features import extract_features
from genqueue.handlers.features.extract import run_extract
from genqueue.handlers.features.models import FeaturePayload, FeatureResult, decode_vector
from genqueue.inputs import InputReader
from genqueue.ml.effnet import DIM, load_embedder, model_path
from genqueue.settings import FeatureSettings
from genqueue.worker.execution import LocalContext
from tests import feature_images as pics


@pytest.fixture(scope="session", autouse=True)
def model_exported() -> None:
    path = model_path(FeatureSettings().model_path)
    if not path.is_file():
        pytest.fail(f"no feature model at {path}: run `make models` (make test does)")


def inline(image: Any) -> dict[str, str]:
    return {"base64": base64.b64encode(pics.encode(image, "PNG")).decode()}


def run(payload: dict[str, Any], tmp_path: Path, **settings: Any) -> FeatureResult:
    root = str(tmp_path / "artifacts")
    ctx = LocalContext("task-1", 1, ArtifactStore(root), InputReader(root, str(tmp_path), 10**8))
    features = FeatureSettings(**settings)
    model = load_embedder(features.model_path, features.intra_op_threads)
    return run_extract(FeaturePayload.model_validate(payload), ctx, features, model)


def vectors(result: FeatureResult) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.stack([decode_vector(item.embedding) for item in result.items])


def test_an_image_becomes_one_unit_length_1280_d_vector(tmp_path: Path) -> None:
    result = run({"image": inline(pics.astronaut()), "id": "astro"}, tmp_path)
    assert (result.model, result.dim, len(result.items)) == ("efficientnet-lite0", DIM, 1)
    vector = vectors(result)[0]
    assert vector.shape == (DIM,) and vector.dtype == np.float32
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    assert result.items[0].id == "astro" and len(result.items[0].labels) == 5


def test_the_same_image_gives_the_same_vector(tmp_path: Path) -> None:
    payload = {"image": inline(pics.scene(0))}
    assert np.array_equal(vectors(run(payload, tmp_path)), vectors(run(payload, tmp_path)))


def test_a_batch_of_images_matches_the_images_one_by_one(tmp_path: Path) -> None:
    images = pics.gallery(6)
    batch = run({"images": [inline(i) for i in images]}, tmp_path, max_batch=4)
    singles = np.concatenate([vectors(run({"image": inline(i)}, tmp_path)) for i in images])
    assert np.abs(vectors(batch) - singles).max() < 1e-5
    assert [item.id for item in batch.items] == [f"task-1:{i}" for i in range(6)]


def test_a_drawn_clock_is_labelled_an_analog_clock(tmp_path: Path) -> None:
    labels = run({"image": inline(pics.clock_face())}, tmp_path).items[0].labels
    assert labels[0].name == "analog clock" and labels[0].score > 0.5
    assert [label.score for label in labels] == sorted((x.score for x in labels), reverse=True)


def test_an_edited_copy_is_nearer_its_original_than_any_other_picture(tmp_path: Path) -> None:
    images = pics.gallery(6)
    originals = vectors(run({"images": [inline(i) for i in images]}, tmp_path))
    copies = vectors(run({"images": [inline(pics.edited(i)) for i in images]}, tmp_path))
    scores = copies @ originals.T
    assert list(scores.argmax(axis=1)) == list(range(len(images)))
    assert scores[0, 0] > 0.8  # the astronaut photo


def test_a_missing_model_names_the_setting_and_make_models(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        run({"image": inline(pics.scene(1))}, tmp_path, model_path=tmp_path / "none.onnx")
    assert "GENQUEUE_FEATURES__MODEL_PATH" in str(caught.value)
    assert "make models" in str(caught.value)


def test_a_file_that_is_not_an_image_fails_naming_its_place(tmp_path: Path) -> None:
    broken = {"base64": base64.b64encode(b"not an image at all").decode()}
    with pytest.raises(InvalidInputError) as caught:
        run({"images": [inline(pics.scene(2)), broken]}, tmp_path)
    assert caught.value.problems[0].field == "images.1"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "payload"),
        ({"image": {"path": "a.png"}, "images": [{"path": "b.png"}]}, "payload"),
        ({"image": {"path": "a.png"}, "collection": "Bad Name!"}, "payload.collection"),
        ({"images": [{"path": "a.png"}], "ids": ["x", "y"]}, "payload"),
        ({"images": [{"path": "a.png"}] * 257}, "payload.images"),
        ({"image": {"path": "a.png"}, "metadata": {"x": "y" * 5000}}, "payload.metadata"),
    ],
)
def test_bad_payloads_are_refused_naming_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        extract_features.validate_payload(payload)
    assert caught.value.problems[0].field == field


def test_a_path_outside_the_input_root_is_forbidden() -> None:
    with pytest.raises(ForbiddenPathError):
        extract_features.validate_payload({"image": {"path": "../etc/passwd"}})


def test_the_kind_declares_its_queue_executor_and_batching() -> None:
    assert (extract_features.queue, extract_features.executor) == ("features", "thread")
    assert extract_features.batching is not None and extract_features.batching.max_size == 32
