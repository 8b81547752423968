"""Debiasing in image space, as the authors' code did: synthesise the (label, bias value)
combinations the biased set lacks by swapping bias blocks, then train an ordinary classifier.

With ``residual``, a synthetic image is its source plus the decoder's change (``decode_edit``):
for a letter never seen on a background the decoder tends to draw a letter that was (an A on
yellow comes out as a B), while the source's own glyph survives the residual edit.

With ``repaint`` the decoder draws nothing: a layered decoder says an image is its colour layers'
coverage times their colours, so each pixel's coverage can be solved from the source's own RGB
and the model's palette for it, and the colours replaced. Every texture and shading detail of
the source survives, where a decoded coverage is only as sharp as the content blocks."""

from __future__ import annotations

import numpy as np
import torch

from deae_aug.data.dataset import AttributeDataset, from_float, load_images
from deae_aug.errors import UserError
from deae_aug.explore.latent import decode_edit, encode, repaint_edit, swap
from deae_aug.models.autoencoder import Autoencoder


@torch.no_grad()
def rebalance(
    model: Autoencoder,
    dataset: AttributeDataset,
    label: str,
    bias: str,
    seed: int = 0,
    residual: bool = False,
    repaint: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Images (uint8) and labels with every (label, bias value) pair equally represented.

    Each pair gets as many images as the most frequent pair has: the real ones, topped up with
    images of that label whose bias block is swapped in from a random image with that bias
    value, decoded (or, with ``residual``, added to the source as the decoder's change; with
    ``repaint``, the source's own pixels recoloured, see `repaint_edit`).
    Returns (images, labels, number of synthetic images).
    """
    if residual and repaint:
        raise UserError("rebalance: choose residual or repaint (debias.residual, debias.repaint), not both")
    if repaint and (model.decoder.paint is None or dataset.schema.position(bias) not in model.cfg.style):
        raise UserError(
            f"rebalance: repaint needs {bias!r} in model.style with model.style_mode: layers (a colour layer)"
        )
    rng = np.random.default_rng(seed)
    schema, factors = dataset.schema, dataset.factors
    y_col, b_col = schema.position(label), schema.position(bias)
    images = load_images(dataset)
    codes = encode(model, images)
    present_bias = np.unique(factors[:, b_col])
    counts = {(y, b): int(((factors[:, y_col] == y) & (factors[:, b_col] == b)).sum())
              for y in np.unique(factors[:, y_col]) for b in present_bias}  # fmt: skip
    target = max(counts.values())
    out_images, out_labels, synthetic = [images], [torch.from_numpy(factors[:, y_col].copy())], 0
    block = model.blocks[b_col]
    for (y, b), have in counts.items():
        need = target - have
        if need <= 0:
            continue
        sources = rng.choice(np.flatnonzero(factors[:, y_col] == y), size=need)
        donors = rng.choice(np.flatnonzero(factors[:, b_col] == b), size=need)
        edited = swap(codes[sources], codes[donors], block)
        if repaint:
            made = repaint_edit(model, edited, codes[sources], images[sources])
        else:
            made = decode_edit(model, edited, codes[sources], images[sources] if residual else None)
        out_images.append(from_float(made))
        out_labels.append(torch.full((need,), int(y)))
        synthetic += need
    return torch.cat(out_images), torch.cat(out_labels), synthetic
