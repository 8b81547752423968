import numpy as np
import pytest
import torch
from torch import nn

from deae_aug.explore.latent import walk_until
from deae_aug.explore.novel import (
    candidate_blocks,
    delta_e,
    distinct_novel,
    mine_novel_colours,
    novel_colours,
    rgb_to_lab,
    walk_blocks,
)


def test_lab_of_reference_colours():
    lab = rgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]]))
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)  # published sRGB red


def test_distinct_novel_skips_known_and_repeated_colours():
    known = np.array([[255, 0, 0]])
    colours = np.array([[250, 5, 5], [0, 0, 255], [0, 2, 253], [0, 160, 0]])
    assert delta_e(colours[:1], known)[0, 0] < 10
    assert distinct_novel(colours, known).tolist() == [1, 3]  # near-red is known; the 2nd blue repeats


def test_candidate_blocks_leave_the_training_values():
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [np.nan, np.nan]])
    blocks = candidate_blocks(centres, 50, seed=0)
    assert blocks.shape == (50, 2) and np.isfinite(blocks).all()
    assert np.linalg.norm(blocks[:, None] - centres[None, :3], axis=-1).min() > 0.1
    two = candidate_blocks(centres[:2], 10, seed=0)  # two values: extrapolations only
    assert np.isfinite(two).all() and np.abs(two[:, 1]).max() == 0
    with pytest.raises(ValueError, match="at least 2"):
        candidate_blocks(centres[:1], 5)


class ColourBlockModel(nn.Module):
    """Decodes a flat image whose colour is the code's first block (RGB in [-1, 1])."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))

    def decode(self, z):
        return z[:, :3, None, None].clamp(-1, 1).expand(-1, 3, 8, 8)


def test_mining_finds_the_colour_a_combination_makes():
    primaries = np.array([[1.0, -1, -1], [-1, 1, -1], [-1, -1, 1]])  # red, green, blue codes
    known = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    codes = torch.zeros(4, 5)
    region = np.ones((4, 8, 8))
    found = mine_novel_colours(ColourBlockModel(), codes, slice(0, 3), primaries, region, known, n=40)
    assert found.images.shape == (40, 8, 8, 3) and found.valid.all()
    novel = found.colours[found.novel]
    assert len(novel) >= 3
    assert delta_e(novel, known).min() >= 10
    # red + green - blue decodes to yellow, which no training value had
    assert delta_e(np.array([[255, 255, 0]]), found.colours).min() < 1
    assert found.novel_valid.tolist() == found.novel.tolist()


def test_a_combined_direction_walks_to_colours_no_single_one_reaches():
    """Paper Fig. 7 (b): from green, v_red and v_blue each reach one new hue; their sum minus
    v_green passes through more."""
    primaries = np.eye(3) * 2 - 1  # red, green, blue codes
    known = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    green = torch.tensor([[-1.0, 1.0, -1.0, 0.0]])
    udv = {"red": np.array([1.0, 0, 0]), "green": np.array([0, 1.0, 0]), "blue": np.array([0, 0, 1.0])}
    combined = udv["red"] + udv["blue"] - udv["green"]
    walks = walk_blocks(
        primaries[[1, 1, 1]],
        np.stack([udv["red"], udv["blue"], combined / np.linalg.norm(combined)]),
        3.5,
        14,
    )
    assert walks.shape == (42, 3)
    assert np.allclose(walks[13], primaries[1] + 3.5 * udv["red"]) and np.allclose(
        walks[0], primaries[1] + 0.25 * udv["red"]
    )
    found = [
        novel_colours(
            ColourBlockModel(),
            green,
            slice(0, 3),
            walks[i * 14 : (i + 1) * 14],
            np.zeros(14, int),
            np.ones((1, 8, 8)),
            known,
        )
        for i in range(3)
    ]
    single = [len(f.novel) for f in found[:2]]
    assert len(found[2].novel) > max(single) >= 1
    # green -> grey -> magenta: it ends on a hue neither single walk (yellow, cyan) reaches
    assert delta_e(found[2].colours[found[2].novel], known).min() >= 10
    assert delta_e(np.array([[255, 0, 255]]), found[2].colours).min() < 1
    assert delta_e(np.array([[255, 0, 255]]), np.concatenate([f.colours for f in found[:2]])).min() > 50


def test_walk_until_stops_where_the_reader_first_sees_the_target():
    model = ColourBlockModel()
    code = torch.tensor([-1.0, -1.0, -1.0, 0.3])  # black image; the last dim is another block

    def redness(images):  # 1 once the red channel passes mid-grey
        return (images[:, 0].mean((1, 2)) > 0).long()

    path, steps = walk_until(model, redness, code, slice(0, 3), torch.tensor([1.0, 0, 0]), 1, step=0.3)
    assert steps == 4 and len(path) == 5  # -1 + 4 * 0.3 = 0.2 > 0: first red at step 4
    assert torch.allclose(path[:, 3], torch.tensor(0.3))  # the other block never moves
    _, never = walk_until(model, redness, code, slice(0, 3), torch.tensor([0, 1.0, 0]), 1, step=0.3)
    assert never is None
