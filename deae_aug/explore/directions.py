"""Directions inside one attribute block: unit direction vectors (linear SVM), value centres
(K-means or means) and combined directions that reach values never seen in training.

All functions work on the block's sub-code, a (N, d) array, so they are independent of where
the block sits in the full latent.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from deae_aug.errors import UserError


def unit_direction(block_codes: np.ndarray, positive: np.ndarray, seed: int = 0) -> np.ndarray:
    """Unit normal of a linear SVM separating ``positive`` rows from the rest, pointing to them.

    Paper 2.3: the UDV of a value is the direction in the block along which that value grows.
    """
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        raise UserError("a unit direction needs codes with and without the value")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        svm = LinearSVC(C=1.0, class_weight="balanced", random_state=seed, max_iter=5000)
        svm.fit(block_codes, positive.astype(int))
    normal = svm.coef_[0]
    return normal / (np.linalg.norm(normal) + 1e-12)


def unit_directions(block_codes: np.ndarray, values: np.ndarray, n_values: int, seed: int = 0) -> np.ndarray:
    """(n_values, d) UDVs, one per value present in ``values`` (zero rows for absent values)."""
    out = np.zeros((n_values, block_codes.shape[1]), dtype=np.float32)
    present = np.unique(values)
    if len(present) < 2:
        return out
    for v in present:
        out[v] = unit_direction(block_codes, values == v, seed)
    return out


def scored_unit_directions(
    block_codes: np.ndarray, probabilities: np.ndarray, quantile: float = 0.02, seed: int = 0
) -> np.ndarray:
    """(n_values, d) UDVs fitted, as in the paper, on codes the oracle has scored: for value v,
    the ``quantile`` of codes it reads as most likely v against the ``quantile`` least likely.

    Unlike labelled training codes, interpolated codes fill the space between values, so the
    SVM sees where the decoder itself stops drawing v.
    """
    if not 0 < quantile <= 0.5:
        raise UserError(f"quantile must be in (0, 0.5], got {quantile}")
    m = max(2, round(quantile * len(block_codes)))
    out = np.zeros((probabilities.shape[1], block_codes.shape[1]), dtype=np.float32)
    for v in range(probabilities.shape[1]):
        order = np.argsort(probabilities[:, v])
        rows = np.concatenate([order[-m:], order[:m]])
        out[v] = unit_direction(block_codes[rows], np.arange(2 * m) < m, seed)
    return out


def value_centres(
    block_codes: np.ndarray, values: np.ndarray, n_values: int, method: str = "mean", seed: int = 0
) -> np.ndarray:
    """(n_values, d) centre of each value's codes: their mean, or the largest K-means cluster
    among them (robust to a few badly encoded images). Absent values get NaN rows."""
    if method not in ("mean", "kmeans"):
        raise UserError(f"centre method must be 'mean' or 'kmeans', got {method!r}")
    out = np.full((n_values, block_codes.shape[1]), np.nan, dtype=np.float32)
    for v in np.unique(values):
        rows = block_codes[values == v]
        if method == "mean" or len(rows) < 3:
            out[v] = rows.mean(0)
            continue
        km = KMeans(n_clusters=min(3, len(rows)), n_init=3, random_state=seed).fit(rows)
        out[v] = km.cluster_centers_[np.bincount(km.labels_).argmax()]
    return out


def block_scale(block_codes: np.ndarray, values: np.ndarray) -> float:
    """Mean distance between value means in the block: the natural unit for a step along a UDV."""
    centres = np.stack([block_codes[values == v].mean(0) for v in np.unique(values)])
    if len(centres) < 2:
        return float(np.linalg.norm(block_codes.std(0)) + 1e-6)
    d = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    return float(d[np.triu_indices(len(centres), 1)].mean())


def combine(directions: np.ndarray, weights: dict[int, float]) -> np.ndarray:
    """Unit vector of sum(w * directions[v]), e.g. {blue: 1, red: 1, green: -1}."""
    v = sum(w * directions[k] for k, w in weights.items())
    norm = np.linalg.norm(v)
    if norm < 1e-9:
        raise UserError(f"combined direction {weights} is zero")
    return v / norm
