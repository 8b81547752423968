"""Recipe -> dataset and splits. Errors say which recipe key to change."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deae_aug.data.dataset import AttributeDataset
from deae_aug.data.fashion import FashionDataset
from deae_aug.data.fonts import FontsDataset
from deae_aug.data.manifest import SPLIT_NAMES, ILabFontsDataset, ManifestDataset, given_split_table
from deae_aug.data.shapes import ShapesDataset
from deae_aug.data.splits import BiasGroup, augmentation_splits, debias_splits
from deae_aug.errors import DataError, RecipeError, UserError
from deae_aug.recipes import DataSection, Recipe


def build_dataset(data: DataSection, source: str = "recipe") -> AttributeDataset:
    """The whole dataset a recipe describes (before any split)."""
    if data.every_colour and data.dataset != "fashion":
        raise RecipeError(f"Recipe key 'data.every_colour' in {source} applies to data.dataset: fashion only")
    if data.dataset in ("fonts", "shapes"):
        cls = FontsDataset if data.dataset == "fonts" else ShapesDataset
        try:
            dataset = cls(values=data.values or None, resolution=data.render_resolution)
        except UserError as e:
            raise RecipeError(f"Recipe key 'data.values' in {source}: {e}") from None
    elif data.dataset == "fashion":
        try:
            dataset = FashionDataset(
                root=data.root,
                values=data.values or None,
                resolution=data.render_resolution,
                every_colour=data.every_colour,
            )
        except DataError:
            raise
        except UserError as e:
            raise RecipeError(f"Recipe key 'data.values' in {source}: {e}") from None
    elif data.dataset == "manifest":
        dataset = ManifestDataset(
            _manifest(data, source), root=data.root, path_column=data.path_column,
            attributes=data.attributes, resize=_resize(data, source),
        )  # fmt: skip
    else:
        resize = _resize(data, source)
        if not data.root:
            raise RecipeError(f"Recipe key 'data.root' in {source} must name the iLab Fonts folder")
        dataset = ILabFontsDataset(data.root, attributes=data.attributes, resize=resize)
    return _with_block_sizes(dataset, data, source)


def _resize(data: DataSection, source: str) -> int | None:
    """The side manifest and iLab images are resized to (None: their own size)."""
    if data.values:
        raise RecipeError(f"Recipe key 'data.values' in {source} applies to fonts and shapes only")
    if None not in (data.resolution, data.resize) and data.resolution != data.resize:
        raise RecipeError(
            f"Recipe keys 'data.resolution' ({data.resolution}) and 'data.resize' ({data.resize}) in "
            f"{source} disagree; both resize {data.dataset} images, so give one"
        )
    return data.resolution or data.resize


def _manifest(data: DataSection, source: str, key: str = "data.manifest", value: str | None = None) -> str:
    """The CSV a recipe key names, checked to exist."""
    value = data.manifest if key == "data.manifest" else value
    if not value:
        raise RecipeError(f"Recipe key {key!r} in {source} must name a CSV file")
    if not Path(value).is_file():
        raise RecipeError(
            f"Recipe key {key!r} in {source} names {value}, which is not a file "
            "(a relative path in a recipe file is read from the recipe's folder)"
        )
    return value


def _with_block_sizes(dataset: AttributeDataset, data: DataSection, source: str) -> AttributeDataset:
    try:
        dataset.schema = dataset.schema.with_block_sizes(
            {**{n: data.block_size for n in dataset.schema.names}, **data.block_sizes}
        )
    except UserError as e:
        raise RecipeError(f"Recipe key 'data.block_sizes' in {source}: {e}") from None
    return dataset


def given_splits(recipe: Recipe) -> dict[str, AttributeDataset]:
    """train / val / test as the user split them (``split.given``); val and test when present."""
    data, given, source, label = recipe.data, recipe.split.given, recipe.source, recipe.split.label
    if data.dataset != "manifest":
        raise RecipeError(
            f"Recipe key 'split.given' in {source} needs data.dataset: manifest (your own images)"
        )
    if given.column is None and given.val is None and given.test is None:
        raise RecipeError(
            f"Recipe key 'split.given' in {source}: name the manifest's split column (split.given.column) "
            "or validation and test manifests (split.given.val, split.given.test)"
        )
    if given.column is not None and (given.val or given.test):
        raise RecipeError(
            f"Recipe key 'split.given' in {source}: "
            "give split.given.column or split.given.val / test, not both"
        )
    extra = {k: _manifest(data, source, f"split.given.{k}", getattr(given, k)) for k in ("val", "test")
             if getattr(given, k) is not None}  # fmt: skip
    table, names, columns, origins = given_split_table(
        _manifest(data, source), data.path_column, given.column, root=data.root, **extra
    )
    if not (names == "train").any():
        raise RecipeError(
            f"Recipe key 'split.given.column' in {source}: no row of the manifest has split 'train'"
        )
    dataset = ManifestDataset(
        data.manifest, root=data.root, path_column=data.path_column,
        attributes=data.attributes or [c for c in columns if c != data.path_column],
        resize=_resize(data, source), frame=table, unlabelled_ok=names != "train", origins=origins,
    )  # fmt: skip
    dataset = _with_block_sizes(dataset, data, source)
    for key, name in (("split.label", label), ("split.given.bias", given.bias)):
        if name is not None and name not in dataset.schema.names:
            raise RecipeError(
                f"Recipe key {key!r} in {source} must name an attribute of the data "
                f"({list(dataset.schema.names)}); got {name!r}."
            )
    if label is not None and label == given.bias:
        raise RecipeError(
            f"Recipe key 'split.given.bias' in {source} must differ from split.label ({label!r})"
        )
    if label is not None:
        blank = np.flatnonzero(dataset.factors[:, dataset.schema.position(label)] < 0)
        if len(blank):
            file, line = origins[blank[0]]
            raise DataError(
                f"{file}, row {line}: the label column {label!r} is blank; every image needs its label"
            )
    return {n: dataset.select(np.flatnonzero(names == n)) for n in SPLIT_NAMES if (names == n).any()}


def build_splits(recipe: Recipe) -> dict[str, AttributeDataset]:
    """Named splits of the recipe's dataset; ``{"all": dataset}`` when the recipe has no split."""
    split = recipe.split
    chosen = [k for k in ("augmentation", "debias", "given") if getattr(split, k) is not None]
    if len(chosen) > 1:
        raise RecipeError(
            f"Recipe {recipe.source}: give one of split.augmentation, split.debias and split.given"
        )
    if split.given is not None:
        return given_splits(recipe)
    dataset = build_dataset(recipe.data, recipe.source)
    if split.label is not None and split.label not in dataset.schema.names:
        raise RecipeError(
            f"Recipe key 'split.label' in {recipe.source} must name an attribute of the data "
            f"({list(dataset.schema.names)}); got {split.label!r}."
        )
    try:
        if split.augmentation is not None:
            a = split.augmentation
            return augmentation_splits(
                dataset, a.held_out, a.small, a.max_large, a.max_test, recipe.seed, a.max_small
            )
        if split.debias is not None:
            d = split.debias
            if split.label is None:
                raise UserError("split.label must name the label attribute")
            groups = [BiasGroup(tuple(g.labels), g.n_bias_values) for g in d.groups]
            return debias_splits(
                dataset,
                split.label,
                d.bias,
                groups,
                d.conflict_fraction,
                d.per_label,
                d.test_per_label,
                recipe.seed,
                d.test_per_group,
                d.val_per_group,
            )
    except UserError as e:
        raise RecipeError(f"Recipe key 'split' in {recipe.source}: {e}") from None
    return {"all": dataset}
