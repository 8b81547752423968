"""YAML recipes: typed dataclasses, validated on load, with dotted command-line overrides.

Every error names the key path and what was expected, e.g.
``Unknown recipe key 'data.resolutoin' in fonts_small.yaml; valid keys: [...]`` or
``Recipe key 'data.resolution' in fonts_small.yaml must be an integer >= 8; got 'big'.``
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib.resources
import math
import operator
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from deae_aug.errors import RecipeError

_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _bounded(
    default: Any = dataclasses.MISSING,
    ge: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    length: int | None = None,
    nonempty: bool = False,
    name: bool = False,
    **kwargs: Any,
) -> Any:
    """A field with its constraints stated once: numeric bounds (on each element of a list),
    a list's exact ``length``, ``nonempty``, or a ``name`` usable as a file name. ``_build``
    checks them when a recipe loads."""
    bounds = {"ge": ge, "gt": gt, "lt": lt, "le": le, "length": length, "nonempty": nonempty, "name": name}
    return field(default=default, metadata=bounds, **kwargs)


_SYMBOL = {"ge": ">=", "gt": ">", "lt": "<", "le": "<="}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # run folders are named after it: no '/', no '..'
SEED_LIMIT = 2**32  # numpy, torch and the trainer's per-step seed arithmetic all take it
_PASSES = {"ge": operator.ge, "gt": operator.gt, "lt": operator.lt, "le": operator.le}


def _violation(value: Any, meta: Mapping[str, Any]) -> str | None:
    """What ``value`` breaks of the field's constraints (None: nothing)."""
    if value is None:
        return None
    if meta.get("name") and not (_NAME.fullmatch(value) and ".." not in value):
        return "letters, digits, '_', '.' or '-', starting with a letter or digit (it names run folders)"
    if isinstance(value, list):
        if meta.get("nonempty") and not value:
            return "a non-empty list"
        if meta.get("length") is not None and len(value) != meta["length"]:
            return f"a list of exactly {meta['length']} values"
    bounds = {k: meta[k] for k in _SYMBOL if meta.get(k) is not None}
    numbers = value if isinstance(value, list) else [value]
    if bounds and not all(_PASSES[k](v, b) for v in numbers for k, b in bounds.items()):
        where = "every value" if isinstance(value, list) else ""
        return " ".join(filter(None, [where, " and ".join(f"{_SYMBOL[k]} {b}" for k, b in bounds.items())]))
    return None


@dataclass
class DataSection:
    """Which dataset, at which resolution, with which attribute values."""

    dataset: Literal["fonts", "shapes", "fashion", "manifest", "ilab"] = "fonts"
    # fonts / shapes / fashion render at it (None: 32); manifest / ilab images are resized to it
    resolution: int | None = _bounded(None, ge=8)
    # fonts / shapes / fashion: attribute -> value names, or N for the first N values
    values: dict[str, list[str] | int] = field(default_factory=dict)
    block_size: int = _bounded(20, ge=1, le=4096)
    block_sizes: dict[str, int] = field(default_factory=dict)
    # manifest: CSV with a path column and attribute columns; ilab: the iLab Fonts root;
    # fashion: the folder of Fashion-MNIST's idx files (default: Debian's dataset-fashion-mnist)
    manifest: str | None = None
    root: str | None = None
    path_column: str = "path"
    attributes: list[str] | None = None
    resize: int | None = _bounded(None, ge=8)
    # fashion: every photograph in every garment colour, each split taking a photograph once
    # (Colored MNIST's way: a class's own colour has all its photographs, not a tenth of them)
    every_colour: bool = False

    @property
    def render_resolution(self) -> int:
        """The side fonts and shapes render at."""
        return self.resolution or 32


@dataclass
class AugmentationSplit:
    """D_L / D_S / D_test: held-out values go to test only; ``small`` selects D_S inside D_L."""

    held_out: dict[str, list[str]] = field(default_factory=dict)
    small: dict[str, list[str]] = field(default_factory=dict)
    max_large: int | None = _bounded(None, ge=1)
    max_test: int | None = _bounded(None, ge=1)
    max_small: int | None = _bounded(None, ge=1)  # D_S: at most this many of the images ``small`` selects


@dataclass
class BiasGroupSection:
    labels: list[str] = _bounded(default_factory=list, nonempty=True)
    n_bias_values: int = _bounded(1, ge=1)


@dataclass
class DebiasSplit:
    """D_B / D_UB / D_T: label values grouped by how many bias values they appear with."""

    bias: str = "bg_color"
    groups: list[BiasGroupSection] = _bounded(default_factory=list, nonempty=True)
    conflict_fraction: float = _bounded(0.0, ge=0.0, lt=1.0)
    per_label: int = _bounded(100, ge=1)
    test_per_label: int = _bounded(100, ge=1)
    # D_T with this many images per (label, bias value) group instead (replaces test_per_label)
    test_per_group: int | None = _bounded(None, ge=1)
    # a validation split of this many images per (label, bias value) group, disjoint from D_T
    val_per_group: int | None = _bounded(None, ge=1)


@dataclass
class GivenSplit:
    """Your own train / val / test split of manifest data: a manifest column naming each row's
    split, or separate validation and test manifests (``data.manifest`` is then the training set).
    Validation and test rows may leave non-label attributes blank (unlabelled)."""

    column: str | None = None  # manifest column whose values are train, val or test
    val: str | None = None  # CSV with the same columns (relative paths: from the recipe's folder)
    test: str | None = None
    bias: str | None = None  # `debias`: the attribute the training set confounds with the label


@dataclass
class SplitSection:
    label: str | None = None
    augmentation: AugmentationSplit | None = None
    debias: DebiasSplit | None = None
    given: GivenSplit | None = None


@dataclass
class ModelSection:
    """Autoencoder variant and size; widths default to 32, 64, 128 (capped) per scale."""

    variant: Literal["gae", "betavae", "gsl", "deae"] = "deae"
    widths: list[int] = _bounded(default_factory=list, ge=1, le=4096)
    fc: int = _bounded(512, ge=1, le=65536)
    res_blocks: int = _bounded(1, ge=0, le=64)
    # attributes kept out of the decoder's spatial layers, e.g. the colours; empty: the reference
    style: list[str] = field(default_factory=list)
    # layers: the other blocks draw colour-free layers and each style block picks its layer's
    # flat colour (a colour edit cannot move a pixel of shape; midway codes blend in RGB);
    # adain: style blocks scale and shift the upsampling stages' channels
    style_mode: Literal["adain", "layers"] = "adain"
    # attributes whose block only scales the drawing about the image centre (the size of a centred
    # object): a midway code draws the midway scale and cannot change the shape; empty: none
    zoom: list[str] = field(default_factory=list)
    # style_mode layers: what the free layer may paint besides the style colours. rgb: any colour;
    # grey: shading only; none: no free layer. Where a colour sits on the object and is tied to the
    # class, only grey or none keep the colour in its block (docs/experiments/colored_fashion.md)
    free_layer: Literal["rgb", "grey", "none"] = "rgb"


@dataclass
class LossSection:
    swap: float = _bounded(1.0, ge=0.0)
    cycle: float = _bounded(0.0, ge=0.0)
    reg: float = _bounded(0.1, ge=0.0)
    beta: float = _bounded(4.0, ge=0.0)
    # beta-VAE: the KL weight rises linearly from 0 to beta over this fraction of train.steps
    # (KL warm-up), so the decoder learns to use the code before the prior pulls it shut.
    beta_warmup: float = _bounded(0.0, ge=0.0, le=1.0)
    reg_attributes: list[str] | None = _bounded(None, nonempty=True)  # None: every attribute in turn
    reg_t: Literal["sample", "element"] = "sample"
    reg_draws: int = _bounded(1, ge=1)
    # L_reg trains only the decoder (re-encoding without gradient to the encoder); false: the paper
    reg_decoder_only: bool = False
    # Share of L_reg's draws on a colour layer (model.style, style_mode: layers) that move the block
    # towards a new colour, uniform in RGB and legible, instead of a partner's: the encoder then
    # learns to read the other attributes under colours training never shows. 0: the paper.
    reg_novel: float = _bounded(0.0, ge=0.0, le=1.0)
    # L_reg's t on a learned block (not a colour layer) is drawn in [0, reg_t_max]: above 1 it
    # explores past the partner, where extrapolating edits go. 1: the paper.
    reg_t_max: float = _bounded(1.0, ge=1.0, le=4.0)
    # L_reg's moved block must also re-encode as the interpolated block (weight), so in-between
    # codes draw in-between images rather than snapping to an end. 0: the paper (eq. 2).
    reg_moved: float = _bounded(0.0, ge=0.0)
    # Image L1 weights each pixel by 1 + foreground * |pixel - the image's median colour|, so
    # small glyphs on a plain background are learned early; 0 is the reference's plain L1.
    foreground: float = _bounded(0.0, ge=0.0)
    # Partner k's block k should equal the centre's block k (they share attribute k): the swap
    # loss's requirement stated on the code, as a ratio to the gap between blocks that differ.
    latent: float = _bounded(0.0, ge=0.0)
    # L_reg's interpolations of these attributes (colours) should decode to the pixel blend of
    # the two ends; 0 is the reference (see deae_aug/training/losses.py).
    blend: float = _bounded(0.0, ge=0.0)
    blend_attributes: list[str] = field(default_factory=list)
    # Each block predicts its own attribute's value through a linear head (cross-entropy), and
    # L_reg's re-encoded decodes must still predict the values they kept. 0: the reference,
    # which never reads the labels themselves, only which images share them.
    classify: float = _bounded(0.0, ge=0.0)
    # Each centre decoded with one block from another centre must read, to the encoder and heads
    # (both without gradient), as the values it was built from: only the decoder answers. Needs
    # classify (the heads that judge); starts with L_reg (reg_start). 0: the reference.
    counterfactual: float = _bounded(0.0, ge=0.0)
    # model.zoom scales above 1 cost this much per unit of excess, so the decoder learns to draw at
    # the largest size and every other size is an antialiased shrink of it, never a blurring
    # enlargement. 0: the scale is free.
    zoom: float = _bounded(0.0, ge=0.0)
    # model.style colour layers (style_mode: layers) whose values are colour names paint the named
    # colour: the L1 gap between each layer's colour and its value's RGB costs this much. It fixes
    # which layer paints the object and which the background where the data alone cannot (a colour
    # tied to the class). 0: the colours are learned from the images alone.
    palette: float = _bounded(0.0, ge=0.0)
    # L_reg on real pixels: each centre image recoloured on its own pixels (its colours known from
    # its colour-named values) to another value of one colour layer, re-encoded: that layer must
    # paint the new colour and every other block stay. Where a colour is tied to the class it keeps
    # the encoder from reading the colour off the shape. 0: off.
    recolour: float = _bounded(0.0, ge=0.0)
    # L_reg is off for this fraction of train.steps: DEAE first trains as GSL-AE (the reference
    # warm-started from a trained GSL-AE; from scratch the encoder collapses to one code).
    # None: 0.5, or 0 with train.init_from.
    reg_start: float | None = _bounded(None, ge=0.0, lt=1.0)


@dataclass
class TrainSection:
    split: str | None = None  # which split to train on; default: the first (large / biased / all)
    steps: int = _bounded(1000, ge=1)
    groups_per_step: int = _bounded(8, ge=1)
    lr: float = _bounded(5e-4, ge=0.0)
    # cosine: lr falls from train.lr to 5% of it over train.steps (a function of the step, so a
    # resumed run follows the same curve); constant: the reference's fixed lr
    lr_schedule: Literal["constant", "cosine"] = "constant"
    betas: list[float] = _bounded(default_factory=lambda: [0.9, 0.999], ge=0.0, lt=1.0, length=2)
    sampler: Literal["strict", "relaxed"] = "strict"
    loss: LossSection = field(default_factory=LossSection)
    log_every: int = _bounded(10, ge=1)
    sample_every: int = _bounded(250, ge=1)
    checkpoint_every: int = _bounded(250, ge=1)
    workers: int = _bounded(0, ge=0)
    init_from: str | None = None  # warm start: a run folder (e.g. a trained GSL-AE for DEAE)
    # seeds the model alone (weights, groups, L_reg draws); None: the recipe's seed, which also
    # draws the splits. Another train.seed retrains on the very same data.
    seed: int | None = _bounded(None, ge=0, lt=SEED_LIMIT)


@dataclass
class AugmentSection:
    count: int = _bounded(1000, ge=1)
    attributes: list[str] | None = _bounded(None, nonempty=True)  # None: every attribute but split.label
    # interpolate: towards a partner's value by t; swap: t = 1; udv: t block-scales along the unit
    # direction of another value; novel: colour layers get new colours (uniform in RGB), other
    # attributes interpolate. The same four modes as DEAEAugment(mode=...).
    mode: Literal["interpolate", "swap", "udv", "novel"] = "interpolate"
    # above 1 a block moves past its partner (extrapolation; train with train.loss.reg_t_max to match)
    t_range: list[float] = _bounded(default_factory=lambda: [0.25, 1.0], ge=0.0, le=4.0, length=2)
    # how many attributes each image changes at once: [fewest, most], the count uniform between
    edits: list[int] = _bounded(default_factory=lambda: [1, 1], ge=1, length=2)
    residual: bool = False  # add the decoded change to the source image instead of the decode
    # colour edits recolour the source's own pixels (texture kept); other edits as residual
    repaint: bool = False
    # novel mode: new colours uniform in RGB (any), or any hue and saturation at a brightness
    # (HSV value) the attribute's training colours span (seen: light garments stay light)
    brightness: Literal["any", "seen"] = "any"
    out: str | None = None  # None: augmented/<name>
    run: str | None = None  # None: runs/<name>-<variant>


@dataclass
class DebiasSection:
    mode: Literal["latent", "rebalance", "both"] = "latent"  # both: the two, probabilities averaged
    classifier: Literal["logistic", "mlp"] = "logistic"  # latent mode's classifier
    counterfactuals: int = _bounded(0, ge=0)  # latent mode: swapped-bias copies per image (0: paper)
    test_counterfactuals: int = _bounded(0, ge=0)  # latent mode: copies per test image to average over
    classifier_steps: int = _bounded(300, ge=1)  # rebalance mode: classifier steps
    classifier_batch: int = _bounded(64, ge=1)  # rebalance mode: images per classifier step
    classifier_scale: int = _bounded(1, ge=1)  # rebalance mode: ResNet-18 sees images enlarged this much
    network: Literal["resnet18", "cnn"] = "resnet18"  # rebalance mode: the classifier (cnn: small and fast)
    residual: bool = False  # rebalance mode: synthetic image = source + decoded change (as augment.residual)
    # rebalance mode, colour layers: the source's own pixels recoloured (coverage solved from its RGB)
    repaint: bool = False
    out: str | None = None  # None: reports/<name>-<mode>
    run: str | None = None  # None: runs/<name>-<variant>


@dataclass
class Recipe:
    name: str = _bounded("recipe", name=True)
    seed: int = _bounded(0, ge=0, lt=SEED_LIMIT)
    data: DataSection = field(default_factory=DataSection)
    split: SplitSection = field(default_factory=SplitSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainSection = field(default_factory=TrainSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    debias: DebiasSection = field(default_factory=DebiasSection)
    source: str = field(default="<dict>", metadata={"internal": True})

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("source")
        return out


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return f"a mapping of names to {_describe(args[1]).removeprefix('a ').removeprefix('an ')}s"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


class _MismatchError(Exception):
    """A value does not fit a type; carries the key path of the innermost offender."""

    def __init__(self, key: str, expected: str, value: Any) -> None:
        self.key, self.expected, self.value = key, expected, value


def _coerce(tp: Any, value: Any, key: str, source: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise _MismatchError(key, "a mapping", value)
        return _build(tp, value, key, source)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, key, source)
            except _MismatchError:
                continue
        raise _MismatchError(key, _describe(tp), value)
    if origin is Literal:
        if value not in args:
            raise _MismatchError(key, _describe(tp), value)
        return value
    if origin is list:
        if not isinstance(value, list):
            raise _MismatchError(key, _describe(tp), value)
        return [_coerce(args[0], v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _MismatchError(key, _describe(tp), value)
        return {str(k): _coerce(args[1], v, f"{key}.{k}", source) for k, v in value.items()}
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise _MismatchError(key, "a finite number", value)
        return float(value)
    if tp is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 2e-3 (no dot) as a string
    if tp in (int, str, bool) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise _MismatchError(key, _describe(tp), value)


def _check_keys(cls: type, data: Mapping, prefix: str, source: str) -> dict[str, dataclasses.Field]:
    """``cls``'s recipe fields; an unknown key in ``data`` is named, with the nearest valid key."""
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in data:
        if key not in fields:
            path = f"{prefix}.{key}" if prefix else str(key)
            near = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise RecipeError(f"Unknown recipe key {path!r} in {source}; {hint}valid keys: {sorted(fields)}")
    return fields


def _build(cls: type, data: Mapping, prefix: str, source: str) -> Any:
    fields = _check_keys(cls, data, prefix, source)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        path = f"{prefix}.{name}" if prefix else name
        try:
            value = _coerce(hints[name], value, path, source)
        except _MismatchError as m:
            raise RecipeError(
                f"Recipe key {m.key!r} in {source} must be {m.expected}; got {m.value!r}."
            ) from None
        broken = _violation(value, fields[name].metadata)
        if broken:
            raise RecipeError(f"Recipe key {path!r} in {source} must be {broken}; got {value!r}.")
        kwargs[name] = value
    return cls(**kwargs)


def parse_override(text: str) -> tuple[str, Any]:
    """'train.steps=200' -> ('train.steps', 200); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"override {text!r} must look like key.path=value")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        raise RecipeError(f"override {text!r}: the value is not valid YAML") from None


def recipe_from_dict(data: Mapping, source: str = "<dict>", overrides: Sequence[str] = ()) -> Recipe:
    """Validate a nested dict (plus ``key=value`` overrides) into a :class:`Recipe`."""
    if not isinstance(data, Mapping):
        raise RecipeError(f"{source} must hold a mapping of recipe sections, got {type(data).__name__}")
    data = copy.deepcopy(dict(data))
    for text in overrides:
        key, value = parse_override(text)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise RecipeError(f"override {text!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    recipe = _build(Recipe, data, "", source)
    recipe.source = source
    for key in ("t_range", "edits"):
        low, high = getattr(recipe.augment, key)
        if low > high:
            raise RecipeError(
                f"Recipe key 'augment.{key}' in {source} must be [low, high] with low <= high; "
                f"got {[low, high]}."
            )
    return recipe


def shipped_recipes() -> dict[str, Path]:
    """The recipes installed with the package (the repository's recipes/ folder), by file name."""
    folder = Path(str(importlib.resources.files("deae_aug.recipe_files")))
    return {p.name: p for p in sorted(folder.glob("*.yaml"))}


def shipped_recipe(name: str | Path) -> Path | None:
    """The shipped recipe called ``name`` (``.yaml`` optional), or None."""
    name = str(name)
    return shipped_recipes().get(name if name.endswith(".yaml") else f"{name}.yaml")


def find_recipe(name: str | Path) -> tuple[Path, bool]:
    """The recipe file ``name`` means, and whether it is a shipped one: a file of that path if there
    is one, else the shipped recipe of that name (``.yaml`` optional), as ``--recipe`` reads it."""
    path = Path(name)
    if path.is_dir():
        raise RecipeError(f"recipe {path} is a folder; pass a YAML file such as fonts_small.yaml")
    if path.is_file():
        return path, False
    shipped = shipped_recipe(path.name) if path.parent == Path(".") else None
    if shipped is not None:
        return shipped, True
    raise RecipeError(
        f"recipe {name} is neither a file nor a shipped recipe; shipped: {', '.join(shipped_recipes())} "
        "(deae-aug recipes lists them)"
    )


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Load and validate a YAML recipe (a file, or a shipped recipe by name: `find_recipe`);
    ``overrides`` are 'key.path=value' strings. Relative paths in a recipe file resolve against
    its folder; in a shipped recipe, against the working directory (the user's data is there)."""
    path, shipped = find_recipe(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise RecipeError(f"recipe {path} is not a text file (not UTF-8); pass a YAML recipe") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise RecipeError(f"recipe {path} is not valid YAML{where}") from None
    if data is None:
        raise RecipeError(
            f"recipe {path} is empty; a recipe names at least its data (start from "
            "`deae-aug recipes show fonts_small`)"
        )
    if isinstance(data, dict):
        _check_keys(Recipe, data, "", path.name)
        if "data" not in data and not any(o.startswith("data.") for o in overrides):
            raise RecipeError(
                f"recipe {path} has no data section; a recipe names at least its data "
                "(start from `deae-aug recipes show fonts_small`)"
            )
        _resolve_paths(data, Path.cwd() if shipped else path.parent)
    recipe = recipe_from_dict(data, source=path.name, overrides=overrides)
    return _absolute_paths(recipe)


def _absolute_paths(recipe: Recipe) -> Recipe:
    """Paths still relative (typed in ``--set``) resolve against the working directory, so a run
    records absolute paths and ``--run`` works from any directory."""

    def absolute(value: str | None) -> str | None:
        return (
            str(Path(value).expanduser().resolve())
            if value and not Path(value).expanduser().is_absolute()
            else value
        )

    for section, key in (("data", "manifest"), ("data", "root"), ("train", "init_from")):
        owner = getattr(recipe, section)
        setattr(owner, key, absolute(getattr(owner, key)))
    if recipe.split.given is not None:
        recipe.split.given.val, recipe.split.given.test = map(
            absolute, (recipe.split.given.val, recipe.split.given.test)
        )
    fonts = recipe.data.values.get("font")
    if isinstance(fonts, list):
        recipe.data.values["font"] = [
            absolute(f) if Path(f).suffix.lower() in FONT_FILE_SUFFIXES else f for f in fonts
        ]
    return recipe


FONT_FILE_SUFFIXES = (".ttf", ".otf", ".ttc")  # a font value with one of these names a file
PATH_KEYS = (
    ("data", "manifest"),
    ("data", "root"),
    ("train", "init_from"),
    ("split", "given", "val"),
    ("split", "given", "test"),
)


def _resolve_paths(data: dict, folder: Path) -> None:
    """Relative paths written in a recipe file name files next to it, whatever the working
    directory (``--set`` values are relative to the working directory, where they were typed)."""
    for *sections, key in PATH_KEYS:
        parent = data
        for section in sections:
            parent = parent.get(section) if isinstance(parent, dict) else None
        value = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            parent[key] = str((folder / value).resolve())
    values = data.get("data", {}).get("values") if isinstance(data.get("data"), dict) else None
    fonts = values.get("font") if isinstance(values, dict) else None
    if isinstance(fonts, list):  # your own font files, next to the recipe
        data["data"]["values"]["font"] = [
            str((folder / f).resolve())
            if isinstance(f, str)
            and Path(f).suffix.lower() in FONT_FILE_SUFFIXES
            and not Path(f).is_absolute()
            else f
            for f in fonts
        ]
