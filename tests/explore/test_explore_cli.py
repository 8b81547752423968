import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from deae_aug.cli import main
from deae_aug.data.dataset import load_images
from deae_aug.data.fonts import parse_color
from deae_aug.explore.figures import explore
from deae_aug.explore.novel import delta_e
from deae_aug.recipes import recipe_from_dict
from deae_aug.training.run import load_model, training_split
from deae_aug.training.trainer import train
from tests.augment.test_transform import RECIPE


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("explore-run")
    train(recipe_from_dict(RECIPE), path, device="cpu", progress=False)
    return path


@pytest.mark.parametrize(
    ("mode", "attribute", "rows"),
    [("swap", None, 3), ("interpolate", "bg_color", 3), ("interpolate", None, 15), ("random", None, 3),
     ("udv", "font_color", 2), ("centre", "size", 3)],
)  # fmt: skip
def test_explore_writes_grid_and_record(run, tmp_path, mode, attribute, rows):
    args = ["explore", "--run", str(run), "--mode", mode, "--n", "3", "--steps", "5", "--out", str(tmp_path)]
    if attribute:
        args += ["--attribute", attribute]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    name = f"{mode}-{attribute or 'all'}-seed0"
    record = json.loads((tmp_path / f"{name}.json").read_text())
    assert record["mode"] == mode and len(record["sources"]) == 3
    grid = Image.open(tmp_path / f"{name}.png")
    assert grid.height == 16 + rows * (32 + 2) + 2  # a header, then 16 px tiles at scale 2, a row per edit
    columns = {
        "swap": ["base", "donor", *record.get("columns", [])[2:]],
        "udv": ["source"],
        "centre": ["source"],
    }
    assert record["columns"][: len(columns.get(mode, ["source", "partner"]))] == columns.get(
        mode, ["source", "partner"]
    )
    width = len(record["columns"]) * (32 + 2) + 2  # every column headed, none more
    assert grid.width - width in (110, 0) or grid.width - width >= 110
    if mode == "interpolate":
        assert record["columns"][2:] == ["t=0", "t=0.25", "t=0.5", "t=0.75", "t=1"]


def test_explore_errors_name_the_problem(run):
    result = CliRunner().invoke(main, ["explore", "--run", str(run), "--mode", "udv"])
    assert result.exit_code == 2 and "needs --attribute" in result.output
    result = CliRunner().invoke(
        main, ["explore", "--run", str(run), "--mode", "udv", "--attribute", "colour"]
    )
    assert result.exit_code == 2 and "'colour'" in result.output
    result = CliRunner().invoke(main, ["explore", "--run", str(run), "--mode", "swap", "--udv-fit", "oracle"])
    assert result.exit_code == 2 and "--udv-fit oracle applies to --mode udv only" in result.output


def test_discover_finds_colours_no_training_value_has(run, tmp_path):
    args = ["explore", "--run", str(run), "--mode", "discover", "--attribute", "bg_color", "--n", "3",
            "--steps", "4", "--out", str(tmp_path)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "discover-bg_color-seed0.json").read_text())
    assert record["novel"] >= 1 and len(record["colours"]) >= 1
    finds = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in record["colours"]])
    known = np.array([parse_color(v) for v in RECIPE["data"]["values"]["bg_color"]])
    assert delta_e(finds, known).min() >= 10


def test_discover_refuses_attributes_that_are_not_colours(run, tmp_path):
    args = ["explore", "--run", str(run), "--mode", "discover", "--attribute", "letter"]
    args += ["--out", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "needs a colour attribute; 'letter'" in result.output


class RednessOracle(torch.nn.Module):
    """Reads value 0 of an attribute where the image is not red, the other values where it is."""

    def __init__(self, n_values: int) -> None:
        super().__init__()
        self.n_values = n_values

    def probabilities(self, images, k):
        red = torch.sigmoid(8 * (images[:, 0] - images[:, 1:].mean(1)).mean((1, 2)))
        return torch.stack([1 - red] + [red / (self.n_values - 1)] * (self.n_values - 1), 1)


def test_udv_can_be_fitted_on_oracle_scored_interpolations(run):
    model, meta = load_model(run)
    dataset = training_split(recipe_from_dict(meta["recipe"]))
    args = ("udv", model, dataset.schema, load_images(dataset), dataset.factors, "bg_color", 2, 4, 0)
    assert dataset.schema.names[3] == "bg_color"
    labelled = explore(*args)[1]
    grid, scored = explore(*args, oracle=RednessOracle(len(dataset.schema.attributes[3].values)))
    assert labelled["fit"] == "labels" and scored["fit"] == "oracle-scored interpolations"
    assert grid.width > 0 and scored["scale"] == labelled["scale"]
