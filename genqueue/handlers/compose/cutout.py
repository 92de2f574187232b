"""Cut a product or garment out of its photo: an alpha mask from OpenCV GrabCut.

Product photos are shot on a plain backdrop, so GrabCut is seeded from the border colour
rather than from a hand-drawn rectangle: the outer border strip is sure background; pixels
near the border's colour are probable background; the rest is probable foreground, and
everything outside the bounding box of that rest (grown a little) is sure background. When
nothing stands out from the border (a busy photo), the seed falls back to GrabCut's classic
rectangle, inset from the edges. The image is cut at most ``WORK_SIDE`` px (GrabCut's cost
grows with pixels, its quality does not), the mask is scaled back, specks are dropped and
the edge is feathered. An image that already has transparency is used as it is.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from genqueue.errors import FieldProblem, InvalidInputError

WORK_SIDE = 400
BORDER = 0.03  # of the short side: the strip taken as sure background
# Distance in Lab (0..~150) above which a pixel "stands out" from the backdrop colour.
STANDS_OUT = 18.0
ITERATIONS = 5
MIN_FOREGROUND = 0.002  # of the image: less than this is "found nothing"

Mask = npt.NDArray[np.uint8]
Rgb = npt.NDArray[np.uint8]


def has_transparency(alpha: Mask | None) -> bool:
    """True when an alpha channel actually hides something (not all opaque)."""
    return alpha is not None and int(alpha.min()) < 250


def border_colour(
    lab: npt.NDArray[np.float32], strip: int
) -> tuple[npt.NDArray[np.float32], float]:
    """Median Lab colour of the border strip and its spread (median distance to it)."""
    edge = np.concatenate(
        [
            lab[:strip].reshape(-1, 3),
            lab[-strip:].reshape(-1, 3),
            lab[:, :strip].reshape(-1, 3),
            lab[:, -strip:].reshape(-1, 3),
        ]
    )
    centre = np.median(edge, axis=0).astype(np.float32)
    spread = float(np.median(np.linalg.norm(edge - centre, axis=1)))
    return centre, spread


def _seed(rgb: Rgb) -> npt.NDArray[np.uint8]:
    """The GrabCut seed mask (GC_BGD / GC_PR_BGD / GC_PR_FGD / GC_FGD per pixel)."""
    import cv2

    h, w = rgb.shape[:2]
    strip = max(2, round(BORDER * min(h, w)))
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    centre, spread = border_colour(lab, strip)
    distance = np.linalg.norm(lab - centre, axis=2)
    seed = np.full((h, w), cv2.GC_BGD, np.uint8)
    stands_out = distance > max(STANDS_OUT, 3.0 * spread)
    inner = np.zeros((h, w), bool)
    inner[strip:-strip, strip:-strip] = True
    ys, xs = np.nonzero(stands_out & inner)
    if len(ys) < MIN_FOREGROUND * h * w or spread > 2 * STANDS_OUT:
        # Not a plain backdrop: GrabCut's rectangle, inset by the border strip.
        seed[strip:-strip, strip:-strip] = cv2.GC_PR_FGD
        return seed
    grow = strip
    top, bottom = max(0, ys.min() - grow), min(h, ys.max() + grow + 1)
    left, right = max(0, xs.min() - grow), min(w, xs.max() + grow + 1)
    box = np.zeros((h, w), bool)
    box[top:bottom, left:right] = True
    seed[box & inner] = cv2.GC_PR_BGD
    seed[box & inner & stands_out] = cv2.GC_PR_FGD
    # Well inside what stands out, strongly: sure foreground (an eroded core).
    core = (distance > 2.5 * max(STANDS_OUT, 3.0 * spread)) & inner
    core = cv2.erode(core.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    seed[core & box] = cv2.GC_FGD
    return seed


def _drop_specks(mask: Mask) -> Mask:
    """Keep connected parts at least 2 % of the largest one (a pair of shoes stays two)."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= 0.02 * areas.max()) + 1
    return np.where(np.isin(labels, keep), 255, 0).astype(np.uint8)


def grabcut_mask(rgb: Rgb, field: str = "foreground") -> Mask:
    """A hard 0/255 mask of the object in ``rgb`` (H, W, 3), at the image's own size."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    small = rgb
    if scale < 1.0:
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        small = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.uint8)
    if min(small.shape[:2]) < 16:
        raise InvalidInputError([FieldProblem(field, "image too small to cut out (< 16 px)")])
    seed = _seed(small)
    background = np.zeros((1, 65), np.float64)
    foreground = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means init: same input, same mask
    cv2.grabCut(
        cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
        seed,
        (0, 0, 1, 1),  # unused with GC_INIT_WITH_MASK
        background,
        foreground,
        ITERATIONS,
        cv2.GC_INIT_WITH_MASK,
    )
    hard = np.where((seed == cv2.GC_FGD) | (seed == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    hard = np.asarray(cv2.morphologyEx(hard, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)), np.uint8)
    hard = _drop_specks(hard)
    if small is not rgb:
        scaled = cv2.resize(hard, (w, h), interpolation=cv2.INTER_LINEAR)
        hard = np.where(scaled >= 128, 255, 0).astype(np.uint8)
    if int(np.count_nonzero(hard)) < MIN_FOREGROUND * h * w:
        message = "found no object to cut out: use a product photo on a plain background"
        raise InvalidInputError([FieldProblem(field, message)])
    return hard


def feather(mask: Mask, radius: float) -> Mask:
    """Soften a mask's edge by a Gaussian of ``radius`` px (0: unchanged)."""
    import cv2

    if radius <= 0:
        return mask
    blurred = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigmaX=radius)
    return np.asarray(np.clip(np.round(blurred), 0, 255), dtype=np.uint8)


def without_spill(rgb: Rgb, hard: Mask, radius: float) -> Rgb:
    """Colours for the soft edge taken from the object, not the backdrop: inside the (eroded)
    mask the photo's own pixels; around it, the object's colours spread outwards (normalised
    convolution). Without this, a feathered edge keeps a thin halo of the white backdrop."""
    import cv2

    inside = cv2.erode(hard, np.ones((3, 3), np.uint8)) > 0
    sigma = 2.0 + 2.0 * radius
    weight = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), sigmaX=sigma)
    spread = cv2.GaussianBlur(rgb.astype(np.float32) * inside[..., None], (0, 0), sigmaX=sigma)
    fill = spread / np.maximum(weight, 1e-6)[..., None]
    out = np.where(inside[..., None], rgb.astype(np.float32), fill)
    return np.asarray(np.clip(np.round(out), 0, 255), dtype=np.uint8)
