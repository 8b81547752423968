"""Group metrics for debiasing: unbiased, worst-group and bias-conflicting accuracy."""

from __future__ import annotations

import numpy as np


def group_report(
    predicted: np.ndarray, labels: np.ndarray, bias: np.ndarray, conflicting: np.ndarray
) -> dict:
    """``conflicting`` marks test samples whose (label, bias value) pair is rare or absent in training.

    unbiased: accuracy on the (balanced) test set; worst_group: the lowest accuracy over
    (label, bias value) groups present in the test set; bias_conflicting: accuracy on the
    marked samples; by_group: {(label, bias value): accuracy}.
    """
    hit = np.asarray(predicted) == np.asarray(labels)
    groups = {}
    for y, b in {(int(y), int(b)) for y, b in zip(labels, bias, strict=True)}:
        rows = (labels == y) & (bias == b)
        groups[(y, b)] = float(hit[rows].mean())
    return {
        "unbiased": float(hit.mean()),
        "worst_group": min(groups.values()),
        "bias_conflicting": float(hit[conflicting].mean()) if conflicting.any() else float("nan"),
        "groups": len(groups),
        "by_group": groups,
    }
