"""The exploration figures of the paper (Figs. 2, 5, 6), one function per mode.

Each takes a model, labelled images (uint8 (N, 3, H, W) plus (N, K) factors) and returns a PIL
grid and a JSON-able record of what was drawn, so a figure can be regenerated exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from deae_aug.data.dataset import to_float
from deae_aug.data.fonts import format_color, parse_color
from deae_aug.data.schema import AttributeSchema
from deae_aug.errors import UserError
from deae_aug.explore.directions import block_scale, scored_unit_directions, unit_directions, value_centres
from deae_aug.explore.latent import decode, encode, interpolation_path, scored_interpolations, swap
from deae_aug.explore.novel import mine_novel_colours
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.training.samples import to_uint8
from deae_aug.viz import image_grid

MODES = ("swap", "interpolate", "random", "udv", "centre", "discover")


def _grid(rows: list[torch.Tensor], labels: list[str], columns: list[str]) -> Image.Image:
    """The rows as one figure, each row labelled, each column headed (what it shows)."""
    ncols = max(len(r) for r in rows)
    blank = torch.ones_like(rows[0][:1])
    padded = [torch.cat([r, blank.expand(ncols - len(r), -1, -1, -1)]) for r in rows]
    return image_grid(to_uint8(torch.cat(padded)), ncols, row_labels=labels, scale=2, column_labels=columns)


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
    oracle: torch.nn.Module | None = None,
) -> tuple[Image.Image, dict]:
    """``oracle``: mode ``udv`` fits its directions on oracle-scored interpolated codes (paper
    2.3) instead of on the labelled training codes."""
    rng = np.random.default_rng(seed)
    k = schema.position(attribute) if attribute else None
    codes = encode(model, images)
    picks = rng.choice(len(images), size=min(n, len(images)), replace=False)
    record: dict = {"mode": mode, "attribute": attribute, "sources": picks.tolist()}
    rows, labels = [], []
    steps_t = [f"t={t:.2f}".rstrip("0").rstrip(".") for t in np.linspace(0, 1, steps)]
    if mode == "swap":  # row: base, donor, then the base with each block swapped in from the donor
        donors = rng.choice(len(images), size=len(picks))
        record["donors"] = donors.tolist()
        record["columns"] = ["base", "donor", *schema.names]
        for i, j in zip(picks, donors, strict=True):
            swapped = torch.stack([swap(codes[i], codes[j], b) for b in model.blocks])
            rows.append(torch.cat([to_float(images[[i, j]]), decode(model, swapped)]))
            labels.append("swap")
    elif mode in ("interpolate", "random"):
        partners = rng.choice(len(images), size=len(picks))
        record["partners"] = partners.tolist()
        record["columns"] = [
            "source",
            "partner",
            *(steps_t if mode == "interpolate" else ["random t"] * steps),
        ]
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
    elif mode == "discover":
        if k is None:
            raise ValueError("mode 'discover' needs a colour attribute")
        sources = (images[picks], codes[picks], factors[picks, k])
        grid, found = _discover(model, schema, k, sources, codes, factors[:, k], n * steps, seed)
        record |= found
        return grid, record
    else:  # udv / centre need an attribute and labelled codes
        if k is None:
            raise ValueError(f"mode {mode!r} needs an attribute")
        block = model.blocks[k]
        sub, values = codes[:, block].numpy(), factors[:, k]
        n_values = len(schema.attributes[k].values)
        present = np.unique(values)
        if mode == "udv":  # row per value: one image stepped along that value's unit direction
            if oracle is None:
                udv = unit_directions(sub, values, n_values, seed)
            else:
                scored, probs = scored_interpolations(model, oracle, codes, k, seed=seed)
                udv = scored_unit_directions(scored.numpy(), probs.numpy(), seed=seed)
            scale = block_scale(sub, values)
            t = np.linspace(0, 2 * scale, steps)
            record |= {"scale": scale, "fit": "labels" if oracle is None else "oracle-scored interpolations"}
            record["columns"] = ["source", *(f"{d / scale:.2f}u" for d in t)]  # u: the block's scale
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
            record["columns"] = ["source", *record["values"]]
    return _grid(rows, labels, record["columns"]), record


def colour_region(images: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """(N, H, W) bool: the region of each (N, H, W, 3) image that shows its ``colours`` row:
    the pixels near the image's median colour (its background) or the others, whichever region's
    median is closer to the given colour."""
    median = np.median(images.reshape(len(images), -1, 3), axis=1)[:, None, None]
    background = np.abs(images.astype(np.float32) - median).sum(-1) < 60
    out = []
    for im, bg, colour in zip(images, background, colours, strict=True):
        regions = [r for r in (bg, ~bg) if r.any()]
        distance = [np.abs(np.median(im[r], axis=0) - colour).sum() for r in regions]
        out.append(regions[int(np.argmin(distance))])
    return np.stack(out)


def _discover(
    model: Autoencoder,
    schema: AttributeSchema,
    k: int,
    sources: tuple[torch.Tensor, torch.Tensor, np.ndarray],
    codes: torch.Tensor,
    values: np.ndarray,
    count: int,
    seed: int,
) -> tuple[Image.Image, dict]:
    """New values of colour attribute k: finds at least 10 Delta E from every training colour.

    ``sources`` are the (images, codes, values of k) whose other attributes the finds keep;
    ``codes`` and ``values`` (every training image) place the value centres."""
    names = schema.attributes[k].values
    try:
        known = np.array([parse_color(v) for v in names])
    except UserError:
        raise UserError(
            f"discover needs a colour attribute; {schema.names[k]!r} has values like {names[0]!r}"
        ) from None
    block = model.blocks[k]
    centres = value_centres(codes[:, block].numpy(), values, len(names))
    images, source_codes, source_values = sources
    region = colour_region(images.permute(0, 2, 3, 1).numpy(), known[source_values])
    found = mine_novel_colours(model, source_codes, block, centres, region, known, n=4 * count, seed=seed)
    shown = found.novel[:count]
    if len(shown) == 0:
        raise UserError(f"no new {schema.names[k]} in {4 * count} candidates; try another --seed or more --n")
    tiles = to_float(torch.from_numpy(found.images[shown]).permute(0, 3, 1, 2))
    rows = list(tiles.split(min(8, len(shown))))
    record = {
        "candidates": 4 * count,
        "novel": len(found.novel),
        "colours": [format_color(found.colours[i]) for i in shown],
    }
    columns = record["colours"] if len(rows) == 1 else [f"find {i + 1}" for i in range(len(rows[0]))]
    return _grid(rows, [f"new {schema.names[k]}"] * len(rows), columns), record
