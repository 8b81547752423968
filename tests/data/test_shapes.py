import numpy as np

from deae_aug.data.fonts import COLORS
from deae_aug.data.shapes import ShapesDataset


def test_shapes_schema_and_rendering():
    ds = ShapesDataset(values={"orientation": 2, "x": 2, "y": 2}, resolution=32)
    assert ds.schema.names == ("shape", "scale", "orientation", "x", "y", "color")
    assert len(ds) == 4 * 4 * 2 * 2 * 2 * 6
    i = 123
    a, b = ds.load_image(i), ds.load_image(i)
    np.testing.assert_array_equal(a, b)
    colour = np.array(COLORS[ds.describe(i)["color"]])
    mask = ds.mask(i)
    assert (a[mask == 1] == colour).all() and (a[mask == 0] == 0).all()


def test_x_position_moves_the_shape():
    ds = ShapesDataset(values={"x": ["p1", "p5"]}, resolution=32)
    left = np.flatnonzero((ds.factors[:, 3] == 0) & (ds.factors[:, 0] == 0))[0]
    right_row = ds.factors[left].copy()
    right_row[3] = 1
    right = np.flatnonzero((ds.factors == right_row).all(axis=1))[0]
    cx = [np.nonzero(ds.mask(i))[1].mean() for i in (left, right)]
    assert cx[1] - cx[0] > 32 * 0.2
