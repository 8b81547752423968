"""Recipe -> dataset and splits. Errors say which recipe key to change."""

from __future__ import annotations

from pathlib import Path

from deae_aug.data.dataset import AttributeDataset
from deae_aug.data.fonts import FontsDataset
from deae_aug.data.manifest import ILabFontsDataset, ManifestDataset
from deae_aug.data.shapes import ShapesDataset
from deae_aug.data.splits import BiasGroup, augmentation_splits, debias_splits
from deae_aug.errors import RecipeError, UserError
from deae_aug.recipes import DataSection, Recipe


def build_dataset(data: DataSection, source: str = "recipe") -> AttributeDataset:
    """The whole dataset a recipe describes (before any split)."""
    if data.dataset in ("fonts", "shapes"):
        cls = FontsDataset if data.dataset == "fonts" else ShapesDataset
        try:
            dataset = cls(values=data.values or None, resolution=data.render_resolution)
        except UserError as e:
            raise RecipeError(f"Recipe key 'data.values' in {source}: {e}") from None
    else:
        if data.values:
            raise RecipeError(f"Recipe key 'data.values' in {source} applies to fonts and shapes only")
        if None not in (data.resolution, data.resize) and data.resolution != data.resize:
            raise RecipeError(
                f"Recipe keys 'data.resolution' ({data.resolution}) and 'data.resize' ({data.resize}) in "
                f"{source} disagree; both resize {data.dataset} images, so give one"
            )
        resize = data.resolution or data.resize
        if data.dataset == "manifest":
            if not data.manifest:
                raise RecipeError(f"Recipe key 'data.manifest' in {source} must name a CSV file")
            if not Path(data.manifest).is_file():
                raise RecipeError(
                    f"Recipe key 'data.manifest' in {source} names {data.manifest}, which is not a file "
                    "(a relative path in a recipe file is read from the recipe's folder)"
                )
            dataset = ManifestDataset(
                data.manifest,
                root=data.root,
                path_column=data.path_column,
                attributes=data.attributes,
                resize=resize,
            )
        else:
            if not data.root:
                raise RecipeError(f"Recipe key 'data.root' in {source} must name the iLab Fonts folder")
            dataset = ILabFontsDataset(data.root, attributes=data.attributes, resize=resize)
    try:
        dataset.schema = dataset.schema.with_block_sizes(
            {**{n: data.block_size for n in dataset.schema.names}, **data.block_sizes}
        )
    except UserError as e:
        raise RecipeError(f"Recipe key 'data.block_sizes' in {source}: {e}") from None
    return dataset


def build_splits(recipe: Recipe) -> dict[str, AttributeDataset]:
    """Named splits of the recipe's dataset; ``{"all": dataset}`` when the recipe has no split."""
    dataset = build_dataset(recipe.data, recipe.source)
    split = recipe.split
    if split.augmentation is not None and split.debias is not None:
        raise RecipeError(f"Recipe {recipe.source}: give split.augmentation or split.debias, not both")
    if split.label is not None and split.label not in dataset.schema.names:
        raise RecipeError(
            f"Recipe key 'split.label' in {recipe.source} must name an attribute of the data "
            f"({list(dataset.schema.names)}); got {split.label!r}."
        )
    try:
        if split.augmentation is not None:
            a = split.augmentation
            return augmentation_splits(dataset, a.held_out, a.small, a.max_large, a.max_test, recipe.seed)
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
            )
    except UserError as e:
        raise RecipeError(f"Recipe key 'split' in {recipe.source}: {e}") from None
    return {"all": dataset}
