"""Placing the cut-out on the canvas: fit and scale, rotate, position, drop shadow, caption.

Pure Pillow. Scaling and rotation run on premultiplied alpha ("RGBa"), so the backdrop's
colour hidden under transparent pixels cannot bleed into the edges as a halo.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from genqueue.handlers.compose.models import Anchor, Box, Caption, Layout, Point, Shadow

FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def hex_rgb(colour: str) -> tuple[int, int, int]:
    value = int(colour.lstrip("#"), 16)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def crop_to_content(rgba: Image.Image) -> tuple[Image.Image, tuple[int, int]]:
    """The smallest crop holding every pixel with any alpha (the feathered halo included), and
    the size of the visible part (alpha at least half), which the layout's scale refers to."""
    alpha = rgba.getchannel("A")
    box = alpha.point(lambda a: 255 if a > 0 else 0).getbbox()
    visible = alpha.point(lambda a: 255 if a >= 128 else 0).getbbox() or box
    if box is None or visible is None:
        return rgba, rgba.size
    return rgba.crop(box), (visible[2] - visible[0], visible[3] - visible[1])


def transform(
    rgba: Image.Image, visible: tuple[int, int], canvas: tuple[int, int], layout: Layout
) -> Image.Image:
    """Scale the foreground so its visible part fits ``layout.scale`` of the canvas, then
    rotate it (CCW; the sprite grows to hold the corners)."""
    width, height = canvas
    fit = layout.scale * min(width / visible[0], height / visible[1])
    size = (max(1, round(rgba.width * fit)), max(1, round(rgba.height * fit)))
    sprite = rgba.convert("RGBa").resize(size, Image.Resampling.LANCZOS)
    if layout.rotation % 360:
        sprite = sprite.rotate(layout.rotation, Image.Resampling.BICUBIC, expand=True)
    return sprite.convert("RGBA")


def anchor_point(
    anchor: Anchor, canvas: tuple[int, int], item: tuple[int, int], margin: float
) -> tuple[int, int]:
    """Top-left corner that puts an item of size ``item`` at ``anchor`` of the canvas, kept
    ``margin`` (a fraction of the canvas) from the edges it is anchored to."""
    (width, height), (w, h) = canvas, item
    mx, my = round(margin * width), round(margin * height)
    x = (width - w) // 2
    y = (height - h) // 2
    if "left" in anchor:
        x = mx
    elif "right" in anchor:
        x = width - w - mx
    if anchor.startswith("top"):
        y = my
    elif anchor.startswith("bottom"):
        y = height - h - my
    return x, y


def position(sprite: Image.Image, canvas: tuple[int, int], layout: Layout) -> tuple[int, int]:
    """Top-left corner of the sprite on the canvas (it may hang over the edges)."""
    where = layout.position
    if isinstance(where, Point):
        return round(where.x * canvas[0] - sprite.width / 2), round(
            where.y * canvas[1] - sprite.height / 2
        )
    return anchor_point(where, canvas, sprite.size, layout.margin)


def drop_shadow(
    base: Image.Image, sprite: Image.Image, at: tuple[int, int], shadow: Shadow
) -> Image.Image:
    """``base`` (RGBA) with the sprite's silhouette blurred, offset and darkened under it."""
    pad = round(3 * shadow.blur) + 2
    alpha = sprite.getchannel("A").point(lambda a: round(a * shadow.opacity))
    silhouette = Image.new("L", (sprite.width + 2 * pad, sprite.height + 2 * pad), 0)
    silhouette.paste(alpha, (pad, pad))
    if shadow.blur > 0:
        silhouette = silhouette.filter(ImageFilter.GaussianBlur(shadow.blur))
    layer = Image.new("RGBA", base.size, (*hex_rgb(shadow.colour), 0))
    mask = Image.new("L", base.size, 0)
    mask.paste(silhouette, (at[0] + shadow.offset_x - pad, at[1] + shadow.offset_y - pad))
    layer.putalpha(mask)
    return Image.alpha_composite(base, layer)


def place(base: Image.Image, sprite: Image.Image, at: tuple[int, int]) -> Image.Image:
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    layer.paste(sprite, at)
    return Image.alpha_composite(base, layer)


def visible_box(sprite: Image.Image, at: tuple[int, int], canvas: tuple[int, int]) -> Box:
    """The part of the canvas the placed foreground covers (alpha at least half)."""
    mask = Image.new("L", canvas, 0)
    mask.paste(sprite.getchannel("A"), at)
    box = mask.point(lambda a: 255 if a >= 128 else 0).getbbox() or (0, 0, 0, 0)
    return Box(x=box[0], y=box[1], width=box[2] - box[0], height=box[3] - box[1])


def load_font(size: int) -> Font:
    for path in FONT_PATHS:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def draw_caption(base: Image.Image, caption: Caption) -> Image.Image:
    """``base`` with the caption written at its anchor; too long a line is shrunk to fit."""
    font, size = load_font(caption.size), caption.size
    draw = ImageDraw.Draw(base)
    fill = hex_rgb(caption.colour)
    stroke = max(1, size // 16) if caption.outline else 0
    dark = sum(fill) / 3 > 127
    stroke_fill = (0, 0, 0) if dark else (255, 255, 255)
    limit = base.width * (1 - 2 * caption.margin)
    left, top, right, bottom = draw.textbbox((0, 0), caption.text, font, stroke_width=stroke)
    while right - left > limit and size > 8:
        size = max(8, int(size * limit / (right - left)))
        font = load_font(size)
        stroke = max(1, size // 16) if caption.outline else 0
        left, top, right, bottom = draw.textbbox((0, 0), caption.text, font, stroke_width=stroke)
    item = (round(right - left), round(bottom - top))
    x, y = anchor_point(caption.position, base.size, item, caption.margin)
    draw.text(
        (x - left, y - top),
        caption.text,
        fill=(*fill, 255),
        font=font,
        stroke_width=stroke,
        stroke_fill=(*stroke_fill, 255),
    )
    return base
