"""The Fonts dataset (iLab, used by GSL and DEAE), rendered here at any resolution.

Five attributes: letter, size, font colour, background colour, font. An image is a function of
its attribute tuple: the same tuple gives the same pixels. Glyph masks are rendered once per
(letter, size, font) at 4x supersampling, box-filtered down (anti-aliasing), and cached; an
image is then a blend of two colours through the mask, which is cheap.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np
from PIL import Image

from deae_aug.data.dataset import AttributeDataset
from deae_aug.data.font_catalog import LETTERS, FontFace, file_face, font_catalog, glyph_mask, is_font_file
from deae_aug.data.schema import Attribute, AttributeSchema, resolve_values
from deae_aug.errors import UserError

# The iLab palette (design.md section 1).
ILAB_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 20, 60),
    "orange": (255, 165, 0),
    "yellow": (255, 255, 0),
    "green": (0, 128, 0),
    "cyan": (0, 255, 255),
    "blue": (0, 0, 255),
    "purple": (128, 0, 128),
    "pink": (255, 192, 203),
    "chocolate": (210, 105, 30),
    "silver": (192, 192, 192),
}
# Fonts-V2: six backgrounds from the iLab palette, six font colours from another palette.
V2_BACKGROUND_COLORS = ("red", "yellow", "green", "silver", "blue", "pink")
V2_FONT_COLORS: dict[str, tuple[int, int, int]] = {
    "indianred": (255, 106, 106),
    "olive": (205, 205, 0),
    "forestgreen": (34, 139, 34),
    "gray": (128, 128, 128),
    "deepskyblue": (0, 191, 255),
    "deeppink": (255, 20, 147),
}
# Dark backgrounds for light objects (Colored Fashion-MNIST's garments, deae_aug.data.fashion).
DARK_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "navy": (0, 0, 110),
    "maroon": (110, 0, 0),
    "darkgreen": (0, 70, 0),
    "teal": (0, 100, 100),
    "indigo": (60, 0, 110),
    "saddlebrown": (110, 55, 15),
    "darkslategray": (45, 70, 70),
}
COLORS = {**ILAB_COLORS, **V2_FONT_COLORS, **DARK_COLORS}
# Glyph em size as a fraction of the image side.
SIZES: dict[str, float] = {"small": 0.45, "medium": 0.65, "large": 0.85}
ATTRIBUTES = ("letter", "size", "font_color", "bg_color", "font")
SUPERSAMPLE = 4
MIN_CONTRAST = 60.0  # RGB distance (0-255) a new colour keeps from an image's other colours
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def parse_color(value: str) -> tuple[int, int, int]:
    """RGB of a palette name or of a '#rrggbb' string."""
    if value in COLORS:
        return COLORS[value]
    if _HEX.match(value):
        return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    raise UserError(f"unknown colour {value!r}; use a palette name {sorted(COLORS)} or '#rrggbb'")


def format_color(rgb) -> str:
    """'#rrggbb' of an RGB triple (0-255): the form ``parse_color`` reads back."""
    return "#" + "".join(f"{int(round(float(v))):02x}" for v in rgb)


def font_face(font: str) -> FontFace:
    """A catalog family by name, or your own TrueType/OpenType file by its path."""
    if is_font_file(font):
        return file_face(font)
    catalog = font_catalog()
    if font not in catalog:
        raise UserError(
            f"font {font!r} is not available; available fonts: {list(catalog)} (or a .ttf/.otf file path)"
        )
    return catalog[font]


class FontsRenderer:
    """Renders (letter, size, font colour, background colour, font) tuples at one resolution."""

    def __init__(self, resolution: int = 32) -> None:
        if resolution < 8:
            raise UserError(f"resolution must be at least 8 px, got {resolution}")
        self.resolution = resolution
        self._masks: dict[tuple[str, str, str], np.ndarray] = {}

    def glyph_mask(self, letter: str, size: str | float, font: str) -> np.ndarray:
        """(H, W) float32 coverage in [0, 1] of the centred, anti-aliased glyph; ``size`` is a
        named size or an em size as a fraction of the image side (sizes in between)."""
        if isinstance(size, str) and size not in SIZES:
            raise UserError(f"unknown size {size!r}; sizes are {list(SIZES)}")
        em = round((SIZES[size] if isinstance(size, str) else size) * self.resolution * SUPERSAMPLE)
        key = (letter, em, font)
        mask = self._masks.get(key)
        if mask is None:
            mask = self._render_mask(letter, em, font)
            self._masks[key] = mask
        return mask

    def _render_mask(self, letter: str, em: int, font: str) -> np.ndarray:
        if letter not in LETTERS:
            raise UserError(f"unknown letter {letter!r}; letters are A-Z and a-z")
        face = font_face(font)
        side = self.resolution * SUPERSAMPLE
        big = glyph_mask(face.font(em), letter, side)
        ys, xs = np.nonzero(big)
        extent = max(np.ptp(ys), np.ptp(xs)) + 1 if len(ys) else 0
        if extent > 0.94 * side:  # a very wide glyph: shrink it to fit, keep it centred
            big = glyph_mask(face.font(int(em * 0.94 * side / extent)), letter, side)
        small = Image.fromarray(np.round(big * 255).astype(np.uint8)).resize(
            (self.resolution, self.resolution), Image.BOX
        )
        return np.asarray(small, dtype=np.float32) / 255.0

    def render(self, letter: str, size: str, font_color: str, bg_color: str, font: str) -> np.ndarray:
        """(H, W, 3) uint8 image."""
        mask = self.glyph_mask(letter, size, font)[..., None]  # (H, W, 1)
        fg = np.asarray(parse_color(font_color), np.float32)
        bg = np.asarray(parse_color(bg_color), np.float32)
        return np.round(bg + (fg - bg) * mask).astype(np.uint8)


class FontsDataset(AttributeDataset):
    """Rendered Fonts: every (letter, size, font colour, background colour, font) combination
    of the chosen values, with font colour != background colour.

    Parameters
    ----------
    values : dict of attribute -> list of value names or int, default iLab values with 12 fonts
        An int N takes the first N available values (fonts in catalog order).
    resolution : int, default=32
    block_size : int, default=20
        Latent block size per attribute; ``block_sizes`` overrides single attributes.
    """

    contact_attribute = "font"
    scale_attribute = "size"
    paint_layers = MappingProxyType({"font_color": "object", "bg_color": "background"})

    def __init__(
        self,
        values: Mapping[str, Sequence[str] | int] | None = None,
        resolution: int = 32,
        block_size: int = 20,
        block_sizes: Mapping[str, int] | None = None,
    ) -> None:
        fonts = tuple(font_catalog())
        requested = (values or {}).get("font")
        if isinstance(requested, list | tuple):  # your own font files, checked as the catalog's faces
            fonts += tuple(str(v) for v in requested if is_font_file(str(v)) and font_face(str(v)))
        resolved = resolve_values(
            available={
                "letter": LETTERS,
                "size": tuple(SIZES),
                "font_color": None,
                "bg_color": None,
                "font": fonts,
            },
            defaults={
                "letter": LETTERS,
                "size": tuple(SIZES),
                "font_color": tuple(ILAB_COLORS),
                "bg_color": tuple(ILAB_COLORS),
                "font": fonts[:12],
            },
            requested=values,
        )
        for name in ("font_color", "bg_color"):
            for v in resolved[name]:
                parse_color(v)
        self.schema = AttributeSchema(
            tuple(Attribute(n, resolved[n], block_size) for n in ATTRIBUTES)
        ).with_block_sizes(block_sizes or {})
        self.renderer = FontsRenderer(resolution)
        self.factors = self._valid_combinations()

    def _valid_combinations(self) -> np.ndarray:
        counts = [len(a.values) for a in self.schema.attributes]
        grid = np.array(list(itertools.product(*map(range, counts))), dtype=np.int64)  # (N, 5)
        fg = np.array([parse_color(v) for v in self.schema["font_color"].values])
        bg = np.array([parse_color(v) for v in self.schema["bg_color"].values])
        same = (fg[grid[:, 2]] == bg[grid[:, 3]]).all(axis=1)
        return grid[~same]

    @property
    def resolution(self) -> int:
        return self.renderer.resolution

    def load_image(self, index: int) -> np.ndarray:
        return self.renderer.render(**self.describe(index))

    def render_edit(self, source: int, edits: Mapping[str, tuple[str, float]]) -> np.ndarray:
        """(H, W, 3) uint8: sample ``source`` with each attribute of ``edits`` moved a fraction t
        towards a value (attribute -> (value, t); a name, or '#rrggbb' for a colour), drawn
        exactly, as a perfect interpolating augmenter would. Colours blend in RGB; size takes the
        named size nearest the blended em size; a font (or letter) switches at t >= 0.5. A
        diagnostic: users have no renderer."""
        values = self.describe(source)
        for attribute, (target, t) in edits.items():
            if attribute in ("font_color", "bg_color"):
                a, b = (np.asarray(parse_color(v), np.float64) for v in (values[attribute], target))
                values[attribute] = format_color((1 - t) * a + t * b)
            elif attribute == "size":
                em = (1 - t) * SIZES[values["size"]] + t * SIZES[target]
                values["size"] = min(SIZES, key=lambda name: abs(SIZES[name] - em))
            elif t >= 0.5:
                values[attribute] = target
        return self.renderer.render(**values)

    def mask(self, index: int) -> np.ndarray:
        """(H, W) float glyph coverage of sample ``index`` (for scoring Grad-CAM)."""
        d = self.describe(index)
        return self.renderer.glyph_mask(d["letter"], d["size"], d["font"])

    def mask_at_scale(self, index: int, scale: float) -> np.ndarray:
        """The glyph rendered at ``scale`` times its em size, kept between the smallest and largest
        sizes of the schema (the sizes a size edit passes through)."""
        d = self.describe(index)
        ems = [SIZES[v] for v in self.schema["size"].values]
        em = min(max(SIZES[d["size"]] * scale, min(ems)), max(ems))
        return self.renderer.glyph_mask(d["letter"], em, d["font"])
