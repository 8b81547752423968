import math

import numpy as np
import torch

from deae_aug.evaluate.controllability import (
    block_disentanglement,
    block_pair_mse,
    colour_monotonic,
    preservation_rate,
    probe_matrix,
    region_colour,
)

from .test_quality import LookupModel, LookupOracle


def test_colour_monotonic():
    ramp = np.linspace([200, 0, 0], [0, 0, 200], 6)
    assert colour_monotonic(ramp)
    back_and_forth = ramp[[0, 3, 1, 4, 5, 5]]
    assert not colour_monotonic(back_and_forth)
    assert not colour_monotonic(np.repeat(ramp[:1], 6, axis=0))  # never moves


def test_region_colour_is_the_median_inside_the_mask():
    images = np.zeros((2, 4, 4, 3), np.uint8)
    images[0, :2] = (10, 20, 30)
    images[1, :2] = (200, 0, 0)
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    assert np.array_equal(region_colour(images, mask), [[10, 20, 30], [200, 0, 0]])


def test_probe_matrix_and_dci_reward_one_attribute_per_block(rng):
    n = 400
    factors = rng.integers(0, 3, size=(n, 2))
    blocks = [slice(0, 2), slice(2, 4)]
    clean = np.concatenate([np.eye(3)[factors[:, 0]][:, :2], np.eye(3)[factors[:, 1]][:, :2]], 1)
    clean += 0.05 * rng.standard_normal(clean.shape)
    acc = probe_matrix(clean, factors, blocks)
    assert acc[0, 0] > 0.95 and acc[1, 1] > 0.95 and acc[0, 1] < 0.5 and acc[1, 0] < 0.5
    chance = np.full(2, 1 / 3)
    good = block_disentanglement(acc, chance)
    mixed = clean[:, [0, 2, 1, 3]]  # each block now holds half of each attribute
    bad = block_disentanglement(probe_matrix(mixed, factors, blocks), chance)
    assert good["disentanglement"] > 0.8 > bad["disentanglement"] + 0.3


def test_block_pair_mse_is_scale_free_and_ignores_other_blocks():
    torch.manual_seed(0)
    reference = torch.randn(500, 6)
    a = torch.randn(20, 6)
    b = a.clone()
    b[:, 4:] += 5.0  # only the last block changes
    assert block_pair_mse(a, b, [slice(0, 2), slice(2, 4)], reference) == 0.0
    assert block_pair_mse(a, b, [slice(4, 6)], reference) > 10
    random_pairs = block_pair_mse(reference[:250], reference[250:], [slice(0, 4)], reference)
    assert 1.5 < random_pairs < 2.5  # two independent draws: 2 in std units
    collapsed = reference.clone()
    collapsed[:, :2] = 0.5  # a dead block: no spread in training, nothing to compare
    assert math.isnan(block_pair_mse(a, b, [slice(0, 2)], collapsed))
    assert block_pair_mse(a, b, [slice(0, 4)], collapsed) == 0.0
    scaled = block_pair_mse(a * 100, b * 100, [slice(4, 6)], reference * 100)
    assert abs(scaled - block_pair_mse(a, b, [slice(4, 6)], reference)) < 1e-4


def test_preservation_against_labels_and_against_the_reconstruction(small_fonts):
    fc = small_fonts.schema.position("font_color")
    small_fonts = small_fonts.select(np.flatnonzero(small_fonts.factors[:, fc] != 0))  # all combinations
    size = small_fonts.schema.position("size")
    model = LookupModel(small_fonts)
    rate = preservation_rate(model, LookupOracle(model), small_fonts, size, pairs=12, steps=3)
    assert rate["preserved"] == rate["preserved_vs_reconstruction"] == rate["controlled"] == 1.0

    blind = LookupModel(small_fonts, blind=(0,))  # never reconstructs the letter
    rate = preservation_rate(blind, LookupOracle(blind), small_fonts, size, pairs=12, steps=3)
    assert rate["preserved_vs_reconstruction"] == rate["controlled"] == 1.0  # size moves alone...
    assert rate["preserved"] < 0.75  # ...but the labels count the letter it never had

    deaf = LookupModel(small_fonts, blind=(size,))  # ignores the size block: preserves, controls nothing
    rate = preservation_rate(deaf, LookupOracle(deaf), small_fonts, size, pairs=12, steps=3)
    assert rate["preserved_vs_reconstruction"] == 1.0 and rate["moved"] < 0.6 and rate["controlled"] < 0.6


class LetterLeakModel(LookupModel):
    """Off the training values of ``leaky`` (mid-interpolation), it also draws the next letter."""

    def __init__(self, dataset, leaky: int) -> None:
        super().__init__(dataset)
        self.leaky, self.letters = leaky, len(dataset.schema["letter"].values)

    def decode(self, z):
        between = (z[:, self.leaky] - z[:, self.leaky].round()).abs() > 1e-3
        z = z.clone()
        z[between, 0] = (z[between, 0].round() + 1) % self.letters
        return super().decode(z)


def test_kept_by_attribute_names_the_attribute_an_interpolation_drags_along(small_fonts):
    fc = small_fonts.schema.position("font_color")
    small_fonts = small_fonts.select(np.flatnonzero(small_fonts.factors[:, fc] != 0))
    size = small_fonts.schema.position("size")
    model = LetterLeakModel(small_fonts, leaky=size)
    rate = preservation_rate(model, LookupOracle(model), small_fonts, size, pairs=12, steps=3)
    kept = rate["kept_by_attribute"]
    assert size not in kept and kept[0] < 0.5  # the letter changes mid-path...
    assert all(v == 1.0 for j, v in kept.items() if j != 0)  # ...and nothing else does
    assert rate["preserved_vs_reconstruction"] == kept[0]
