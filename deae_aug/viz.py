"""Image grids with optional row and column labels: contact sheets, sample grids, exploration figures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def image_grid(
    images: Sequence[np.ndarray] | np.ndarray,
    ncols: int,
    row_labels: Sequence[str] | None = None,
    pad: int = 2,
    scale: int = 1,
    label_width: int = 110,
    column_labels: Sequence[str] | None = None,
) -> Image.Image:
    """Tile (H, W, 3) uint8 images row by row; a label column, as wide as the longest label
    needs, is added when row labels are given, and a header line when column labels are."""
    images = [np.asarray(im) for im in images]
    if not images:
        raise ValueError("image_grid needs at least one image")
    h, w = images[0].shape[:2]
    h, w = h * scale, w * scale
    nrows = (len(images) + ncols - 1) // ncols
    font = ImageFont.load_default(size=max(10, min(14, h // 3)))
    left = 0
    if row_labels:  # at least label_width, wider when a label would run into the first image
        left = max(label_width, 8 + int(max(font.getlength(label) for label in row_labels[:nrows])))
    top = int(font.size * 1.6) if column_labels else 0
    sheet = Image.new("RGB", (left + ncols * (w + pad) + pad, top + nrows * (h + pad) + pad), (255, 255, 255))
    for i, im in enumerate(images):
        r, c = divmod(i, ncols)
        tile = Image.fromarray(im)
        if scale != 1:
            tile = tile.resize((w, h), Image.NEAREST)
        sheet.paste(tile, (left + pad + c * (w + pad), top + pad + r * (h + pad)))
    draw = ImageDraw.Draw(sheet)
    for r, label in enumerate((row_labels or [])[:nrows]):
        draw.text((4, top + pad + r * (h + pad) + h // 2), label, fill=(0, 0, 0), font=font, anchor="lm")
    for c, label in enumerate((column_labels or [])[:ncols]):
        draw.text(
            (left + pad + c * (w + pad) + w // 2, top // 2), label, fill=(0, 0, 0), font=font, anchor="mm"
        )
    return sheet
