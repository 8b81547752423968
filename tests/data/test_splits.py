import numpy as np
import pytest

from deae_aug.data.fonts import FontsDataset
from deae_aug.data.splits import BiasGroup, augmentation_splits, debias_splits
from deae_aug.errors import UserError


def tuples(ds) -> set[tuple]:
    return {tuple(r) for r in ds.factors}


def test_augmentation_splits_structure(small_fonts):
    splits = augmentation_splits(
        small_fonts,
        held_out={"bg_color": ["silver"]},
        small={"size": ["large"], "font": ["DejaVu Sans", "Fredoka One"]},
        max_large=100,
        seed=0,
    )
    large, small, test = splits["large"], splits["small"], splits["test"]
    bg = small_fonts.schema.position("bg_color")
    silver = small_fonts.schema["bg_color"].index("silver")
    assert (test.factors[:, bg] == silver).all() and (large.factors[:, bg] != silver).all()
    assert tuples(small) <= tuples(large) and not tuples(large) & tuples(test)
    assert len(large) == 100
    assert set(small.factors[:, 1]) == {small_fonts.schema["size"].index("large")}
    # D_L and D_test share the non-held-out values
    for col in (0, 1, 2, 4):
        assert set(large.factors[:, col]) == set(test.factors[:, col])


def test_augmentation_split_errors_name_the_problem(small_fonts):
    with pytest.raises(UserError, match="'purple' is not a value of attribute 'bg_color'"):
        augmentation_splits(small_fonts, held_out={"bg_color": ["purple"]}, small={})
    with pytest.raises(UserError, match="'small' is empty"):
        augmentation_splits(small_fonts, held_out={"bg_color": ["silver"]}, small={"bg_color": ["silver"]})


@pytest.fixture(scope="module")
def v2_fonts():
    return FontsDataset(
        values={
            "letter": list("ABCDEFGHIJ"),
            "size": ["small", "large"],
            "font_color": ["indianred", "olive", "gray"],
            "bg_color": ["red", "yellow", "green", "silver", "blue", "pink"],
            "font": ["DejaVu Sans", "DejaVu Serif", "Lato"],
        }
    )


GROUPS = [BiasGroup(("A", "B", "C"), 1), BiasGroup(("D", "E", "F"), 3), BiasGroup(("G", "H", "I", "J"), 6)]


def test_debias_splits_structure(v2_fonts):
    splits = debias_splits(v2_fonts, "letter", "bg_color", GROUPS, per_label=12, test_per_label=6, seed=0)
    biased, unbiased, test = splits["biased"], splits["unbiased"], splits["test"]
    assert len(biased) == len(unbiased) == 120 and len(test) == 60
    assert not tuples(biased) & tuples(test) and not tuples(unbiased) & tuples(test)
    letters = v2_fonts.schema["letter"].values
    n_bg = {letters[i]: len(set(biased.factors[biased.factors[:, 0] == i, 3])) for i in range(10)}
    assert all(n_bg[x] == 1 for x in "ABC") and all(n_bg[x] <= 3 for x in "DEF")
    assert len({n_bg[x] for x in "ABC"}) == 1 and len(set(biased.factors[biased.factors[:, 0] < 3, 3])) == 3
    assert len(set(unbiased.factors[:, 3])) == 6 and np.bincount(unbiased.factors[:, 0]).tolist() == [12] * 10


def test_conflict_fraction_adds_bias_conflicting_samples(v2_fonts):
    splits = debias_splits(
        v2_fonts,
        "letter",
        "bg_color",
        [BiasGroup(tuple("ABCDEFGHIJ"), 1)],
        conflict_fraction=0.25,
        per_label=8,
        test_per_label=2,
    )
    biased = splits["biased"]
    for i in range(10):
        assert len(set(biased.factors[biased.factors[:, 0] == i, 3])) > 1


def test_debias_errors(v2_fonts):
    with pytest.raises(UserError, match="label and bias must be different"):
        debias_splits(v2_fonts, "letter", "letter", GROUPS)
    with pytest.raises(UserError, match="only .* exist; lower per_label"):
        debias_splits(v2_fonts, "letter", "bg_color", GROUPS, per_label=10_000)
    twice = [BiasGroup(("A",), 1), BiasGroup(("A", "B"), 2)]
    with pytest.raises(UserError, match="label 'A' is in two groups"):
        debias_splits(v2_fonts, "letter", "bg_color", twice)


def test_conflict_fraction_with_a_group_that_allows_every_bias_value(v2_fonts):
    """G3 letters appear on every background already, so only G1/G2 get conflicting samples."""
    splits = debias_splits(
        v2_fonts, "letter", "bg_color", GROUPS, conflict_fraction=0.25, per_label=8, test_per_label=2
    )
    biased = splits["biased"]
    assert len(biased) == 80
    assert all(len(set(biased.factors[biased.factors[:, 0] == i, 3])) > 1 for i in range(3))  # G1 conflicts


def test_test_per_group_balances_every_label_and_bias_group(v2_fonts):
    """v2_fonts has 18 images per (letter, background); G1 letters leave 18 - 12 on their own."""
    splits = debias_splits(v2_fonts, "letter", "bg_color", GROUPS, per_label=12, seed=0, test_per_group=2)
    test = splits["test"]
    counts = np.zeros((10, 6), dtype=int)
    np.add.at(counts, (test.factors[:, 0], test.factors[:, 3]), 1)
    assert (counts == 2).all()
    assert not tuples(splits["biased"]) & tuples(test) and not tuples(splits["unbiased"]) & tuples(test)
    with pytest.raises(UserError, match="letter='A' and bg_color='red'.*lower test_per_group"):
        debias_splits(v2_fonts, "letter", "bg_color", GROUPS, per_label=12, seed=0, test_per_group=7)
