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


def test_column_labels_add_one_header_line_above_the_tiles():
    tiles = [np.full((32, 32, 3), 7, np.uint8)] * 4
    plain = image_grid(tiles, ncols=2)
    headed = np.asarray(image_grid(tiles, ncols=2, column_labels=["source", "t=1"]))
    top = headed.shape[0] - plain.height
    assert top > 0 and headed.shape[1] == plain.width
    assert (headed[:top] < 128).any()  # the header has text
    assert (headed[top + 2 : top + 34, 2:34] == 7).all()  # the first tile moved down by the header
