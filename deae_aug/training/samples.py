"""Sample grids saved during training: reconstructions, swaps and single-block interpolations."""

from __future__ import annotations

import numpy as np
import torch

from deae_aug.data.dataset import from_float
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.viz import image_grid


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    return from_float(images).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def sample_grid(model: Autoencoder, group: torch.Tensor, names: tuple[str, ...], steps: int = 8):
    """One group (K + 1, 3, H, W) -> a PIL grid.

    Row 1: centre and partners. Row 2: their reconstructions. Then per attribute k: the centre
    with block k swapped in from partner k (first tile), followed by ``steps`` interpolations of
    block k from the centre towards the next partner (which differs from the centre in k).
    """
    was_training = model.training
    model.eval()
    k_count = group.shape[0] - 1
    z = model.encode(group)
    ncols = max(k_count + 1, steps + 1)
    blank = torch.ones_like(group[:1])

    def pad(row: torch.Tensor) -> torch.Tensor:
        return (
            torch.cat([row, blank.expand(ncols - row.shape[0], -1, -1, -1)]) if row.shape[0] < ncols else row
        )

    rows = [pad(group), pad(model.decode(z))]
    labels = ["input", "recon"]
    t = torch.linspace(0, 1, steps, device=z.device)[:, None]
    for k, block in enumerate(model.blocks):
        swapped = z[0].clone()
        swapped[block] = z[1 + k, block]
        donor = z[1 + (k + 1) % k_count]
        interp = z[0].repeat(steps, 1)
        interp[:, block] = z[0, block] + t * (donor[block] - z[0, block])
        rows.append(torch.cat([model.decode(swapped[None]), model.decode(interp)]))
        labels.append(f"swap/int {names[k]}")
    model.train(was_training)
    images = to_uint8(torch.cat(rows))
    return image_grid(images, ncols, row_labels=labels, scale=2)
