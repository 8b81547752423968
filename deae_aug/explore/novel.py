"""Novel-value mining (paper 3.3, new colours): walk one block off the training values and keep
decoded images whose measured colour is perceptually new and whose content is still valid.

Candidates are codes whose block is an extrapolated or combined mix of training value centres
(c_a + t (c_b - c_a) with t outside [0, 1], and c_a + c_b - c_c, the paper's v_blue + v_red -
v_green), or walks from a code along a unit direction vector, single or combined (``walk_blocks``,
the paper's Fig. 7 rows). A colour counts as new when its CIE76 Delta E to every training colour is at least
``min_delta_e`` (10 by default: clearly visible); distinct new colours are counted greedily, so
two finds closer than ``min_delta_e`` count once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from deae_aug.explore.latent import decode
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.training.samples import to_uint8


class AttributeReader(Protocol):
    """What reads attribute values off images, such as ``deae_aug.evaluate.oracle.AttributeOracle``
    (exploration sits below evaluation, so it names the behaviour, not the class)."""

    def predict(self, images: torch.Tensor) -> torch.Tensor: ...


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of sRGB colours in 0-255, shape (..., 3)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = linear @ np.array([[0.4124, 0.2126, 0.0193], [0.3576, 0.7152, 0.1192], [0.1805, 0.0722, 0.9505]])
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIE76 colour difference between every colour of ``a`` (N, 3) and of ``b`` (M, 3): (N, M)."""
    return np.linalg.norm(rgb_to_lab(a)[:, None] - rgb_to_lab(b)[None], axis=-1)


def distinct_novel(colours: np.ndarray, known: np.ndarray, min_delta_e: float = 10.0) -> np.ndarray:
    """Indices of ``colours`` that are at least ``min_delta_e`` from every ``known`` colour and
    from every colour already kept (greedy, in order)."""
    if len(colours) == 0:
        return np.zeros(0, dtype=int)
    far = delta_e(colours, known).min(1) >= min_delta_e
    kept: list[int] = []
    for i in np.flatnonzero(far):
        if not kept or delta_e(colours[i : i + 1], colours[kept]).min() >= min_delta_e:
            kept.append(int(i))
    return np.array(kept, dtype=int)


def candidate_blocks(centres: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """(n, d) block codes off the training values: extrapolations past a centre and (with three
    or more values) combinations c_a + c_b - c_c. Rows with NaN (absent values) are skipped."""
    centres = centres[~np.isnan(centres).any(1)]
    if len(centres) < 2:
        raise ValueError(f"novel-value mining needs at least 2 training values, got {len(centres)}")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        order = rng.permutation(len(centres))
        a, b, c = order[0], order[1], (order[2] if len(order) > 2 else None)
        if i % 2 == 0 or c is None:
            t = rng.uniform(1.3, 2.0) if rng.random() < 0.5 else rng.uniform(-1.0, -0.3)
            out.append(centres[a] + t * (centres[b] - centres[a]))  # past b, or back beyond a
        else:
            out.append(centres[a] + centres[b] - centres[c])
    return np.stack(out)


@dataclass
class NovelColours:
    images: np.ndarray  # (M, H, W, 3) uint8, the decoded candidates
    colours: np.ndarray  # (M, 3) measured region colour of each candidate
    valid: np.ndarray  # (M,) bool: the oracle still reads every protected attribute (all True without one)
    novel: np.ndarray  # indices of distinct new colours among all candidates
    novel_valid: np.ndarray  # indices of distinct new colours among the valid candidates


def walk_blocks(start: np.ndarray, directions: np.ndarray, reach: float, steps: int) -> np.ndarray:
    """(N * steps, d) block codes: start i moved along its own unit direction i (both (N, d)) by
    ``reach`` * s / steps for s = 1..steps, the paper's walk along a UDV (Fig. 7); rows of one
    start are consecutive."""
    distance = reach * np.arange(1, steps + 1) / steps
    return (start[:, None] + distance[None, :, None] * directions[:, None]).reshape(-1, start.shape[1])


@torch.no_grad()
def mine_novel_colours(
    model: Autoencoder,
    codes: torch.Tensor,
    block: slice,
    centres: np.ndarray,
    region: np.ndarray,
    known: np.ndarray,
    n: int = 200,
    min_delta_e: float = 10.0,
    seed: int = 0,
    oracle: AttributeReader | None = None,
    factors: np.ndarray | None = None,
    protect: Sequence[int] = (),
) -> NovelColours:
    """``novel_colours`` of ``n`` candidates from ``candidate_blocks`` (candidate i on base code
    i % N): extrapolations past and combinations of the training value centres."""
    candidates = candidate_blocks(centres, n, seed)
    base = np.arange(n) % len(codes)
    return novel_colours(
        model, codes, block, candidates, base, region, known, min_delta_e, oracle, factors, protect
    )


@torch.no_grad()
def novel_colours(
    model: Autoencoder,
    codes: torch.Tensor,
    block: slice,
    candidates: np.ndarray,
    base: np.ndarray,
    region: np.ndarray,
    known: np.ndarray,
    min_delta_e: float = 10.0,
    oracle: AttributeReader | None = None,
    factors: np.ndarray | None = None,
    protect: Sequence[int] = (),
) -> NovelColours:
    """Put candidate block i (M, d) into base code ``base[i]`` of ``codes`` (N, D), decode, and
    measure each image's colour as the median over its base image's ``region`` mask (N, H, W).

    With an ``oracle``, a candidate is valid when it reads the base's ``factors`` at every
    ``protect`` position (e.g. the letter): a new colour on an unreadable image is no find.
    """
    base = torch.as_tensor(base, dtype=torch.long)
    moved = codes[base].clone()
    moved[:, block] = torch.as_tensor(candidates, dtype=codes.dtype)
    decoded = decode(model, moved)
    images = to_uint8(decoded)  # (M, H, W, 3)
    masks = np.asarray(region)[base.numpy()] > 0.5
    colours = np.stack([np.median(im[m] if m.any() else im.reshape(-1, 3), axis=0)
                        for im, m in zip(images, masks, strict=True)])  # fmt: skip
    valid = np.ones(len(candidates), dtype=bool)
    if oracle is not None and protect:
        read = oracle.predict(decoded).numpy()[:, list(protect)]
        valid = (read == np.asarray(factors)[base.numpy()][:, list(protect)]).all(1)
    kept = np.flatnonzero(valid)
    novel_valid = kept[distinct_novel(colours[kept], known, min_delta_e)]
    return NovelColours(images, colours, valid, distinct_novel(colours, known, min_delta_e), novel_valid)
