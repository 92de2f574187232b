"""The procedural renderer behind ``image.generate``: shape, determinism, variety, progress."""

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from genqueue.handlers.render import STYLES, Style, render_image

SIZE = 96


def pixels(image: Image.Image) -> npt.NDArray[np.float32]:
    return np.asarray(image, dtype=np.float32)


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0..255: above ~10 is plainly visible."""
    return float(np.abs(pixels(a) - pixels(b)).mean())


def test_styles_are_the_five_in_order() -> None:
    assert STYLES == ("default", "photorealistic", "artistic", "cartoon", "abstract")


@pytest.mark.parametrize(("width", "height"), [(96, 64), (64, 130), (64, 64)])
@pytest.mark.parametrize("style", STYLES)
def test_exact_size_and_rgb_mode(style: Style, width: int, height: int) -> None:
    image = render_image("a lake under mountains", width, height, style, steps=3)
    assert image.size == (width, height)
    assert image.mode == "RGB"


@pytest.mark.parametrize("style", STYLES)
def test_same_arguments_give_identical_bytes(style: Style) -> None:
    first = render_image("stormy sea at dusk", SIZE, SIZE, style, seed=7, steps=6)
    second = render_image("stormy sea at dusk", SIZE, SIZE, style, seed=7, steps=6)
    assert first.tobytes() == second.tobytes()


def test_seed_defaults_to_a_stable_hash_of_the_prompt() -> None:
    # Python's hash() is salted per process; the renderer must not depend on it.
    first = render_image("a quiet harbour town", SIZE, SIZE)
    assert first.tobytes() == render_image("a quiet harbour town", SIZE, SIZE).tobytes()
    assert difference(first, render_image("a quiet harbour town", SIZE, SIZE, seed=1)) > 3


def test_different_seeds_change_the_layout() -> None:
    one = render_image("mountains above a lake", SIZE, SIZE, seed=1)
    two = render_image("mountains above a lake", SIZE, SIZE, seed=2)
    assert difference(one, two) > 3


def test_different_prompts_give_visibly_different_pictures() -> None:
    prompts = [
        "sunset over the ocean",
        "night sky with stars",
        "sunny desert at noon",
        "a pine forest in the rain",
        "city skyline at night",
        "a nebula in deep space",
        "a cat",
        "a dog",
    ]
    images = {p: render_image(p, SIZE, SIZE, seed=3) for p in prompts}
    for a, b in itertools.combinations(prompts, 2):
        assert difference(images[a], images[b]) > 8, (a, b)


def test_each_style_differs_from_the_others() -> None:
    images = {s: render_image("sunset over mountains and a lake", SIZE, SIZE, s) for s in STYLES}
    for a, b in itertools.combinations(STYLES, 2):
        assert difference(images[a], images[b]) > 4, (a, b)


def test_night_is_darker_than_a_sunny_desert() -> None:
    night = pixels(render_image("night sky with stars", SIZE, SIZE)).mean()
    desert = pixels(render_image("sunny desert at noon", SIZE, SIZE)).mean()
    assert night < 80 < 140 < desert


def test_a_named_colour_tints_the_palette() -> None:
    blue = pixels(render_image("a blue ocean", SIZE, SIZE, seed=5))
    red = pixels(render_image("a red ocean", SIZE, SIZE, seed=5))
    assert (blue[..., 2] - blue[..., 0]).mean() > (red[..., 2] - red[..., 0]).mean() + 10


def test_pictures_are_not_flat() -> None:
    for style in STYLES:
        image = pixels(render_image("flower garden by a river", SIZE, SIZE, style))
        assert image.std() > 12, style


@pytest.mark.parametrize("steps", [1, 2, 7, 20, 150])
def test_on_step_is_called_once_per_step_in_order(steps: int) -> None:
    calls: list[tuple[int, int]] = []
    render_image("forest", 64, 64, steps=steps, on_step=lambda s, n: calls.append((s, n)))
    assert calls == [(step, steps) for step in range(1, steps + 1)]


class Cancelled(Exception):
    pass


def test_on_step_raising_stops_the_render_and_propagates() -> None:
    seen: list[int] = []

    def cancel_at_three(step: int, steps: int) -> None:
        seen.append(step)
        if step == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        render_image("city by the sea", SIZE, SIZE, steps=10, on_step=cancel_at_three)
    assert seen == [1, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 63}, "width"),
        ({"width": 2049}, "width"),
        ({"height": 0}, "height"),
        ({"height": 4096}, "height"),
        ({"steps": 0}, "steps"),
        ({"steps": 151}, "steps"),
        ({"style": "watercolour"}, "style"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   \n\t"}, "prompt"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"prompt": "a lake", "width": 64, "height": 64}
    with pytest.raises(ValueError, match=message):
        render_image(**{**args, **kwargs})  # type: ignore[arg-type]
