"""Write datasets to disk: PNG files, a manifest.csv and a contact sheet.

The manifest is written last, to a temporary name and then renamed, so a killed run never
leaves a manifest that lists files that are not there.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from deae_aug.data.dataset import AttributeDataset
from deae_aug.errors import UserError
from deae_aug.io import atomic_write, save_png
from deae_aug.viz import image_grid


def check_output_dir(out: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an ``out`` that is a file, or a non-empty folder unless ``overwrite``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(f"output folder {out} is not empty; pass --overwrite or choose another --out")
    return out


def export_splits(splits: dict[str, AttributeDataset], out: Path, progress: bool = True) -> pd.DataFrame:
    """Render every split into ``out/<split>/`` and write ``out/manifest.csv``."""
    rows = []
    total = sum(len(d) for d in splits.values())
    with tqdm(total=total, desc="rendering", unit="img", disable=not progress) as bar:
        for split, dataset in splits.items():
            names = dataset.schema.names
            for i in range(len(dataset)):
                values = dataset.describe(i)
                rel = Path(split) / f"{i:06d}.png"
                save_png(out / rel, dataset.load_image(i))
                rows.append({"path": rel.as_posix(), "split": split, **{n: values[n] for n in names}})
                bar.update()
    manifest = pd.DataFrame(rows)
    atomic_write(out / "manifest.csv", lambda tmp: manifest.to_csv(tmp, index=False))
    return manifest


def contact_sheet(
    dataset: AttributeDataset, attribute: str | None = None, per_row: int = 12, seed: int = 0, scale: int = 2
) -> Image.Image:
    """One row per value of ``attribute`` (default: the dataset's ``contact_attribute``, else the
    attribute with most values), each showing ``per_row`` random samples with that value."""
    schema = dataset.schema
    name = attribute or dataset.contact_attribute or max(schema.names, key=lambda n: len(schema[n].values))
    col = schema.position(name)
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for v, value in enumerate(schema[name].values[:32]):
        rows = np.flatnonzero(dataset.factors[:, col] == v)
        if len(rows) == 0:
            continue
        picks = rng.choice(rows, size=min(per_row, len(rows)), replace=False)
        blank = np.full((dataset.resolution, dataset.resolution, 3), 255, np.uint8)
        images += [dataset.load_image(int(i)) for i in picks] + [blank] * (per_row - len(picks))
        labels.append(value)
    if not images:
        raise UserError("contact sheet: the dataset is empty")
    return image_grid(images, per_row, row_labels=labels, scale=scale)
