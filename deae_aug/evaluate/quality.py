"""How well a trained model reconstructs and swaps, read by the attribute oracle."""

from __future__ import annotations

import numpy as np
import torch

from deae_aug.data.dataset import AttributeDataset, load_images, to_float
from deae_aug.evaluate.oracle import AttributeOracle
from deae_aug.explore.latent import decode, encode, swap
from deae_aug.models.autoencoder import Autoencoder


def reconstruction_l1(
    model: Autoencoder, dataset: AttributeDataset, limit: int = 1000, seed: int = 0
) -> float:
    """Mean absolute error (images in [-1, 1]) of reconstructing up to ``limit`` images of ``dataset``."""
    rows = np.random.default_rng(seed).permutation(len(dataset))[:limit]
    images = to_float(load_images(dataset.select(rows)))
    return float((decode(model, encode(model, images)) - images).abs().mean())


@torch.no_grad()
def reconstruction_accuracy(
    model: Autoencoder, oracle: AttributeOracle, dataset: AttributeDataset, limit: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Per attribute, how often the oracle reads the true value from a reconstruction: the
    ceiling for any swap of that attribute."""
    rows = np.random.default_rng(seed).permutation(len(dataset))[:limit]
    sub = dataset.select(rows)
    read = oracle.predict(decode(model, encode(model, load_images(sub))))
    hit = (read == torch.from_numpy(sub.factors)).float().mean(0)
    return {name: round(float(h), 4) for name, h in zip(dataset.schema.names, hit, strict=True)}


def swap_pairs(factors: np.ndarray, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) row pairs (base, donor) whose attribute k differs."""
    base = rng.integers(len(factors), size=4 * n)
    donor = rng.integers(len(factors), size=4 * n)
    differ = factors[base, k] != factors[donor, k]
    pairs = np.stack([base[differ], donor[differ]], 1)[:n]
    return pairs


@torch.no_grad()
def swap_accuracy(
    model: Autoencoder,
    oracle: AttributeOracle,
    dataset: AttributeDataset,
    pairs_per_attribute: int = 500,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Per attribute k: swap block k from a donor into a base image and read the decoded image.

    ``swapped``: the oracle reads the donor's value of k. ``preserved``: it reads the base's
    value for every other attribute. ``both``: the two at once (a clean single-attribute edit).
    """
    rng = np.random.default_rng(seed)
    names = dataset.schema.names
    out = {}
    for k, name in enumerate(names):
        pairs = swap_pairs(dataset.factors, k, pairs_per_attribute, rng)
        if len(pairs) == 0:
            continue
        rows = np.unique(pairs)
        lookup = {int(r): i for i, r in enumerate(rows)}
        codes = encode(model, load_images(dataset.select(rows)))
        base = codes[[lookup[int(r)] for r in pairs[:, 0]]]
        donor = codes[[lookup[int(r)] for r in pairs[:, 1]]]
        read = oracle.predict(decode(model, swap(base, donor, model.blocks[k])))
        expected = torch.from_numpy(dataset.factors[pairs[:, 0]].copy())
        expected[:, k] = torch.from_numpy(dataset.factors[pairs[:, 1], k])
        hit = read == expected
        others = torch.ones(len(names), dtype=torch.bool)
        others[k] = False
        out[name] = {
            "swapped": round(float(hit[:, k].float().mean()), 4),
            "preserved": round(float(hit[:, others].all(1).float().mean()), 4),
            "both": round(float(hit.all(1).float().mean()), 4),
            "pairs": len(pairs),
        }
    return out
