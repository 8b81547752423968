"""Group metrics for debiasing: unbiased, worst-group and bias-conflicting accuracy."""

from __future__ import annotations

import math

import numpy as np

from deae_aug.data.schema import AttributeSchema


def group_report(
    predicted: np.ndarray, labels: np.ndarray, bias: np.ndarray, conflicting: np.ndarray
) -> dict:
    """``conflicting`` marks test samples whose (label, bias value) pair is rare or absent in training.

    unbiased: accuracy on the (balanced) test set; worst_group: the lowest accuracy over
    (label, bias value) groups present in the test set, with that group (worst_group_at), its size
    and how many it got right (a group of 2 images scores 0.5 after one miss); bias_conflicting:
    accuracy on the marked samples; by_group: {(label, bias value): accuracy}.
    """
    hit = np.asarray(predicted) == np.asarray(labels)
    groups, sizes = {}, {}
    for y, b in sorted({(int(y), int(b)) for y, b in zip(labels, bias, strict=True)}):
        rows = (labels == y) & (bias == b)
        groups[(y, b)], sizes[(y, b)] = float(hit[rows].mean()), int(rows.sum())
    worst = min(groups, key=lambda g: (groups[g], sizes[g]))
    return {
        "unbiased": float(hit.mean()),
        "worst_group": groups[worst],
        "worst_group_at": worst,
        "worst_group_size": sizes[worst],
        "worst_group_correct": round(groups[worst] * sizes[worst]),
        "bias_conflicting": float(hit[conflicting].mean()) if conflicting.any() else float("nan"),
        "groups": len(groups),
        "by_group": groups,
    }


def accuracy_by_value(
    hit: np.ndarray, factors: np.ndarray, schema: AttributeSchema, names: list[str]
) -> dict[str, dict[str, float]]:
    """{attribute: {value: accuracy}} over the samples that take each value: whether misses pile
    up along the bias (a debiasing failure) or along another attribute (hard for any classifier)."""
    out = {}
    for name in names:
        column = factors[:, schema.position(name)]
        out[name] = {
            v: float(hit[column == i].mean())
            for i, v in enumerate(schema[name].values)
            if (column == i).any()
        }
    return out


def bias_sensitivity(predicted: np.ndarray, labels: np.ndarray) -> dict:
    """How much predictions depend on the bias attribute alone, from (N, V) predictions: each of N
    test images rendered again with every one of V bias values, all else equal.

    changed: share of images whose predicted label changes with the bias value (a classifier
    blind to the bias scores 0); agreement: mean share of an image's V renderings that get its
    most common prediction; correct_on_all: share classified correctly whatever the bias value.
    """
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    mode_count = np.array([np.bincount(row).max() for row in predicted])
    return {
        "changed": float((mode_count < predicted.shape[1]).mean()),
        "agreement": float((mode_count / predicted.shape[1]).mean()),
        "correct_on_all": float((predicted == labels[:, None]).all(1).mean()),
    }


def worst_group_odds(sizes: np.ndarray, accuracy: float, threshold: float = 0.95) -> float:
    """Chance that every group of ``sizes`` images scores at least ``threshold`` when a classifier
    of per-image ``accuracy`` errs independently at random: what a worst-group goal asks of a
    test set whose groups are small (a group of fewer than 20 images allows no miss at 95%)."""
    sizes = np.asarray(sizes, dtype=int)
    odds = 1.0
    for n in sizes[sizes > 0]:
        allowed = math.floor((1 - threshold) * n + 1e-9)  # misses this group may make
        odds *= sum(math.comb(n, k) * (1 - accuracy) ** k * accuracy ** (n - k) for k in range(allowed + 1))
    return odds
