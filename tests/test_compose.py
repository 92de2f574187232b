"""``image.compose`` on real pixels: a drawn red garment on a white backdrop is cut out,
placed, scaled, rotated, shadowed and captioned where the payload says."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageDraw, ImageFilter
from pydantic import ValidationError

from genqueue.artifacts import ArtifactStore
from genqueue.errors import InvalidInputError
from genqueue.handlers.compose.cutout import grabcut_mask
from genqueue.handlers.compose.models import ComposePayload, ComposeResult
from genqueue.handlers.compose.pipeline import run_compose
from genqueue.inputs import InputReader
from genqueue.worker.execution import LocalContext

DATA = Path(__file__).parent / "data"
W, H = 320, 240
Mask = npt.NDArray[np.bool_]
Compose = Callable[..., tuple[ComposeResult, Image.Image]]


def shirt(noise: float = 4.0) -> tuple[Image.Image, Mask]:
    """A red T-shirt silhouette on a white, slightly noisy, slightly shaded backdrop, and the
    drawn truth."""
    truth = Image.new("L", (W, H), 0)
    body = [(120, 60), (200, 60), (250, 95), (228, 125), (205, 110), (205, 210), (115, 210)]
    body += [(115, 110), (92, 125), (70, 95)]
    ImageDraw.Draw(truth).polygon(body, fill=255)
    ImageDraw.Draw(truth).ellipse((140, 48, 180, 72), fill=0)  # the collar
    rng = np.random.default_rng(1)
    shade = np.linspace(250, 236, H)[:, None, None] * np.ones((H, W, 3))
    red = np.array([200, 30, 40], np.float64) + rng.normal(0, 10, 3)
    mask = np.asarray(truth) > 0
    pixels = np.where(mask[..., None], red, shade) + rng.normal(0, noise, (H, W, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(0.6)), mask


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def iou(a: Mask, b: Mask) -> float:
    return float((a & b).sum() / (a | b).sum())


def red(image: Image.Image) -> Mask:
    rgb = np.asarray(image.convert("RGB")).astype(int)
    return (rgb[..., 0] > 140) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)


def bbox(mask: Mask) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.fixture(scope="module")
def product() -> bytes:
    return encode(shirt()[0])


@pytest.fixture
def run(tmp_path: Path, product: bytes) -> Compose:
    """Compose as a worker would: the foreground is a file under the input root read by a real
    InputReader; artifacts go to a real ArtifactStore, and the PNG is read back from it."""
    inputs, root = tmp_path / "inputs", str(tmp_path / "artifacts")
    inputs.mkdir()
    names = itertools.count()

    def compose(foreground: bytes = product, **payload: Any) -> tuple[ComposeResult, Image.Image]:
        name = f"fg-{next(names)}.png"
        (inputs / name).write_bytes(foreground)
        ctx = LocalContext("t-1", 1, ArtifactStore(root), InputReader(root, str(inputs), 10**7))
        body: dict[str, Any] = {"background": {"colour": "#2050a0"}, "shadow": None}
        body |= {"foreground": {"path": name}, **payload}
        result = run_compose(ComposePayload.model_validate(body), ctx)
        png = ArtifactStore(root).read("t-1", "image.png")
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        return result, Image.open(io.BytesIO(png))

    return compose


def test_grabcut_separates_a_red_shirt_from_a_white_backdrop() -> None:
    image, truth = shirt()
    mask = grabcut_mask(np.asarray(image)) > 0
    assert iou(mask, truth) > 0.9
    # JPEG artefacts and a larger photo (cut at a reduced size, mask scaled back) too.
    big = image.resize((W * 3, H * 3), Image.Resampling.BICUBIC)
    jpeg = Image.open(io.BytesIO(encode(big, "JPEG"))).convert("RGB")
    big_truth = np.asarray(Image.fromarray(truth).resize(big.size, Image.Resampling.NEAREST))
    assert iou(grabcut_mask(np.asarray(jpeg)) > 0, big_truth) > 0.9


def test_the_mask_artifact_is_the_cut_out(run: Compose, tmp_path: Path) -> None:
    result, image = run()
    assert result.cutout == "grabcut" and result.mask_url == "/v1/artifacts/t-1/mask.png"
    mask = Image.open(
        io.BytesIO(ArtifactStore(str(tmp_path / "artifacts")).read("t-1", "mask.png"))
    )
    assert iou(np.asarray(mask) >= 128, shirt()[1]) > 0.9
    assert image.size == (512, 512) and (result.width, result.height) == (512, 512)
    # Only the shirt is pasted: no white backdrop survives on the blue canvas.
    rgb = np.asarray(image.convert("RGB")).astype(int)
    assert ((rgb > 225).all(axis=2)).sum() < 20


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ({"x": 0.25, "y": 0.7}, (0.25, 0.7)),
        ({"x": 0.8, "y": 0.2}, (0.8, 0.2)),
        ("center", (0.5, 0.5)),
    ],
)
def test_layout_puts_the_foreground_centre_where_asked(
    run: Compose, position: Any, expected: tuple[float, float]
) -> None:
    result, image = run(width=400, height=300, layout={"position": position, "scale": 0.3})
    x0, y0, x1, y1 = bbox(red(image))
    assert abs((x0 + x1) / 2 - expected[0] * 400) < 8
    assert abs((y0 + y1) / 2 - expected[1] * 300) < 8
    box = result.foreground_box
    assert abs(box.x - x0) <= 3 and abs(box.y + box.height - y1) <= 3


def test_anchors_keep_the_margin_from_their_edges(run: Compose) -> None:
    layout = {"position": "bottom-right", "margin": 0.05, "scale": 0.4}
    _, image = run(width=400, height=300, layout=layout)
    x0, y0, x1, y1 = bbox(red(image))
    assert abs(x1 - 380) <= 4 and abs(y1 - 285) <= 4
    _, image = run(width=400, height=300, layout={**layout, "position": "top-left"})
    x0, y0, x1, y1 = bbox(red(image))
    assert abs(x0 - 20) <= 4 and abs(y0 - 15) <= 4


def test_scale_and_rotation_change_the_bounding_box(run: Compose) -> None:
    def size(**layout: Any) -> tuple[int, int]:
        x0, y0, x1, y1 = bbox(red(run(width=400, height=400, layout=layout)[1]))
        return x1 - x0, y1 - y0

    w, h = size(scale=0.6)
    assert abs(max(w, h) - 240) <= 6  # the longer side fits 0.6 of the canvas
    half = size(scale=0.3)
    assert abs(half[0] - w / 2) <= 4 and abs(half[1] - h / 2) <= 4
    turned = size(scale=0.6, rotation=90)
    assert abs(turned[0] - h) <= 4 and abs(turned[1] - w) <= 4
    tilted = size(scale=0.6, rotation=30)
    assert tilted[1] > h + 20  # a tilted shirt reaches further up and down


def test_caption_pixels_appear_at_its_anchor(run: Compose) -> None:
    caption = {"text": "NEW SEASON", "size": 36, "colour": "#ffff00", "position": "top"}
    _, image = run(caption=caption, layout={"position": "bottom", "scale": 0.4})
    rgb = np.asarray(image.convert("RGB")).astype(int)
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 80)
    assert yellow[:80].sum() > 300 and yellow[80:].sum() == 0
    _, plain = run(layout={"position": "bottom", "scale": 0.4})
    rgb = np.asarray(plain.convert("RGB")).astype(int)
    assert ((rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 80)).sum() == 0


def test_shadow_darkens_below_the_object(run: Compose) -> None:
    common: dict[str, Any] = {"background": {"colour": "#e0e0e0"}, "layout": {"scale": 0.5}}
    shadow = {"offset_x": 0, "offset_y": 24, "blur": 4, "opacity": 0.6}
    result, shaded = run(shadow=shadow, **common)
    _, plain = run(**common)
    box = result.foreground_box
    below = (
        slice(box.y + box.height + 2, box.y + box.height + 14),
        slice(box.x + 40, box.x + box.width - 40),
    )
    far = (slice(0, 40), slice(0, 40))
    grey = [np.asarray(im.convert("L")).astype(float) for im in (shaded, plain)]
    assert grey[1][below].mean() - grey[0][below].mean() > 40
    assert abs(grey[1][far].mean() - grey[0][far].mean()) < 1


def test_an_alpha_channel_is_used_as_is(run: Compose) -> None:
    image, truth = shirt()
    rgba = image.convert("RGBA")
    rgba.putalpha(Image.fromarray((truth * 255).astype(np.uint8)))
    result, _ = run(foreground=encode(rgba))
    assert result.cutout == "alpha"


def test_a_generated_background_and_output_size(run: Compose) -> None:
    background = {"prompt": "sunset over the ocean", "seed": 3}
    result, image = run(background=background, width=256, height=192)
    assert image.size == (256, 192) and result.stage_ms.keys() >= {"cutout", "background"}
    assert np.asarray(image.convert("L")).std() > 10  # a painted scene, not a flat colour


def test_a_corrupt_or_empty_foreground_fails_naming_the_field(run: Compose, product: bytes) -> None:
    with pytest.raises(InvalidInputError) as caught:
        run(foreground=product[:200])
    assert caught.value.problems[0].field == "foreground"
    with pytest.raises(InvalidInputError, match="no object"):
        run(foreground=encode(Image.new("RGB", (200, 150), (255, 255, 255))))


@pytest.mark.parametrize(
    "change",
    [
        {"layout": {"scale": 0}},
        {"layout": {"position": {"x": 1.5, "y": 0.5}}},
        {"layout": {"position": "middle"}},
        {"layout": {"rotation": float("nan")}},
        {"shadow": {"opacity": 2}},
        {"caption": {"text": "  "}},
        {"caption": {"text": "hi", "colour": "yellow"}},
        {"background": {"prompt": "sea", "colour": "#000000"}},
        {"background": {}},
        {"width": 10},
        {"layuot": {}},
    ],
)
def test_nonsense_layout_values_are_refused(change: dict[str, Any]) -> None:
    body = {"foreground": {"path": "a.png"}, "background": {"colour": "#ffffff"}, **change}
    with pytest.raises(ValidationError):
        ComposePayload.model_validate(body)


def test_the_astronaut_photo_composes_without_error(run: Compose) -> None:
    """A busy photo (no plain backdrop): GrabCut falls back to the inset rectangle."""
    result, image = run(foreground=(DATA / "astronaut.jpg").read_bytes(), width=256, height=256)
    assert result.cutout == "grabcut" and image.size == (256, 256)
    assert 0 < result.foreground_box.width <= 256
