import numpy as np

from deae_aug.viz import image_grid


def test_label_column_widens_for_long_labels_only():
    tiles = [np.zeros((32, 32, 3), np.uint8)] * 4
    plain = image_grid(tiles, ncols=2)
    short = image_grid(tiles, ncols=2, row_labels=["a", "b"])
    long = image_grid(tiles, ncols=2, row_labels=["a", "font_color t=0.30 and a long tail"])
    assert short.width == plain.width + 110  # the default label_width
    assert long.width > short.width
    assert plain.height == short.height == long.height == 2 * (32 + 2) + 2
