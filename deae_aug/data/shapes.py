"""A procedural dSprites-like dataset: a second domain with six attributes, rendered on the fly.

Shapes are drawn at 4x supersampling and box-filtered down, so edges are anti-aliased and the
same tuple always gives the same pixels.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np
from PIL import Image, ImageDraw

from deae_aug.data.dataset import AttributeDataset
from deae_aug.data.fonts import SUPERSAMPLE, parse_color
from deae_aug.data.schema import Attribute, AttributeSchema, resolve_values
from deae_aug.errors import UserError

SHAPES = ("square", "ellipse", "triangle", "heart")
SCALES = {"s1": 0.35, "s2": 0.45, "s3": 0.55, "s4": 0.65}  # shape extent / image side
ORIENTATIONS = tuple(f"{d}deg" for d in range(0, 90, 15))  # below every shape's symmetry angle
POSITIONS = {"p1": 0.35, "p2": 0.425, "p3": 0.5, "p4": 0.575, "p5": 0.65}  # centre / image side
SHAPE_COLORS = ("red", "orange", "yellow", "green", "cyan", "pink")
ATTRIBUTES = ("shape", "scale", "orientation", "x", "y", "color")


def _outline(shape: str, n: int = 64) -> np.ndarray:
    """(n, 2) outline in the unit box [-0.5, 0.5]^2."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    if shape == "square":
        return np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) * 0.85
    if shape == "ellipse":
        return np.stack([0.5 * np.cos(t), 0.3 * np.sin(t)], axis=1)
    if shape == "triangle":
        a = np.deg2rad([90, 210, 330])
        return np.stack([0.5 * np.cos(a), -0.5 * np.sin(a)], axis=1)
    # heart: classic parametric curve, y pointing down in image coordinates
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    return np.stack([x / 34, -y / 34], axis=1)


class ShapesDataset(AttributeDataset):
    """Shape, scale, orientation, x, y and colour on a black background.

    Parameters
    ----------
    values : dict of attribute -> list of value names or int, default all values
    resolution : int, default=32
    block_size : int, default=10
    """

    contact_attribute = "shape"
    paint_layers = MappingProxyType({"color": "object"})  # on black

    def __init__(
        self,
        values: Mapping[str, Sequence[str] | int] | None = None,
        resolution: int = 32,
        block_size: int = 10,
        block_sizes: Mapping[str, int] | None = None,
    ) -> None:
        if resolution < 8:
            raise UserError(f"resolution must be at least 8 px, got {resolution}")
        all_values = {
            "shape": SHAPES,
            "scale": tuple(SCALES),
            "orientation": ORIENTATIONS,
            "x": tuple(POSITIONS),
            "y": tuple(POSITIONS),
            "color": SHAPE_COLORS,
        }
        resolved = resolve_values({**all_values, "color": None}, all_values, values)
        for v in resolved["color"]:
            parse_color(v)
        self.schema = AttributeSchema(
            tuple(Attribute(n, resolved[n], block_size) for n in ATTRIBUTES)
        ).with_block_sizes(block_sizes or {})
        self._resolution = resolution
        counts = [len(a.values) for a in self.schema.attributes]
        self.factors = np.array(list(itertools.product(*map(range, counts))), dtype=np.int64)

    @property
    def resolution(self) -> int:
        return self._resolution

    def mask(self, index: int) -> np.ndarray:
        """(H, W) float coverage of the shape."""
        d = self.describe(index)
        side = self._resolution * SUPERSAMPLE
        angle = math.radians(float(d["orientation"].removesuffix("deg")))
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        points = _outline(d["shape"]) @ rot.T * SCALES[d["scale"]] * side
        points += np.array([POSITIONS[d["x"]], POSITIONS[d["y"]]]) * side
        canvas = Image.new("L", (side, side))
        ImageDraw.Draw(canvas).polygon([tuple(p) for p in points], fill=255)
        small = canvas.resize((self._resolution, self._resolution), Image.BOX)
        return np.asarray(small, dtype=np.float32) / 255.0

    def load_image(self, index: int) -> np.ndarray:
        colour = np.asarray(parse_color(self.describe(index)["color"]), np.float32)
        return np.round(self.mask(index)[..., None] * colour).astype(np.uint8)
