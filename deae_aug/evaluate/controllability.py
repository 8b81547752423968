"""Measured controllability (paper 3.3 made a number): does moving one block change one attribute?

- ``preservation_rate``: interpolate block k between two images that differ in k; the oracle
  must read every *other* attribute of each decoded step as the base image's.
- ``colour_monotonic``: for a colour attribute, the region's measured colour must move steadily
  from one endpoint's colour to the other's; ``blend_error``: how far (CIE Delta E) each step's
  colour lies from the RGB blend of the two ends (paper Fig. 5: is a midway code a midway colour?).
- ``block_pair_mse``: the paper's unseen-colour test (3.2): how far the letter, size and font
  blocks move when only the colours change, to colours never seen in training.
- ``probe_matrix`` / ``block_disentanglement``: how well each block predicts each attribute
  (logistic-regression probes), and a DCI-style score computed at block level.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from deae_aug.data.dataset import load_images
from deae_aug.evaluate.oracle import AttributeOracle
from deae_aug.evaluate.quality import swap_pairs
from deae_aug.explore.latent import decode, encode, interpolate
from deae_aug.explore.novel import rgb_to_lab
from deae_aug.models.autoencoder import Autoencoder


@torch.no_grad()
def preservation_rate(
    model: Autoencoder,
    oracle: AttributeOracle,
    dataset,
    k: int,
    pairs: int = 200,
    steps: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Fraction of interpolated images (interior t) whose other attributes the oracle reads unchanged.

    ``preserved`` compares with the base image's labels, so it also counts what the model never
    reconstructed; ``preserved_vs_reconstruction`` compares with what the oracle reads from the
    base's plain reconstruction (t = 0): only what the interpolation itself changed. A model
    that ignores block k preserves everything, so ``moved`` says how often the oracle reads the
    partner's value of k at t = 1, and ``controlled`` asks both of a path: it reaches the
    partner's value and keeps every other attribute of the reconstruction on the way.
    ``kept_by_attribute`` (attribute index -> rate, against the reconstruction) says which
    attribute an interpolation drags along; ``kept_by_t`` (one rate per interior step, against
    the reconstruction) says where on the path it does.
    """
    rng = np.random.default_rng(seed)
    rows = swap_pairs(dataset.factors, k, pairs, rng)
    images = load_images(dataset.select(rows.reshape(-1))).view(len(rows), 2, 3, *dataset[0][0].shape[-2:])
    z_a, z_b = encode(model, images[:, 0]), encode(model, images[:, 1])
    t = torch.linspace(0, 1, steps + 2)[1:-1]
    base = dataset.factors[rows[:, 0]]
    others = [j for j in range(dataset.factors.shape[1]) if j != k]
    recon = oracle.predict(decode(model, z_a)).numpy()[:, others]
    kept, kept_each = [], []
    for ti in t:
        read = oracle.predict(decode(model, interpolate(z_a, z_b, model.blocks[k], float(ti)))).numpy()
        kept.append((read[:, others] == base[:, others]).all(1))
        kept_each.append(read[:, others] == recon)
    kept, kept_each = np.stack(kept, 1), np.stack(kept_each, 1)  # (pairs, steps), (pairs, steps, others)
    kept_recon = kept_each.all(2)
    end = oracle.predict(decode(model, interpolate(z_a, z_b, model.blocks[k], 1.0))).numpy()
    moved = end[:, k] == dataset.factors[rows[:, 1], k]
    return {
        "preserved": float(kept.mean()),
        "preserved_vs_reconstruction": float(kept_recon.mean()),
        "moved": float(moved.mean()),
        "controlled": float((moved[:, None] & kept_recon).mean()),
        "paths_fully_preserved": float(kept.all(1).mean()),
        "kept_by_attribute": {j: float(kept_each[..., i].mean()) for i, j in enumerate(others)},
        "kept_by_t": {f"{float(ti):.2f}": float(kept_recon[:, i].mean()) for i, ti in enumerate(t)},
        "pairs": len(rows),
    }


def colour_monotonic(colours: np.ndarray, tolerance: float = 4.0) -> bool:
    """(steps, 3) measured RGB along a path: its projection on end - start never falls back by
    more than ``tolerance`` (in 0-255 units) and ends past the start."""
    direction = colours[-1] - colours[0]
    norm = np.linalg.norm(direction)
    if norm < 1e-6:
        return False
    progress = (colours - colours[0]) @ (direction / norm)
    return bool(np.all(np.diff(progress) >= -tolerance) and progress[-1] > progress[0])


def blend_error(colours: np.ndarray) -> np.ndarray:
    """(paths, steps, 3) measured RGB along evenly spaced paths -> (paths, steps) CIE76 Delta E
    of each step from the linear RGB blend of the path's two ends (0 at both ends)."""
    colours = np.asarray(colours, dtype=np.float64)
    t = np.linspace(0, 1, colours.shape[1])[None, :, None]
    blend = (1 - t) * colours[:, :1] + t * colours[:, -1:]
    return delta_e_pairs(colours, blend)


def delta_e_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIE76 Delta E between matching sRGB colours (..., 3) in 0-255."""
    return np.linalg.norm(rgb_to_lab(a) - rgb_to_lab(b), axis=-1)


def region_colour(images: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 images, (H, W) bool region -> (N, 3) median colour of the region."""
    return np.median(images[:, mask].astype(np.float32), axis=1)


def block_pair_mse(
    codes_a: torch.Tensor, codes_b: torch.Tensor, blocks: list[slice], reference: torch.Tensor
) -> float:
    """Mean squared difference of two images' codes on ``blocks``, each dimension divided by its
    standard deviation over ``reference`` (training) codes, so models with differently scaled
    latents compare. For pairs that differ only in colours, 0 means the colour change leaked into
    none of those blocks; about 2 means the blocks are as different as two random images.

    Collapsed dimensions (spread below 1e-4 of the latent's largest) carry nothing and are
    skipped; NaN when every dimension of the blocks collapsed (a beta-VAE that ignores its input).
    """
    scale = reference.std(0)
    dims = torch.cat([torch.arange(b.start, b.stop) for b in blocks])
    dims = dims[scale[dims] > 1e-4 * scale.max()]
    if len(dims) == 0:
        return float("nan")
    diff = (codes_a[:, dims] - codes_b[:, dims]) / scale[dims]
    return float(diff.pow(2).mean())


def probe_matrix(codes: np.ndarray, factors: np.ndarray, blocks: list[slice], seed: int = 0) -> np.ndarray:
    """(n_blocks, n_attributes) held-out accuracy of a logistic-regression probe from each block
    to each attribute."""
    out = np.zeros((len(blocks), factors.shape[1]))
    for a in range(factors.shape[1]):
        y = factors[:, a]
        if len(np.unique(y)) < 2:
            out[:, a] = 1.0
            continue
        tr, te = train_test_split(np.arange(len(y)), test_size=0.3, random_state=seed, stratify=None)
        for b, block in enumerate(blocks):
            x = StandardScaler().fit(codes[tr, block]).transform(codes[:, block])
            probe = LogisticRegression(max_iter=1000).fit(x[tr], y[tr])
            out[b, a] = probe.score(x[te], y[te])
    return out


def block_disentanglement(accuracy: np.ndarray, chance: np.ndarray) -> dict[str, float]:
    """DCI-style scores from a probe matrix.

    Importance R[b, a] = accuracy above chance, normalised per attribute. Disentanglement of
    block b = 1 - entropy of its importance over attributes (base K); the overall score weights
    blocks by their total importance. Completeness is the same per attribute over blocks.
    """
    gain = np.clip((accuracy - chance) / np.maximum(1 - chance, 1e-9), 0, None)  # (B, A)
    n_b, n_a = gain.shape

    def one_minus_entropy(p: np.ndarray, base: int) -> float:
        p = p / p.sum() if p.sum() > 0 else np.full_like(p, 1 / len(p))
        nz = p[p > 0]
        return float(1 + (nz * np.log(nz)).sum() / np.log(base))

    d = np.array([one_minus_entropy(gain[b], n_a) for b in range(n_b)])
    weights = gain.sum(1) / gain.sum() if gain.sum() > 0 else np.full(n_b, 1 / n_b)
    c = np.array([one_minus_entropy(gain[:, a], n_b) for a in range(n_a)])
    return {"disentanglement": float((d * weights).sum()), "completeness": float(c.mean())}
