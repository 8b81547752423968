"""Mutated shipped recipes: each either loads and prepares training, or fails with one line.

A seeded mutation generator, stopping where training would start (splits, model and optimizer
built): a random leaf of a shipped recipe gets a value of the wrong type, out of range,
non-finite, empty or too long, or an unknown key appears. Anything other than a clean start or
a one-line ``UserError`` (which the CLI prints as one line, exit status 2) is a bug.
"""

from __future__ import annotations

import copy
import math
import random
from pathlib import Path

import pytest
import torch
import yaml

from deae_aug.errors import UserError
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.recipes import Recipe, recipe_from_dict
from deae_aug.training.run import check_attribute_keys, model_config, training_split
from deae_aug.training.trainer import loss_config
from tests.data.test_fashion import write_fashion

RECIPES = sorted(Path(__file__).resolve().parents[1].glob("recipes/*.yaml"))
MUTANTS = (
    lambda v: "x",
    lambda v: -1,
    lambda v: 0,
    lambda v: -0.5,
    lambda v: 10**30,
    lambda v: math.nan,
    lambda v: math.inf,
    lambda v: [],
    lambda v: {},
    lambda v: None,
    lambda v: True,
    lambda v: [v, v, v],
    lambda v: [v],
    lambda v: {"unknown": v},
)


def leaves(node, path=()):
    """Every (path, value) in a nested dict/list, sections and lists included."""
    yield path, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from leaves(child, (*path, key))


def mutate(data: dict, rng: random.Random) -> dict:
    data = copy.deepcopy(data)
    paths = [p for p, _ in leaves(data) if p]
    path = rng.choice(paths)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if rng.random() < 0.1 and isinstance(parent, dict):
        parent[f"{path[-1]}_typo"] = parent[path[-1]]  # an unknown key beside a real one
    else:
        parent[path[-1]] = rng.choice(MUTANTS)(parent[path[-1]])
    return data


def prepare(recipe: Recipe) -> None:
    """What ``deae-aug train`` does before its first step."""
    split = training_split(recipe)
    check_attribute_keys(recipe, split)
    loss_config(recipe, split)
    model = Autoencoder(model_config(recipe, split))
    torch.optim.Adam(model.parameters(), lr=recipe.train.lr, betas=tuple(recipe.train.betas))


def on_generated_photographs(original: dict, root: Path) -> dict:
    """A Fashion-MNIST recipe pointed at generated idx files (no test needs the Debian package),
    its split sizes cut to what 3,000 photographs hold."""
    data = copy.deepcopy(original)
    data["data"]["root"] = str(root)
    split = data["split"].get("debias") or data["split"]["augmentation"]
    cuts = {"per_label": 10, "test_per_group": 1, "val_per_group": 1, "max_small": 100, "max_large": 300,
            "max_test": 100}  # fmt: skip
    split.update({k: v for k, v in cuts.items() if k in split})
    return data


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_mutated_recipes_load_or_fail_on_one_line(recipe: Path, tmp_path: Path) -> None:
    rng = random.Random(recipe.stem)
    original = yaml.safe_load(recipe.read_text())
    if original["data"].get("dataset") == "fashion":
        write_fashion(tmp_path, per_part=1500)
        original = on_generated_photographs(original, tmp_path)
    failures = 0
    for _ in range(80):
        data = mutate(original, rng)
        try:
            prepare(recipe_from_dict(data, source=recipe.name))
        except UserError as e:
            failures += 1
            assert "\n" not in str(e), str(e)
            assert recipe.name in str(e) or "Recipe" in str(e) or "recipe" in str(e), str(e)
    assert failures > 40  # most mutations are invalid: the generator does reach the validation
