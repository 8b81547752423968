"""Experiment splits (design.md section 5), built from any dataset's factors and schema.

Augmentation (paper Table 1): ``large`` (D_L) and ``test`` (D_test) share every attribute
value except the held-out ones (e.g. background colours); ``small`` (D_S) is ``large``
restricted to fewer values.

Debiasing (paper Table 2): in ``biased`` (D_B) each label value appears only with the bias
values its group allows (G1: 1, G2: 3, G3: all), plus an optional share of bias-conflicting
samples; ``unbiased`` (D_UB) has the same size with every label on every bias value; ``test``
(D_T) is unbiased and disjoint from both; with ``test_per_group`` every (label, bias value)
group of D_T holds the same number of images, so each group's accuracy is measured on enough
images for a worst-group goal to mean something.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from deae_aug.data.dataset import AttributeDataset
from deae_aug.data.schema import AttributeSchema
from deae_aug.errors import UserError


def value_mask(
    factors: np.ndarray, schema: AttributeSchema, values: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """(N,) bool: rows whose every listed attribute takes one of the listed values."""
    keep = np.ones(len(factors), dtype=bool)
    for name, allowed in values.items():
        attr = schema[name]
        keep &= np.isin(factors[:, schema.position(name)], [attr.index(v) for v in allowed])
    return keep


def _subsample(rows: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or len(rows) <= limit:
        return rows
    return np.sort(rng.choice(rows, size=limit, replace=False))


def augmentation_splits(
    dataset: AttributeDataset,
    held_out: Mapping[str, Sequence[str]],
    small: Mapping[str, Sequence[str]],
    max_large: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
    max_small: int | None = None,
) -> dict[str, AttributeDataset]:
    """D_L / D_S / D_test. ``held_out`` values go to test only; ``small`` picks D_S inside D_L, at
    most ``max_small`` of those images (real photographs: a few per class, not every one)."""
    if not held_out:
        raise UserError("augmentation split needs held_out values (e.g. bg_color: [...])")
    if dataset.sample_ids is not None:
        raise UserError("augmentation splits need each image once; every_colour is for debias splits")
    rng = np.random.default_rng(seed)
    factors, schema = dataset.factors, dataset.schema
    test = np.flatnonzero(value_mask(factors, schema, held_out))
    in_none = np.ones(len(factors), dtype=bool)
    for name, values in held_out.items():
        in_none &= ~value_mask(factors, schema, {name: values})
    large = np.flatnonzero(in_none)
    small_rows = _subsample(large[value_mask(factors[large], schema, small)], max_small, rng)
    for name, rows in (("large", large), ("small", small_rows), ("test", test)):
        if len(rows) == 0:
            raise UserError(f"augmentation split {name!r} is empty; check held_out and small values")
    if max_large is not None and max_large < len(small_rows):
        raise UserError(f"max_large={max_large} is smaller than the small split ({len(small_rows)} images)")
    rest = np.setdiff1d(large, small_rows)
    limit = None if max_large is None else max_large - len(small_rows)
    large = np.sort(np.concatenate([small_rows, _subsample(rest, limit, rng)]))
    test = _subsample(test, max_test, rng)
    return {
        name: dataset.select(rows) for name, rows in (("large", large), ("small", small_rows), ("test", test))
    }


@dataclass(frozen=True)
class BiasGroup:
    """Label values that each appear with ``n_bias_values`` bias values in the biased split."""

    labels: tuple[str, ...]
    n_bias_values: int


def allowed_bias_values(groups: Sequence[BiasGroup], n_bias: int) -> dict[str, tuple[int, ...]]:
    """Bias value indices each label may take in D_B: a window starting at the label's rank,
    so labels of a one-value group get different bias values and the bias predicts the label."""
    allowed, rank = {}, 0
    for group in groups:
        if not group.labels:
            raise UserError("every bias group needs its label values (split.debias.groups[].labels)")
        if not 1 <= group.n_bias_values <= n_bias:
            raise UserError(f"n_bias_values must be between 1 and {n_bias}, got {group.n_bias_values}")
        for label in group.labels:
            if label in allowed:
                raise UserError(f"label {label!r} is in two groups; each label belongs to one group")
            allowed[label] = tuple((rank + j) % n_bias for j in range(group.n_bias_values))
            rank += 1
    return allowed


def debias_splits(
    dataset: AttributeDataset,
    label: str,
    bias: str,
    groups: Sequence[BiasGroup],
    conflict_fraction: float = 0.0,
    per_label: int = 100,
    test_per_label: int = 100,
    seed: int = 0,
    test_per_group: int | None = None,
    val_per_group: int | None = None,
) -> dict[str, AttributeDataset]:
    """D_B / D_UB / D_T, each with ``per_label`` (test: ``test_per_label``) images per label value.

    ``test_per_group`` replaces ``test_per_label``: D_T then takes that many images from every
    (label, bias value) group, where a random draw per label leaves some groups with one image.
    ``val_per_group`` adds ``val``, drawn as D_T is but disjoint from it: the split that chooses
    a method's settings, so that D_T is read once. Where rows share a sample (``sample_ids``: a
    photograph in every colour), each split takes a sample once and no sample reaches two splits.
    """
    if label == bias:
        raise UserError(f"label and bias must be different attributes, both are {label!r}")
    if not 0.0 <= conflict_fraction < 1.0:
        raise UserError(f"conflict_fraction must be in [0, 1), got {conflict_fraction}")
    schema, factors = dataset.schema, dataset.factors
    label_col, bias_col = schema.position(label), schema.position(bias)
    allowed = allowed_bias_values(groups, len(schema[bias].values))
    rng = np.random.default_rng(seed)
    shared = dataset.sample_ids is not None  # rows may show one sample (a photograph in every colour)
    sample = dataset.sample_ids if shared else np.arange(len(factors))
    used = np.zeros(sample.max() + 1 if len(sample) else 0, dtype=bool)
    biased, unbiased, test, val = [], [], [], []

    def take(pool: np.ndarray, n: int, what: str, knob: str = "per_label") -> np.ndarray:
        pool = pool[~used[sample[pool]]]
        if shared:  # one row per sample, in random order
            pool = rng.permutation(pool)
            pool = pool[np.sort(np.unique(sample[pool], return_index=True)[1])]
        if len(pool) < n:
            raise UserError(f"{what}: needs {n} images but only {len(pool)} exist; lower {knob}")
        rows = pool[:n] if shared else rng.choice(pool, size=n, replace=False)
        used[sample[rows]] = True
        return rows

    for name, bias_values in allowed.items():
        rows = np.flatnonzero(factors[:, label_col] == schema[label].index(name))
        aligned = rows[np.isin(factors[rows, bias_col], bias_values)]
        conflicting = rows[~np.isin(factors[rows, bias_col], bias_values)]
        n_conflict = round(per_label * conflict_fraction) if len(conflicting) else 0  # G3: none can conflict
        biased += [take(aligned, per_label - n_conflict, f"biased split, {label}={name!r}")]
        if n_conflict:
            biased += [take(conflicting, n_conflict, f"bias-conflicting samples, {label}={name!r}")]
        unbiased += [take(rows, per_label, f"unbiased split, {label}={name!r}")]
        if test_per_group is None:
            test += [take(rows, test_per_label, f"test split, {label}={name!r}")]
        for value in range(len(schema[bias].values)):
            group = rows[factors[rows, bias_col] == value]
            where = f"{label}={name!r} and {bias}={schema[bias].values[value]!r}"
            if test_per_group is not None:
                test += [take(group, test_per_group, f"test split, {where}", "test_per_group")]
            if val_per_group is not None:
                val += [take(group, val_per_group, f"validation split, {where}", "val_per_group")]
    parts = {"biased": biased, "unbiased": unbiased, "test": test} | ({"val": val} if val_per_group else {})
    return {name: dataset.select(np.sort(np.concatenate(rows))) for name, rows in parts.items()}
