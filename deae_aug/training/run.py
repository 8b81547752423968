"""A run folder as one object: ``Run`` knows its latest checkpoint, the recipe and schema it
was trained with, whether it is finished, whether a recipe would train the same model, and how
to load that model. Inference (``DEAEAugment``, ``Debiaser``, explore) reads runs through it
without importing the trainer; ``training.trainer.ensure_trained`` trains or resumes one.

Also here: what a recipe means for a run, shared by the trainer and ``Run.check``: the split it
trains on, the model it builds, and which recipe settings decide what a trained model is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from deae_aug.data.build import build_splits
from deae_aug.data.dataset import AttributeDataset
from deae_aug.errors import UserError
from deae_aug.models.autoencoder import Autoencoder, ModelConfig
from deae_aug.recipes import Recipe, recipe_from_dict
from deae_aug.training.checkpoint import describe_mismatch, latest_checkpoint, load_meta, restore_weights


def training_split(recipe: Recipe) -> AttributeDataset:
    """The split a recipe trains on: ``train.split``, else the first (D_S, D_B or the whole set)."""
    splits = build_splits(recipe)
    name = recipe.train.split or next(iter(splits))
    if name not in splits:
        raise UserError(f"Recipe key 'train.split' in {recipe.source}: {name!r} is not one of {list(splits)}")
    return splits[name]


def check_attribute_keys(recipe: Recipe, dataset: AttributeDataset) -> None:
    """Every key that names attributes, checked against the data before training starts, whichever
    command trains (a wrong ``augment`` key must not wait for ``train`` to finish)."""
    names = list(dataset.schema.names)
    loss, a, label = recipe.train.loss, recipe.augment, recipe.split.label
    for key, values in (
        ("model.style", recipe.model.style),
        ("model.zoom", recipe.model.zoom),
        ("train.loss.reg_attributes", loss.reg_attributes or []),
        ("train.loss.blend_attributes", loss.blend_attributes),
        ("augment.attributes", a.attributes or []),
    ):
        attribute_positions(recipe, dataset, key, values)
    where = f"in {recipe.source}"
    if not_style := [n for n in loss.blend_attributes if n not in recipe.model.style]:
        raise UserError(
            f"Recipe key 'train.loss.blend_attributes' {where}: {not_style} are not in model.style"
        )
    if label is not None and label in (a.attributes or []):
        raise UserError(f"Recipe key 'augment.attributes' {where} lists the label {label!r}")
    varied = a.attributes or [n for n in names if n != label]
    if a.edits[1] > len(varied):
        raise UserError(
            f"Recipe key 'augment.edits' {where} asks for up to {a.edits[1]} edits per image "
            f"but augment.attributes has {len(varied)}: {varied}"
        )
    paintable = recipe.model.style_mode == "layers" and set(varied) & set(recipe.model.style)
    if a.mode == "novel" and not paintable:
        raise UserError(
            f"Recipe key 'augment.mode' {where}: novel paints new colours, which needs some of "
            f"augment.attributes {varied} in model.style with model.style_mode: layers"
        )
    for key, section in (("augment", a), ("debias", recipe.debias)):
        if section.repaint and section.residual:
            raise UserError(f"Recipe keys '{key}.repaint' and '{key}.residual' {where}: choose one")
        if section.repaint and recipe.model.style_mode != "layers":
            raise UserError(
                f"Recipe key '{key}.repaint' {where} recolours colour layers: it needs model.style "
                "with model.style_mode: layers"
            )


def attribute_positions(recipe: Recipe, dataset: AttributeDataset, key: str, names: list[str]) -> list[int]:
    """Schema positions of the attributes a recipe key names; a clear error names the unknown ones."""
    unknown = [n for n in names if n not in dataset.schema.names]
    if unknown:
        raise UserError(
            f"Recipe key '{key}' in {recipe.source}: unknown attributes {unknown}; "
            f"the dataset has {list(dataset.schema.names)}"
        )
    return [dataset.schema.position(n) for n in names]


def model_config(recipe: Recipe, dataset: AttributeDataset) -> ModelConfig:
    return ModelConfig(
        variant=recipe.model.variant,
        resolution=dataset.resolution,
        block_sizes=[a.block_size for a in dataset.schema.attributes],
        widths=list(recipe.model.widths),
        fc=recipe.model.fc,
        res_blocks=recipe.model.res_blocks,
        head_classes=[len(a.values) for a in dataset.schema.attributes] if recipe.train.loss.classify else [],
        style=attribute_positions(recipe, dataset, "model.style", recipe.model.style),
        style_mode=recipe.model.style_mode,
        zoom=attribute_positions(recipe, dataset, "model.zoom", recipe.model.zoom),
        free_layer=recipe.model.free_layer,
    )


_BOOKKEEPING = ("steps", "log_every", "sample_every", "checkpoint_every", "workers")
# L_reg's settings (and blend, which rides on L_reg's decodes): only DEAE reads them
_DEAE_ONLY = ("reg", "reg_attributes", "reg_t", "reg_draws", "reg_decoder_only", "reg_novel",
              "reg_t_max", "reg_moved", "blend", "blend_attributes")  # fmt: skip
_BETAVAE_ONLY = ("beta", "beta_warmup")  # the KL term: only the beta-VAE has one


def what_was_learned(recipe: dict) -> dict:
    """The parts of a recipe dict that decide what a trained model is: seed, data, splits and
    every training setting except bookkeeping and the loss settings its variant never reads (a
    GSL-AE is the same model whatever L_reg's weight or beta; ``reg_start`` also switches the
    counterfactual term on, so it only drops out when that is off). ``train.seed`` unset means
    the recipe's seed, so the two spellings are one model."""
    train = {k: v for k, v in recipe["train"].items() if k not in _BOOKKEEPING}
    data = dict(recipe["data"])
    for owner, key in ((data, "manifest"), (data, "root"), (train, "init_from")):  # a relative path
        if owner.get(key) and not Path(owner[key]).is_absolute():  # saved by an older version
            owner[key] = str(Path(owner[key]).resolve())
    if train.get("seed") is None:
        train["seed"] = recipe["seed"]
    variant, loss = recipe["model"]["variant"], train["loss"]
    unread = () if variant == "betavae" else _BETAVAE_ONLY
    if variant != "deae":
        unread += _DEAE_ONLY + (("reg_start",) if not loss.get("counterfactual") else ())
    train["loss"] = {k: v for k, v in loss.items() if k not in unread}
    return {"seed": recipe["seed"], "data": data, "split": recipe["split"], "train": train}


def check_compatible(
    meta: dict, cfg: ModelConfig, schema: dict, what: str, ignore_variant: bool = False
) -> None:
    saved, current = (
        # model keys added since the checkpoint was written take their defaults
        {"model": {**ModelConfig().to_dict(), **meta["model"]}, "schema": meta["schema"]},
        {"model": cfg.to_dict(), "schema": schema},
    )
    if ignore_variant:  # a warm start may change the variant and add heads
        for key in ("variant", "head_classes"):
            saved["model"].pop(key)
            current["model"].pop(key)
    diffs = describe_mismatch(saved, current)
    if diffs:
        raise UserError(f"{what} does not match the recipe: " + "; ".join(diffs[:3]))


@dataclass(frozen=True)
class Run:
    """A run folder (or one checkpoint folder inside it)."""

    path: Path

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    @property
    def checkpoint(self) -> Path | None:
        """The checkpoint to read: the folder itself when it is one, else the run's latest."""
        return self.path if (self.path / "meta.json").is_file() else latest_checkpoint(self.path)

    @property
    def trained(self) -> bool:
        return self.checkpoint is not None

    def meta(self) -> dict:
        """The checkpoint's meta.json: step, model config, schema, recipe."""
        checkpoint = self.checkpoint
        if checkpoint is None:
            raise UserError(
                f"{self.path} holds no checkpoint; "
                f"train one with `deae-aug train --recipe R --out {self.path}`"
            )
        return load_meta(checkpoint)

    def recipe(self) -> Recipe:
        """The recipe the run was trained with (keys added since take their defaults)."""
        return recipe_from_dict(self.meta()["recipe"])

    def attributes(self) -> tuple[tuple[str, ...], str | None]:
        """Attribute names in block order, and the recipe's label (None without one)."""
        meta = self.meta()
        return tuple(a["name"] for a in meta["schema"]["attributes"]), meta["recipe"]["split"].get("label")

    def training_split(self) -> AttributeDataset:
        """The images the run was trained on, rebuilt from its recipe."""
        return training_split(self.recipe())

    def finished(self, recipe: Recipe | None = None) -> bool:
        """Whether the run has trained all of ``recipe``'s steps (default: its own recipe's)."""
        return self.meta()["step"] >= (recipe or self.recipe()).train.steps

    def check(self, recipe: Recipe) -> None:
        """Refuse, naming the first differences, a recipe that would train another model."""
        meta, dataset = self.meta(), training_split(recipe)
        check_compatible(meta, model_config(recipe, dataset), dataset.schema.to_dict(), f"run {self.path}")
        saved = recipe_from_dict(meta["recipe"]).to_dict()  # keys added since take their defaults
        diffs = describe_mismatch(what_was_learned(saved), what_was_learned(recipe.to_dict()))
        if diffs:
            raise UserError(
                f"run {self.path} was trained on other data or settings than the recipe ("
                + "; ".join(diffs[:3])
                + "); pick another run folder or delete this one"
            )

    def load(self, device: str | torch.device = "cpu") -> tuple[Autoencoder, dict]:
        """The trained model, in eval mode on ``device``, and the checkpoint's meta."""
        meta = self.meta()
        known = {f.name for f in dataclasses.fields(ModelConfig)}
        unknown = sorted(set(meta["model"]) - known)
        if unknown:
            raise UserError(
                f"checkpoint {self.checkpoint} describes a model with keys this version does not know "
                f"({', '.join(unknown[:3])}); train the run again with this version"
            )
        try:
            model = Autoencoder(ModelConfig(**meta["model"]))
        except (TypeError, ValueError, RuntimeError) as e:
            raise UserError(
                f"checkpoint {self.checkpoint}/meta.json describes no buildable model ({e})"
            ) from None
        restore_weights(model, self.checkpoint)
        return model.to(device).eval(), meta


def load_model(run: str | Path, device: str | torch.device = "cpu") -> tuple[Autoencoder, dict]:
    """A trained model and its meta (schema, recipe, step) from a run folder or checkpoint folder."""
    return Run(run).load(device)
