"""Image grids with optional row labels: contact sheets, sample grids, exploration figures."""

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
) -> Image.Image:
    """Tile (H, W, 3) uint8 images row by row; a label column, as wide as the longest label
    needs, is added when labels are given."""
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
    sheet = Image.new("RGB", (left + ncols * (w + pad) + pad, nrows * (h + pad) + pad), (255, 255, 255))
    for i, im in enumerate(images):
        r, c = divmod(i, ncols)
        tile = Image.fromarray(im)
        if scale != 1:
            tile = tile.resize((w, h), Image.NEAREST)
        sheet.paste(tile, (left + pad + c * (w + pad), pad + r * (h + pad)))
    if row_labels:
        draw = ImageDraw.Draw(sheet)
        for r, label in enumerate(row_labels[:nrows]):
            draw.text((4, pad + r * (h + pad) + h // 2), label, fill=(0, 0, 0), font=font, anchor="lm")
    return sheet
