"""Classifier-guided synthesis: gradient ascent on EfficientNet-Lite0's class scores.

This is feature visualisation (DeepDream with a class target), not a generative model: the
picture starts from the prompt's procedural render and is pushed, step by step, towards what
the classifier calls the chosen ImageNet classes. What keeps it from turning into
adversarial noise:

- octaves: the first steps run on a small copy (coarse shapes), later ones on larger copies;
  what was added (the "detail") is carried up each time, as in DeepDream;
- jitter: each step sees the canvas shifted by a few pixels and sometimes mirrored, so no
  feature can rely on one exact pixel grid;
- smoothing: the gradient is blurred (less as the steps go on) and normalised, a total
  variation term penalises speckle, and the added detail is blurred lightly now and then;
- the start image is kept at full resolution; only the detail is optimised at work size and
  upscaled, so a 2048 px request costs no more than a 320 px one.

Deterministic for a seed: jitter comes from a seeded NumPy generator and every torch op used
here is deterministic on CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from genqueue.ml.guided_net import normalise

Rgb = npt.NDArray[np.uint8]
OnStep = Callable[[int, int], None]
OnPreview = Callable[[Any], None]
PREVIEW_EVERY = 2  # steps between previews of the picture so far (a step costs far more)


@dataclass(frozen=True)
class SynthParams:
    """The knobs, with values tuned by eye on a handful of prompts."""

    work_side: int = 320  # long side of the last octave, in px
    floor_side: int = 224  # long side of the last octave for small requests
    min_side: int = 96  # no octave is smaller than this (the net needs some context)
    octaves: tuple[float, ...] = (0.55, 0.75, 1.0)
    octave_share: tuple[float, ...] = (0.3, 0.3, 0.4)  # of the steps, per octave
    lr: float = 0.02  # per step, in 0..1 pixel units after normalising the gradient
    jitter: int = 12  # px, at work size
    views: int = 2  # augmented views per step, batched: features that survive them all
    scale_jitter: float = 0.1  # each view is rescaled by up to this fraction
    grad_blur: tuple[float, float] = (2.5, 0.8)  # sigma at the first and last step
    tv_weight: float = 0.3
    detail_blur_every: int = 4
    logit_weight: float = 0.05  # a little raw logit on top of log-probability
    decorrelate: bool = True  # colour-correlated updates (natural images' channel covariance)


def _colour_mix() -> Any:
    """C @ C.T for C the square root of ImageNet's colour covariance (Lucid's
    ``color_correlation_svd_sqrt``): a gradient step through it changes the channels together,
    as natural images do, instead of painting rainbow speckle. Scaled to unit max norm."""
    import torch

    c = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
    mix = c @ c.T
    return mix / torch.linalg.matrix_norm(mix, ord=2)


def work_size(width: int, height: int, side: int, floor: int) -> tuple[int, int]:
    """(w, h) with the aspect ratio kept and the long side brought into ``floor..side``: small
    requests are optimised at the scale the classifier knows (224 px) and shrunk afterwards,
    or their features would come out at the wrong scale."""
    scale = min(side, max(floor, max(width, height))) / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _gaussian(x: Any, sigma: float) -> Any:
    """Separable Gaussian blur of a (1, c, h, w) tensor with reflected edges."""
    import torch
    import torch.nn.functional as F

    if sigma < 0.3:
        return x
    radius = max(1, round(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _split(steps: int, shares: Sequence[float]) -> list[int]:
    """Steps per octave: proportional to the shares, the remainder to the last octaves; with
    fewer steps than octaves, only the last octaves run."""
    if steps < len(shares):
        return [0] * (len(shares) - steps) + [1] * steps
    counts = [max(1, int(steps * s)) for s in shares]
    counts[-1] += steps - sum(counts)
    return counts


def synthesise(
    net: Any,
    start: Rgb,
    targets: Sequence[tuple[int, float]],
    steps: int,
    seed: int,
    on_step: OnStep | None = None,
    params: SynthParams | None = None,
    on_preview: OnPreview | None = None,
) -> Rgb:
    """Push ``start`` (H, W, 3 uint8), as ``net`` (``guided_net.load_classifier``) sees it,
    towards the weighted ImageNet classes ``targets``
    (index, weight) for ``steps`` gradient steps; returns an array of the same size.
    ``on_step(step, steps)`` runs after each step and may raise to abandon the run;
    ``on_preview(picture)`` every ``PREVIEW_EVERY`` steps gets the picture so far at work
    size (h x w x 3 float32 in 0..1)."""
    import torch
    import torch.nn.functional as F

    p = params or SynthParams()
    if not targets:
        raise ValueError("no target classes")
    if steps < 1:
        raise ValueError("steps must be at least 1")
    mix = _colour_mix() if p.decorrelate else None
    rng = np.random.default_rng([seed, 0x6775696465])
    index = torch.tensor([t for t, _ in targets], dtype=torch.long)
    weight = torch.tensor([w for _, w in targets], dtype=torch.float32)
    weight = weight / weight.sum()
    height, width = start.shape[:2]
    full = torch.from_numpy(np.array(start, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    ww, wh = work_size(width, height, p.work_side, p.floor_side)
    sizes = [(max(p.min_side, round(wh * o)), max(p.min_side, round(ww * o))) for o in p.octaves]
    detail = torch.zeros(1, 3, *sizes[0])
    done = 0
    with torch.inference_mode(False):
        for (oh, ow), count in zip(sizes, _split(steps, p.octave_share), strict=True):
            if count == 0:
                continue
            base = F.interpolate(full, size=(oh, ow), mode="area")
            detail = F.interpolate(detail, size=(oh, ow), mode="bilinear", align_corners=False)
            for _ in range(count):
                sigma = p.grad_blur[0] + (p.grad_blur[1] - p.grad_blur[0]) * done / max(
                    1, steps - 1
                )
                detail = _ascent_step(net, base, detail, index, weight, mix, rng, sigma, p)
                done += 1
                if p.detail_blur_every and done % p.detail_blur_every == 0:
                    detail = _gaussian(detail, 0.5)
                if on_preview is not None and done % PREVIEW_EVERY == 0:
                    on_preview((base + detail).detach().clamp(0.0, 1.0)[0].permute(1, 2, 0).numpy())
                if on_step is not None:
                    on_step(done, steps)
    if detail.shape[-1] > width:
        up = F.interpolate(detail, size=(height, width), mode="area")
    else:
        up = F.interpolate(detail, size=(height, width), mode="bicubic", align_corners=False)
    out = (full + up).clamp(0.0, 1.0)[0].permute(1, 2, 0).numpy()
    return np.asarray(np.round(out * 255.0), dtype=np.uint8)


def _augment(image: Any, rng: np.random.Generator, p: SynthParams) -> Any:
    """One view of the canvas: shifted, maybe mirrored, slightly rescaled (then brought back to
    the canvas size, so the views stack into one batch)."""
    import torch
    import torch.nn.functional as F

    dy, dx = (int(v) for v in rng.integers(-p.jitter, p.jitter + 1, size=2))
    view = torch.roll(image, shifts=(dy, dx), dims=(2, 3))
    if rng.random() < 0.5:
        view = torch.flip(view, dims=(3,))
    factor = 1.0 + p.scale_jitter * (2.0 * float(rng.random()) - 1.0)
    if abs(factor - 1.0) > 0.01:
        h, w = image.shape[-2:]
        scaled = F.interpolate(view, scale_factor=factor, mode="bilinear", align_corners=False)
        view = F.interpolate(scaled, size=(h, w), mode="bilinear", align_corners=False)
    return view


def _ascent_step(
    net: Any,
    base: Any,
    detail: Any,
    index: Any,
    weight: Any,
    mix: Any,
    rng: np.random.Generator,
    sigma: float,
    p: SynthParams,
) -> Any:
    """One jittered forward and backward pass; returns the updated detail."""
    import torch

    detail = detail.detach().requires_grad_(True)
    image = (base + detail).clamp(0.0, 1.0)
    views = [_augment(image, rng, p) for _ in range(p.views)]
    logits = net(normalise(torch.cat(views)))
    objective = (weight * logits.log_softmax(1)[:, index]).sum(1).mean()
    objective = objective + p.logit_weight * (weight * logits[:, index]).sum(1).mean()
    tv = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    tv = tv + (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
    (grad,) = torch.autograd.grad(objective - p.tv_weight * tv, detail)
    grad = _gaussian(grad, sigma)
    if mix is not None:
        grad = torch.einsum("ij,bjhw->bihw", mix, grad)
    grad = grad / (grad.abs().mean() + 1e-8)
    with torch.no_grad():
        updated = detail + p.lr * grad
        # Keep base + detail inside the displayable range, so detail does not pile up unseen.
        return (base + updated).clamp(0.0, 1.0) - base
