"""The exploration figures of the paper (Figs. 2, 5, 6), one function per mode.

Each takes a model, labelled images (uint8 (N, 3, H, W) plus (N, K) factors) and returns a PIL
grid and a JSON-able record of what was drawn, so a figure can be regenerated exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from deae_aug.data.dataset import to_float
from deae_aug.data.schema import AttributeSchema
from deae_aug.explore.directions import block_scale, unit_directions, value_centres
from deae_aug.explore.latent import decode, encode, interpolation_path, swap
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.training.samples import to_uint8
from deae_aug.viz import image_grid

MODES = ("swap", "interpolate", "random", "udv", "centre")


def _grid(rows: list[torch.Tensor], labels: list[str]) -> Image.Image:
    ncols = max(len(r) for r in rows)
    blank = torch.ones_like(rows[0][:1])
    padded = [torch.cat([r, blank.expand(ncols - len(r), -1, -1, -1)]) for r in rows]
    return image_grid(to_uint8(torch.cat(padded)), ncols, row_labels=labels, scale=2)


@torch.no_grad()
def explore(
    mode: str,
    model: Autoencoder,
    schema: AttributeSchema,
    images: torch.Tensor,
    factors: np.ndarray,
    attribute: str | None = None,
    n: int = 4,
    steps: int = 8,
    seed: int = 0,
) -> tuple[Image.Image, dict]:
    rng = np.random.default_rng(seed)
    k = schema.position(attribute) if attribute else None
    codes = encode(model, images)
    picks = rng.choice(len(images), size=min(n, len(images)), replace=False)
    record: dict = {"mode": mode, "attribute": attribute, "sources": picks.tolist()}
    rows, labels = [], []
    if mode == "swap":  # row: base, donor, then the base with each block swapped in from the donor
        donors = rng.choice(len(images), size=len(picks))
        record["donors"] = donors.tolist()
        for i, j in zip(picks, donors, strict=True):
            swapped = torch.stack([swap(codes[i], codes[j], b) for b in model.blocks])
            rows.append(torch.cat([to_float(images[[i, j]]), decode(model, swapped)]))
            labels.append("base|donor|" + ",".join(schema.names))
    elif mode in ("interpolate", "random"):
        partners = rng.choice(len(images), size=len(picks))
        record["partners"] = partners.tolist()
        blocks = [k] if k is not None else list(range(len(model.blocks)))
        for i, j in zip(picks, partners, strict=True):
            for b in blocks if mode == "interpolate" else [None]:
                if mode == "interpolate":
                    path = interpolation_path(codes[i], codes[j], model.blocks[b], steps)
                    labels.append(schema.names[b])
                else:  # every block moves by its own random t
                    t = torch.from_numpy(rng.uniform(size=(steps, len(model.blocks)))).float()
                    path = codes[i].repeat(steps, 1)
                    for c, block in enumerate(model.blocks):
                        path[:, block] += t[:, c : c + 1] * (codes[j, block] - codes[i, block])
                    labels.append("random")
                rows.append(torch.cat([to_float(images[[i, j]]), decode(model, path)]))
    else:  # udv / centre need an attribute and labelled codes
        if k is None:
            raise ValueError(f"mode {mode!r} needs an attribute")
        block = model.blocks[k]
        sub, values = codes[:, block].numpy(), factors[:, k]
        n_values = len(schema.attributes[k].values)
        present = np.unique(values)
        if mode == "udv":  # row per value: one image stepped along that value's unit direction
            udv, scale = unit_directions(sub, values, n_values, seed), block_scale(sub, values)
            t = np.linspace(0, 2 * scale, steps)
            record["scale"] = scale
            for v in present:
                path = codes[picks[0]].repeat(steps, 1)
                path[:, block] += torch.from_numpy(t[:, None] * udv[v]).float()
                rows.append(torch.cat([to_float(images[picks[:1]]), decode(model, path)]))
                labels.append(f"+{schema.attributes[k].values[v]}")
        else:  # row per image: its block replaced by each value's centre
            centres = value_centres(sub, values, n_values, method="kmeans", seed=seed)
            for i in picks:
                path = codes[i].repeat(len(present), 1)
                path[:, block] = torch.from_numpy(centres[present]).float()
                rows.append(torch.cat([to_float(images[[i]]), decode(model, path)]))
                labels.append("src|" + ",".join(schema.attributes[k].values[v] for v in present)[:18])
            record["values"] = [schema.attributes[k].values[v] for v in present]
    return _grid(rows, labels), record
