import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from deae_aug.data.sampler import GroupSampler, count_strict_partners
from deae_aug.data.schema import Attribute, AttributeSchema
from deae_aug.errors import DataError


def brute_force_counts(factors: np.ndarray) -> np.ndarray:
    same = factors[:, None, :] == factors[None, :, :]  # (N, N, K)
    out = np.zeros(factors.shape, dtype=np.int64)
    for k in range(factors.shape[1]):
        others = np.delete(same, k, axis=2)
        out[:, k] = (same[:, :, k] & ~others.any(axis=2)).sum(axis=1)
    return out


def test_inclusion_exclusion_matches_brute_force(rng):
    factors = rng.integers(0, 3, size=(200, 4))
    np.testing.assert_array_equal(count_strict_partners(factors), brute_force_counts(factors))


def test_strict_groups_share_exactly_one_attribute(small_fonts):
    sampler = GroupSampler(small_fonts.factors, small_fonts.schema, groups_per_batch=8, seed=3)
    k_count = len(small_fonts.schema)
    for step in range(20):
        for group in sampler.batch(step):
            centre = small_fonts.factors[group[0]]
            for k in range(k_count):
                same = small_fonts.factors[group[1 + k]] == centre
                assert same[k] and same.sum() == 1


def test_batches_are_reproducible_and_seeded(small_fonts):
    a = GroupSampler(small_fonts.factors, small_fonts.schema, seed=1)
    b = GroupSampler(small_fonts.factors, small_fonts.schema, seed=1)
    c = GroupSampler(small_fonts.factors, small_fonts.schema, seed=2)
    np.testing.assert_array_equal(a.batch(7), b.batch(7))
    assert not np.array_equal(a.batch(7), c.batch(7))
    resumed = GroupSampler(small_fonts.factors, small_fonts.schema, seed=1, start_step=5, num_batches=2)
    assert list(resumed) == [a.batch(5).ravel().tolist(), a.batch(6).ravel().tolist()]


def test_works_as_batch_sampler_with_two_workers(small_fonts):
    sampler = GroupSampler(small_fonts.factors, small_fonts.schema, groups_per_batch=2, num_batches=3)
    loader = DataLoader(small_fonts, batch_sampler=sampler, num_workers=2)
    batches = list(loader)
    assert len(batches) == 3
    images, factors = batches[1]
    assert images.shape == (2 * 6, 3, 32, 32)
    expected = torch.from_numpy(small_fonts.factors[sampler.batch(1).ravel()])
    assert torch.equal(factors, expected)


def biased_schema() -> tuple[np.ndarray, AttributeSchema]:
    schema = AttributeSchema(
        (
            Attribute("letter", ("A", "B", "C")),
            Attribute("bg", ("red", "blue", "green")),
            Attribute("size", ("s", "l")),
        )
    )
    rows = [(0, 0, s) for s in (0, 1)]  # letter A only on red
    rows += [(letter, bg, s) for letter in (1, 2) for bg in (0, 1, 2) for s in (0, 1)]
    return np.array(rows), schema


def test_strict_mode_names_attribute_and_value_without_partner():
    factors, schema = biased_schema()
    with pytest.raises(DataError, match="no strict partner for attribute 'letter' value 'A'.*relaxed"):
        GroupSampler(factors, schema, mode="strict")


def test_relaxed_mode_samples_biased_data():
    factors, schema = biased_schema()
    sampler = GroupSampler(factors, schema, mode="relaxed", groups_per_batch=16)
    for step in range(5):
        for group in sampler.batch(step):
            for k in range(3):
                assert factors[group[1 + k], k] == factors[group[0], k]
                assert group[1 + k] != group[0]


def test_value_seen_once_is_an_error():
    schema = AttributeSchema((Attribute("a", ("x", "y")), Attribute("b", ("p", "q", "r"))))
    factors = np.array([(0, 0), (0, 1), (1, 0), (1, 1), (0, 2)])
    with pytest.raises(DataError, match="attribute 'b' value 'r' occurs in one image only"):
        GroupSampler(factors, schema, mode="relaxed")
