"""Offline synthesis: attribute-controlled images written as an ImageFolder tree with a manifest.

Each synthetic image starts from a source image of the training split and changes
``augment.edits`` of its attributes at once: each changed latent block moves a fraction t of the
way to a partner's that differs in it, or along the unit direction of another value, or (novel
colours) is repainted. Several edits per image reach combinations a single edit never does. The
label's block is never touched, so the source's label stays the label. The plan is drawn here,
from the source labels; the edits are made by ``DEAEAugment.augment_batch``, the transform's own
code path.
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

from deae_aug.augment.transform import DEAEAugment, brightness_range, colour_at_brightness, legible_colour
from deae_aug.data.dataset import AttributeDataset, load_images
from deae_aug.data.export import check_output_dir
from deae_aug.data.fonts import format_color, parse_color
from deae_aug.errors import UserError
from deae_aug.io import atomic_folder, save_png
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.viz import image_grid


@dataclass
class Synthesis:
    """Synthetic images (N, 3, H, W) uint8 and one record per image."""

    images: torch.Tensor
    records: pd.DataFrame
    sources: torch.Tensor  # (N, 3, H, W) uint8 source images, for previews


def plan_edits(
    dataset: AttributeDataset,
    attributes: list[str],
    count: int,
    t_range: tuple[float, float] = (0.25, 1.0),
    seed: int = 0,
    paint: Sequence[str] = (),
    edits: tuple[int, int] = (1, 1),
    udv: bool = False,
    brightness: str = "any",
) -> pd.DataFrame:
    """One row per synthetic image: a source image of ``dataset`` and some of ``attributes``
    (distinct, at random; how many is uniform in the range ``edits``) to change. The model plays
    no part, so a model and the renderer (``FontsDataset.render_edit``) can draw the very same
    edits.

    Columns: ``source_index``, ``edited`` (the changed attributes joined by '+'), the source's
    values ``source_<a>``, and per attribute a that varies: ``<a>_to`` (the value it moves
    towards, '' when kept), ``<a>_t`` (how far, 0 when kept) and ``<a>_partner`` (the sample
    whose value that is, -1 when kept or painted). An edited attribute moves a fraction t in
    ``t_range`` towards a partner that differs in it (with ``udv``: t block-scales along the unit
    direction of another value, partner -1). An attribute in ``paint`` (a colour) gets
    a new colour instead, uniform in RGB, '#rrggbb' with t = 1: values never seen in training,
    the paper's "new attributes" (``brightness="seen"``: any hue and saturation at an HSV value
    within the range the attribute's colours span in ``dataset``, see ``DEAEAugment``). A draw
    closer than ``MIN_CONTRAST`` to any other colour of the image (the source's, or one painted
    before it) is drawn again, so a glyph never vanishes into its background."""
    names = dataset.schema.names
    for a in attributes:
        if a not in names:
            raise UserError(f"augment.attributes: unknown attribute {a!r}; the dataset has {list(names)}")
    factors = dataset.factors
    varied = [k for k in (names.index(a) for a in attributes) if len(np.unique(factors[:, k])) > 1]
    if not varied:
        raise UserError(
            f"augment.attributes {attributes} take a single value in the source split; nothing to vary"
        )
    low, high = edits
    if not 1 <= low <= high <= len(varied):
        raise UserError(
            f"augment.edits must be [low, high] with 1 <= low <= high <= {len(varied)}, the number "
            f"of augment.attributes that vary in the source split ({[names[k] for k in varied]}); "
            f"got {list(edits)}"
        )
    rng = np.random.default_rng(seed)
    values = [a.values for a in dataset.schema.attributes]
    seen = (
        {k: _seen_brightness(dataset, k) for k in varied if names[k] in paint} if brightness == "seen" else {}
    )

    def new_colour(k: int, anywhere: bool = False) -> np.ndarray:
        if k not in seen or anywhere:
            return rng.integers(0, 256, size=3)
        return colour_at_brightness(rng.random(3), *seen[k])

    source = rng.integers(len(factors), size=count)
    how_many = rng.integers(low, high + 1, size=count)
    rank = np.argsort(np.argsort(rng.random((count, len(varied))), axis=1), axis=1)
    chosen = rank < how_many[:, None]  # a random subset of how_many attributes per image
    drawn_t = rng.uniform(*t_range, size=(count, len(varied))).round(4)
    to = {k: [""] * count for k in varied}
    t = {k: np.zeros(count) for k in varied}
    partner = {k: np.full(count, -1, dtype=np.int64) for k in varied}
    for i, s in enumerate(source):
        colours = {j: _rgb(values[j][factors[s, j]]) for j in range(len(names))}
        for c in np.flatnonzero(chosen[i]):
            k = varied[c]
            if names[k] in paint:
                others = [o for j, o in colours.items() if j != k and o is not None]
                colour = legible_colour(lambda anywhere, k=k: new_colour(k, anywhere), others)
                colours[k] = colour.astype(np.float64)
                to[k][i], t[k][i] = format_color(colour), 1.0
            elif udv:
                other = np.setdiff1d(np.unique(factors[:, k]), [factors[s, k]])
                to[k][i], t[k][i] = values[k][rng.choice(other)], drawn_t[i, c]
            else:
                partner[k][i] = rng.choice(np.flatnonzero(factors[:, k] != factors[s, k]))
                to[k][i], t[k][i] = values[k][factors[partner[k][i], k]], drawn_t[i, c]
    columns: dict[str, object] = {
        "source_index": source,
        "edited": ["+".join(names[varied[c]] for c in np.flatnonzero(row)) for row in chosen],
    }
    for k in varied:
        columns |= {f"{names[k]}_to": to[k], f"{names[k]}_t": t[k], f"{names[k]}_partner": partner[k]}
    columns |= {f"source_{n}": [values[j][factors[s, j]] for s in source] for j, n in enumerate(names)}
    return pd.DataFrame(columns)


def planned_edits(plan: pd.DataFrame, row: int) -> dict[str, tuple[str, float]]:
    """Attribute -> (value it moves towards, t) for synthetic image ``row`` of a plan."""
    return {
        a: (str(plan.at[row, f"{a}_to"]), float(plan.at[row, f"{a}_t"]))
        for a in str(plan.at[row, "edited"]).split("+")
    }


def describe_edits(edits: dict[str, tuple[str, float]]) -> str:
    """'bg_color #1f77b4, size -> large t=0.40': a preview's row label."""
    return ", ".join(
        f"{a} {v}" if v.startswith("#") else f"{a} -> {v} t={t:.2f}" for a, (v, t) in edits.items()
    )


def _seen_brightness(dataset: AttributeDataset, k: int) -> tuple[float, float]:
    """The HSV value range of attribute k's colours in ``dataset``."""
    attribute = dataset.schema.attributes[k]
    colours = [_rgb(attribute.values[v]) for v in np.unique(dataset.factors[:, k])]
    if any(c is None for c in colours):
        raise UserError(
            f"augment.brightness: seen needs colour values of {attribute.name!r} (names or '#rrggbb')"
        )
    return brightness_range(np.stack(colours))


def _rgb(value: str) -> np.ndarray | None:
    """RGB of a colour value, None for a value that names no colour (no contrast check)."""
    try:
        return np.asarray(parse_color(value), dtype=np.float64)
    except UserError:
        return None


def plan_params(plan: pd.DataFrame, schema) -> list[dict]:
    """``DEAEAugment`` parameters of every row of a plan: one edit per changed attribute."""
    params = []
    for row in range(len(plan)):
        edits = []
        for a, (to, t) in planned_edits(plan, row).items():
            partner = int(plan.at[row, f"{a}_partner"])
            if to.startswith("#"):
                edits.append({"attribute": a, "t": 1.0, "colour": to})
            elif partner >= 0:
                edits.append({"attribute": a, "t": t, "partner": partner})
            else:
                edits.append({"attribute": a, "t": t, "value": schema[a].index(to)})
        params.append({"apply": True, "edits": edits})
    return params


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
    edits: tuple[int, int] = (1, 1),
    udv: bool = False,
    repaint: bool = False,
    brightness: str = "any",
) -> Synthesis:
    """``count`` images from ``dataset``, each with some of ``attributes`` (how many: uniform in
    the range ``edits``) moved towards a partner's value, along a value's unit direction
    (``udv``) or, for the colours in ``paint``, repainted with a new colour (see ``plan_edits``).
    Blocks are disjoint, so the edits of one image compose in its code.

    ``residual`` adds the decoder's change, D(z') - D(z), to the source image instead of
    returning D(z'): the source keeps its own sharp glyph and only the edit is the model's.
    ``repaint`` recolours the source's own pixels for colour edits (see ``DEAEAugment``).
    """
    plan = plan_edits(dataset, attributes, count, t_range, seed, paint, edits, udv, brightness)
    source = plan["source_index"].to_numpy(dtype=np.int64, copy=True)
    images = load_images(dataset)
    augment = DEAEAugment(
        model, attributes=attributes, bank=images, bank_factors=torch.from_numpy(dataset.factors),
        schema_names=dataset.schema.names, residual=residual, mode="udv" if udv else "interpolate",
        repaint=repaint,
    )  # fmt: skip
    params = plan_params(plan, dataset.schema)
    out = []
    bar = tqdm(total=count, desc="synthesise", unit="img", disable=not progress)
    for start in range(0, count, batch_size):
        sl = slice(start, start + batch_size)
        out.append(augment.augment_batch(images[source[sl]], params[sl])[0])
        bar.update(len(out[-1]))
    bar.close()
    return Synthesis(torch.cat(out), plan, images[source])


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
    if dataset.source_file(0) is not None:  # your own images: name the file each one came from
        files = [dataset.source_file(int(i)) for i in records["source_index"]]
        records.insert(records.columns.get_loc("source_index") + 1, "source_file", files)
    n = min(8, len(records))
    tiles = torch.stack([synthesis.sources[:n], synthesis.images[:n]], 1).flatten(0, 1)
    labels = [describe_edits(planned_edits(records, i)) for i in range(n)]
    save_png(
        tmp / "preview.png", image_grid(tiles.permute(0, 2, 3, 1).numpy(), 2, row_labels=labels, scale=2)
    )
    records.to_csv(tmp / "manifest.csv", index=False)
