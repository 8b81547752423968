import numpy as np
import pytest

from deae_aug.errors import UserError
from deae_aug.explore.directions import (
    block_scale,
    combine,
    scored_unit_directions,
    unit_direction,
    unit_directions,
    value_centres,
)


def clusters(rng, centres, n=40, noise=0.1):
    codes = np.concatenate([c + noise * rng.standard_normal((n, len(c))) for c in centres])
    values = np.repeat(np.arange(len(centres)), n)
    return codes.astype(np.float32), values


def test_unit_direction_points_towards_the_value(rng):
    codes, values = clusters(rng, [np.array([0.0, 0, 0]), np.array([0.0, 2, 0])])
    u = unit_direction(codes, values == 1)
    assert np.isclose(np.linalg.norm(u), 1.0)
    assert u[1] > 0.95  # the separating normal is the y axis, towards value 1
    assert (codes[values == 1] @ u).mean() > (codes[values == 0] @ u).mean()


def test_unit_directions_per_value_and_absent_values(rng):
    codes, values = clusters(rng, [np.array([1.0, 0]), np.array([0.0, 1]), np.array([-1.0, -1])])
    udv = unit_directions(codes, values, n_values=4)
    assert udv.shape == (4, 2)
    assert np.allclose(udv[3], 0)  # value 3 absent
    assert udv[0] @ np.array([1, 0]) > 0.5 and udv[1] @ np.array([0, 1]) > 0.5


def test_centres_mean_and_kmeans_ignores_a_few_outliers(rng):
    codes, values = clusters(rng, [np.array([0.0, 0]), np.array([3.0, 3])])
    mean = value_centres(codes, values, 3)
    assert np.allclose(mean[0], codes[values == 0].mean(0)) and np.isnan(mean[2]).all()
    outliers = np.full((4, 2), 50.0, dtype=np.float32)
    codes2 = np.concatenate([codes, outliers])
    values2 = np.concatenate([values, [0, 0, 0, 0]])
    km = value_centres(codes2, values2, 2, method="kmeans")
    assert np.linalg.norm(km[0]) < 0.5 < np.linalg.norm(value_centres(codes2, values2, 2)[0])


def test_combine_and_scale(rng):
    d = np.eye(3, dtype=np.float32)
    v = combine(d, {0: 1.0, 1: 1.0, 2: -1.0})
    assert np.allclose(v, np.array([1, 1, -1]) / np.sqrt(3))
    with pytest.raises(UserError, match="zero"):
        combine(d, {0: 1.0, 1: 0.0, 2: 0.0} | {0: 0.0})
    codes, values = clusters(rng, [np.array([0.0, 0]), np.array([3.0, 4])], noise=0.0)
    assert np.isclose(block_scale(codes, values), 5.0)


def test_scored_directions_follow_the_scores_not_the_bulk(rng):
    codes = rng.uniform(-1, 1, size=(2000, 2)).astype(np.float32)
    w = np.array([0.6, 0.8])
    p1 = 1 / (1 + np.exp(-5 * codes @ w))
    probabilities = np.stack([1 - p1, p1], 1)
    udv = scored_unit_directions(codes, probabilities, quantile=0.02)
    assert udv.shape == (2, 2) and np.allclose(np.linalg.norm(udv, axis=1), 1, atol=1e-5)
    assert udv[1] @ w > 0.95 and udv[0] @ w < -0.95
    with pytest.raises(UserError, match="quantile"):
        scored_unit_directions(codes, probabilities, quantile=0.0)
