"""Pictures of latent edits, laid out like the paper's figures."""

from __future__ import annotations

import torch
from PIL import Image

from deae_aug.data.dataset import to_float
from deae_aug.explore.latent import decode, encode, interpolation_path
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.training.samples import to_uint8
from deae_aug.viz import image_grid


@torch.no_grad()
def attribute_grid(
    model: Autoencoder, base: torch.Tensor, donor: torch.Tensor, names: tuple[str, ...], steps: int = 6
) -> Image.Image:
    """For each (base, donor) pair and attribute k, one row: base, donor, then block k moved from
    the base (t=0) to the donor (t=1) in ``steps`` steps; the last tile is the swap."""
    base, donor = (to_float(x) if x.dtype == torch.uint8 else x for x in (base, donor))
    z_base, z_donor = encode(model, base), encode(model, donor)
    rows, labels = [], []
    for i in range(len(base)):
        for k, block in enumerate(model.blocks):
            path = decode(model, interpolation_path(z_base[i], z_donor[i], block, steps))
            rows.append(torch.cat([base[i : i + 1], donor[i : i + 1], path]))
            labels.append(names[k])
    return image_grid(to_uint8(torch.cat(rows)), steps + 2, row_labels=labels, scale=2)
