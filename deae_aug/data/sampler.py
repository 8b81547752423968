"""GSL group sampler: a centre image and, per attribute, a partner that shares that attribute.

In strict mode partner k shares exactly attribute k with the centre and differs in all others
(the GSL multigraph). Relaxed mode, for sparse or biased data, falls back to a partner that
shares attribute k and as few others as the data allow. Batches are a pure function of
(seed, step), so a resumed run draws the same groups, and DataLoader workers need no state.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Literal

import numpy as np
import pandas as pd
from torch.utils.data import Sampler

from deae_aug.data.schema import AttributeSchema
from deae_aug.errors import DataError

SamplerMode = Literal["strict", "relaxed"]
_REJECTION_TRIES = 32


def count_strict_partners(factors: np.ndarray) -> np.ndarray:
    """(N, K) counts: rows sharing attribute k with row i and differing in every other attribute.

    Inclusion-exclusion over the other attributes: sum over subsets S of (-1)^|S| times the
    number of rows matching row i on {k} and S. Linear in N, 2^(K-1) group-bys per attribute.
    """
    frame = pd.DataFrame(factors)
    n, k_count = factors.shape
    counts = np.zeros((n, k_count), dtype=np.int64)
    for k in range(k_count):
        others = [j for j in range(k_count) if j != k]
        for size in range(len(others) + 1):
            for subset in itertools.combinations(others, size):
                cols = [k, *subset]
                matches = frame.groupby(cols, sort=False)[cols[0]].transform("size").to_numpy()
                counts[:, k] += (-1) ** size * matches
    return counts


class GroupSampler(Sampler[list[int]]):
    """Batches of GSL groups for ``DataLoader(batch_sampler=...)``.

    Each batch is ``groups_per_batch`` groups flattened to a list of indices; group g occupies
    positions ``g * (K + 1)`` (centre) to ``g * (K + 1) + K`` (partner of attribute K-1).

    Parameters
    ----------
    factors : array of shape (n_samples, n_attributes)
    schema : AttributeSchema
        Names attributes and values in error messages.
    groups_per_batch : int, default=4
    mode : {"strict", "relaxed"}, default="strict"
    seed : int, default=0
    start_step : int, default=0
        First step drawn when iterating (for resumed runs).
    num_batches : int or None, default=None
        None iterates forever (step-based training).
    rank : int, default=0
        Distributed rank; each rank draws its own groups for the same step.
    """

    def __init__(
        self,
        factors: np.ndarray,
        schema: AttributeSchema,
        groups_per_batch: int = 4,
        mode: SamplerMode = "strict",
        seed: int = 0,
        start_step: int = 0,
        num_batches: int | None = None,
        rank: int = 0,
    ) -> None:
        if mode not in ("strict", "relaxed"):
            raise DataError(f"sampler mode must be 'strict' or 'relaxed', got {mode!r}")
        if groups_per_batch < 1:
            raise DataError(f"groups_per_batch must be at least 1, got {groups_per_batch}")
        self.factors = np.asarray(factors, dtype=np.int64)
        self.schema = schema
        self.groups_per_batch = groups_per_batch
        self.mode = mode
        self.seed = seed
        self.start_step = start_step
        self.num_batches = num_batches
        self.rank = rank
        self._strict = count_strict_partners(self.factors) > 0  # (N, K)
        self._by_value = [
            {v: np.flatnonzero(self.factors[:, k] == v) for v in np.unique(self.factors[:, k])}
            for k in range(len(schema))
        ]
        self._check_partners()

    def _check_partners(self) -> None:
        has_partner = self._strict.copy()
        for k, attr in enumerate(self.schema.attributes):
            for v, rows in self._by_value[k].items():
                value = attr.values[v]
                if self.mode == "strict" and not self._strict[rows, k].any():
                    raise DataError(
                        f"no strict partner for attribute {attr.name!r} value {value!r}: no two images "
                        f"with {attr.name}={value!r} differ in every other attribute; "
                        "use sampler mode 'relaxed' for sparse or biased data"
                    )
                if len(rows) < 2:
                    raise DataError(
                        f"attribute {attr.name!r} value {value!r} occurs in one image only, "
                        "so no partner can share it; add images or drop the value"
                    )
                if self.mode == "relaxed":
                    has_partner[rows, k] = True
        self.centres = np.flatnonzero(has_partner.all(axis=1))
        if len(self.centres) == 0:
            raise DataError("no image has a partner for every attribute; use sampler mode 'relaxed'")

    def _partner(self, centre: int, k: int, rng: np.random.Generator) -> int:
        row = self.factors[centre]
        candidates = self._by_value[k][row[k]]
        if self._strict[centre, k]:
            others = np.arange(self.factors.shape[1]) != k
            for _ in range(_REJECTION_TRIES):
                p = candidates[rng.integers(len(candidates))]
                if (self.factors[p, others] != row[others]).all():
                    return int(p)
            ok = (self.factors[candidates][:, others] != row[others]).all(axis=1)
            return int(rng.choice(candidates[ok]))
        # relaxed fallback: among the others sharing k, those sharing the fewest attributes
        candidates = candidates[candidates != centre]
        shared = (self.factors[candidates] == row).sum(axis=1)
        return int(rng.choice(candidates[shared == shared.min()]))

    def batch(self, step: int) -> np.ndarray:
        """(groups_per_batch, K + 1) indices for training step ``step``; same step, same groups."""
        rng = np.random.default_rng([self.seed, step] + ([self.rank] if self.rank else []))
        centres = rng.choice(self.centres, size=self.groups_per_batch)
        return np.array(
            [[c, *(self._partner(c, k, rng) for k in range(len(self.schema)))] for c in centres],
            dtype=np.int64,
        )

    def __iter__(self) -> Iterator[list[int]]:
        steps = itertools.count(self.start_step)
        if self.num_batches is not None:
            steps = itertools.islice(steps, self.num_batches)
        for step in steps:
            yield self.batch(step).ravel().tolist()

    def __len__(self) -> int:
        if self.num_batches is None:
            raise TypeError("an endless GroupSampler has no length; pass num_batches")
        return self.num_batches
