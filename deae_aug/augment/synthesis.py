"""Offline synthesis: attribute-controlled images written as an ImageFolder tree with a manifest.

Each synthetic image starts from a source image of the training split, picks one attribute to
change and a partner that differs in it, and moves that latent block a fraction t of the way
to the partner's. The label's block is never touched, so the source's label stays the label.
The whole output is built in a temporary sibling folder and renamed into place at the end:
a killed run leaves no partial dataset and no manifest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from deae_aug.data.dataset import AttributeDataset, load_images
from deae_aug.data.export import check_output_dir
from deae_aug.data.fonts import MIN_CONTRAST, format_color, parse_color
from deae_aug.errors import UserError
from deae_aug.explore.latent import decode_edit, encode, interpolate, repaint
from deae_aug.io import atomic_folder, save_png
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.training.samples import to_uint8
from deae_aug.viz import image_grid


@dataclass
class Synthesis:
    """Synthetic images (N, 3, H, W) uint8 and one record per image."""

    images: torch.Tensor
    records: pd.DataFrame
    sources: torch.Tensor  # (N, 3, H, W) uint8 source images, for previews
    partners: torch.Tensor


def plan_edits(
    dataset: AttributeDataset,
    attributes: list[str],
    count: int,
    t_range: tuple[float, float] = (0.25, 1.0),
    seed: int = 0,
    paint: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per edit: which source image, which attribute, which partner (a sample with
    another value of it) and how far (t). The model plays no part, so a model and the renderer
    (``FontsDataset.render_edit``) can draw the very same edits.

    An attribute in ``paint`` (a colour) gets a new colour instead, uniform in RGB, '#rrggbb' in
    ``to_value`` with t = 1 and no partner (-1): values never seen in training, the paper's "new
    attributes". A draw closer than ``MIN_CONTRAST`` to any other colour of the source (any
    attribute whose value names a colour) is drawn again, so a glyph never vanishes into its
    background."""
    names = dataset.schema.names
    for a in attributes:
        if a not in names:
            raise UserError(f"augment.attributes: unknown attribute {a!r}; the dataset has {list(names)}")
    rng = np.random.default_rng(seed)
    factors = dataset.factors
    cols = [names.index(a) for a in attributes]
    varied = [k for k in cols if len(np.unique(factors[:, k])) > 1]
    if not varied:
        raise UserError(
            f"augment.attributes {attributes} take a single value in the source split; nothing to vary"
        )
    source = rng.integers(len(factors), size=count)
    attribute = rng.choice(varied, size=count)
    partner = np.empty(count, dtype=np.int64)
    for i, (s, k) in enumerate(zip(source, attribute, strict=False)):
        partner[i] = rng.choice(np.flatnonzero(factors[:, k] != factors[s, k]))
    t = rng.uniform(*t_range, size=count).round(4)
    values = [a.values for a in dataset.schema.attributes]
    to_value = [values[k][factors[p, k]] for p, k in zip(partner, attribute, strict=True)]
    painted = [names.index(a) for a in paint]
    for i in np.flatnonzero(np.isin(attribute, painted)):
        others = [_rgb(values[j][factors[source[i], j]]) for j in range(len(names)) if j != attribute[i]]
        colour = rng.integers(0, 256, size=3)
        while any(o is not None and np.linalg.norm(colour - o) < MIN_CONTRAST for o in others):
            colour = rng.integers(0, 256, size=3)
        to_value[i], t[i], partner[i] = format_color(colour), 1.0, -1
    return pd.DataFrame(
        {
            "attribute": [names[k] for k in attribute],
            "t": t,
            "source_index": source,
            "partner_index": partner,
            "from_value": [values[k][factors[s, k]] for s, k in zip(source, attribute, strict=True)],
            "to_value": to_value,
            **{f"source_{n}": [values[j][factors[s, j]] for s in source] for j, n in enumerate(names)},
        }
    )


def novel_colours(model: Autoencoder, names: Sequence[str], attributes: Sequence[str]) -> list[str]:
    """The attributes ``augment.mode: novel`` repaints with new colours: those of ``attributes``
    that are colour layers of the model (``model.style`` with ``style_mode: layers``)."""
    if model.decoder.paint is None:
        raise UserError(
            "augment.mode novel paints new colours, which needs colour attributes in model.style "
            "with model.style_mode: layers"
        )
    return [names[k] for k in model.cfg.style if names[k] in attributes]


def _rgb(value: str) -> np.ndarray | None:
    """RGB of a colour value, None for a value that names no colour (no contrast check)."""
    try:
        return np.asarray(parse_color(value), dtype=np.float64)
    except UserError:
        return None


def synthesize(
    model: Autoencoder,
    dataset: AttributeDataset,
    attributes: list[str],
    count: int,
    t_range: tuple[float, float] = (0.25, 1.0),
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = True,
    residual: bool = False,
    paint: Sequence[str] = (),
) -> Synthesis:
    """``count`` images from ``dataset``, each with one of ``attributes`` moved towards a partner's
    or, for the colours in ``paint``, repainted with a new colour (see ``plan_edits``).

    ``residual`` adds the decoder's change, D(z') - D(z), to the source image instead of
    returning D(z'): the source keeps its own sharp glyph and only the edit is the model's.
    """
    plan = plan_edits(dataset, attributes, count, t_range, seed, paint)
    source, partner = (plan[c].to_numpy(dtype=np.int64, copy=True) for c in ("source_index", "partner_index"))
    names = dataset.schema.names
    attribute = plan["attribute"].map(names.index).to_numpy()
    t = plan["t"].to_numpy()
    images = load_images(dataset)
    codes = encode(model, images)
    out = []
    bar = tqdm(total=count, desc="synthesise", unit="img", disable=not progress)
    for start in range(0, count, batch_size):
        sl = slice(start, start + batch_size)
        z = codes[source[sl]].clone()
        for k in np.unique(attribute[sl]):
            rows = np.flatnonzero(attribute[sl] == k)
            if names[k] in paint:
                rgb = torch.tensor(np.stack([parse_color(v) for v in plan["to_value"].iloc[sl].iloc[rows]]))
                z[rows] = repaint(model, z[rows], int(k), rgb.float() / 127.5 - 1)
                continue
            zp = codes[partner[sl][rows]]
            z[rows] = interpolate(z[rows], zp, model.blocks[k], torch.from_numpy(t[sl][rows]).float())
        edited = decode_edit(model, z, codes[source[sl]], images[source[sl]] if residual else None)
        out.append(torch.from_numpy(to_uint8(edited)).permute(0, 3, 1, 2))
        bar.update(len(z))
    bar.close()
    partners = images[np.maximum(partner, 0)]
    for i in np.flatnonzero(partner < 0):  # a painted colour has no partner: a swatch in previews
        partners[i] = torch.tensor(parse_color(plan.at[i, "to_value"]), dtype=torch.uint8)[:, None, None]
    return Synthesis(torch.cat(out), plan, images[source], partners)


def class_folder(index: int, value: str) -> str:
    """'03_D': the index keeps ImageFolder's class order equal to the schema's and keeps 'A' and
    'a' apart on case-insensitive file systems."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in value)
    return f"{index:02d}_{safe}"


def write_image_folder(
    synthesis: Synthesis,
    dataset: AttributeDataset,
    label: str,
    out: str | os.PathLike,
    overwrite: bool,
    progress: bool = True,
) -> Path:
    """Write ``out/<class>/<n>.png``, ``out/manifest.csv`` and ``out/preview.png`` atomically."""
    out = check_output_dir(out, overwrite)
    with atomic_folder(out, whole=True) as tmp:
        _write(synthesis, dataset, label, tmp, progress)
    return out


def _write(synthesis: Synthesis, dataset: AttributeDataset, label: str, tmp: Path, progress: bool) -> None:
    attr = dataset.schema[label]
    records = synthesis.records.copy()
    paths = []
    for i in tqdm(range(len(records)), desc="write", unit="img", disable=not progress):
        value = records.at[i, f"source_{label}"]
        rel = Path(class_folder(attr.index(value), value)) / f"{i:05d}.png"
        save_png(tmp / rel, synthesis.images[i].permute(1, 2, 0).numpy())
        paths.append(rel.as_posix())
    records.insert(0, "path", paths)
    records.insert(1, "label", records[f"source_{label}"])
    n = min(8, len(records))
    tiles = torch.stack([synthesis.sources[:n], synthesis.partners[:n], synthesis.images[:n]], 1).flatten(
        0, 1
    )
    labels = [
        f"{records.at[i, 'attribute']} "
        + (
            f"t={records.at[i, 't']:.2f}"
            if records.at[i, "partner_index"] >= 0
            else records.at[i, "to_value"]
        )
        for i in range(n)
    ]
    save_png(
        tmp / "preview.png", image_grid(tiles.permute(0, 2, 3, 1).numpy(), 3, row_labels=labels, scale=2)
    )
    records.to_csv(tmp / "manifest.csv", index=False)
