"""The classifier-guided engine of ``image.generate``: prompts reach sensible ImageNet classes,
renders are deterministic per seed and prompt-dependent, and the gradient ascent really moves
the classifier towards the chosen class. Small sizes and few steps keep it to seconds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from genqueue.handlers.guided import GENERATOR, GuidedModels, guided_models, render_guided
from genqueue.handlers.image import ImageGenerate, generate
from genqueue.handlers.render import render_image
from genqueue.ml.guided_text import class_names
from genqueue.resources import Resources
from genqueue.settings import load_settings

FOX = {"red fox", "kit fox", "Arctic fox", "grey fox"}
SIZE, STEPS = 128, 8


@pytest.fixture(scope="module")
def models() -> Iterator[GuidedModels]:
    """The engine's resource, set up once for this module as a worker process would."""
    resources = Resources(load_settings())
    resources.ready_sync([guided_models])
    yield resources.get(guided_models)
    resources.close_sync()


def pixels(image: Image.Image) -> npt.NDArray[np.float32]:
    return np.asarray(image, dtype=np.float32)


def class_probability(models: GuidedModels, image: Image.Image, index: int) -> float:
    """What EfficientNet-Lite0 says of the whole picture, scaled to 224 px."""
    import torch

    from genqueue.ml.guided_net import normalise

    small = image.convert("RGB").resize((224, 224), Image.Resampling.LANCZOS)
    x = torch.from_numpy(np.array(small, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        logits: Any = models.classifier(normalise(x))[0]
    return float(logits.softmax(0)[index])


def test_the_label_file_has_the_thousand_classes_in_index_order() -> None:
    names = class_names()
    assert len(names) == 1000
    assert names[0].startswith("tench") and names[277].startswith("red fox")


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a red fox in the snow", FOX),
        ("a bowl of strawberries", {"strawberry"}),
        ("a sports car on a road", {"sports car"}),
        ("a cup of coffee", {"coffee mug", "espresso", "cup", "coffeepot"}),
    ],
)
def test_prompts_match_sensible_classes(
    models: GuidedModels, prompt: str, expected: set[str]
) -> None:
    matches = models.classes.match(prompt)
    assert matches[0].name in expected
    assert abs(sum(m.weight for m in matches) - 1) < 1e-5
    assert matches[0].weight >= matches[-1].weight
    assert all(-1 <= m.similarity <= 1 for m in matches)


@pytest.fixture(scope="module")
def fox(models: GuidedModels) -> Image.Image:
    return render_guided(models, "a red fox in the snow", SIZE, SIZE, seed=11, steps=STEPS).image


def test_same_seed_gives_the_same_image(models: GuidedModels, fox: Image.Image) -> None:
    again = render_guided(models, "a red fox in the snow", SIZE, SIZE, seed=11, steps=STEPS)
    assert again.image.tobytes() == fox.tobytes()
    assert again.classes[0].name == "red fox"


def test_exact_size_and_different_prompts_differ(models: GuidedModels, fox: Image.Image) -> None:
    assert fox.size == (SIZE, SIZE) and fox.mode == "RGB"
    other = render_guided(models, "a bowl of strawberries", 96, 80, seed=11, steps=4).image
    assert other.size == (96, 80)
    resized = fox.resize(other.size)
    assert np.abs(pixels(resized) - pixels(other)).mean() > 10


def test_the_ascent_raises_the_target_class_substantially(models: GuidedModels) -> None:
    prompt, size, steps = "a red fox in the snow", 192, 12
    start = render_image(prompt, size, size, seed=4, steps=min(steps, 8))
    done = render_guided(models, prompt, size, size, seed=4, steps=steps)
    target = done.classes[0].index
    before = class_probability(models, start, target)
    after = class_probability(models, done.image, target)
    # Relative: the absolute figure moves with the CPU's float paths (0.10 to 0.2+ seen).
    assert after > 0.05 and after > 20 * before, (before, after)
    # Not by repainting the picture: the start image still shows through.
    assert np.abs(pixels(done.image) - pixels(start)).mean() < 60


def test_progress_runs_per_step_and_ends_high(models: GuidedModels) -> None:
    seen: list[tuple[float, str]] = []
    render_guided(
        models,
        "a lighthouse",
        96,
        96,
        seed=1,
        steps=5,
        on_progress=lambda f, m: seen.append((f, m)),
    )
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] > 0.9
    assert [m for _, m in seen if m.startswith("step")] == [f"step {i}/5" for i in range(1, 6)]


def test_the_payload_defaults_to_the_procedural_engine_and_the_label_is_honest() -> None:
    assert ImageGenerate(prompt="x").engine == "procedural"
    assert ImageGenerate(prompt="x", engine="guided").engine == "guided"
    with pytest.raises(ValueError):
        ImageGenerate.model_validate({"prompt": "x", "engine": "diffusion"})
    assert "diffusion" not in GENERATOR.lower() and "classifier-guided" in GENERATOR


def test_only_guided_renders_need_the_models() -> None:
    guided = ImageGenerate(prompt="x", engine="guided").model_dump(mode="json")
    procedural = ImageGenerate(prompt="x").model_dump(mode="json")
    assert generate.resources_for(guided) == [guided_models]
    assert generate.resources_for(procedural) == []
    assert generate.all_resources == [guided_models]
