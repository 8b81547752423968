import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import load_file
from torchvision.models import resnet18

from deae_aug.cli import main
from deae_aug.data.build import build_splits
from deae_aug.data.dataset import load_images
from deae_aug.debias.latent import Debiaser
from deae_aug.evaluate.classifier import enlarge, predict_proba
from deae_aug.recipes import recipe_from_dict
from deae_aug.training.run import load_model

RECIPE = {
    "name": "tiny-bias",
    "data": {
        "dataset": "fonts",
        "resolution": 16,
        "block_size": 4,
        "values": {
            "letter": ["A", "B", "C", "D"],
            "size": ["small", "large"],
            "font_color": ["red", "blue"],
            "bg_color": ["yellow", "silver", "green"],
            "font": ["DejaVu Sans", "DejaVu Serif"],
        },
    },
    "split": {
        "label": "letter",
        "debias": {
            "bias": "bg_color",
            "groups": [
                {"labels": ["A", "B"], "n_bias_values": 1},
                {"labels": ["C", "D"], "n_bias_values": 3},
            ],
            "per_label": 6,
            "test_per_label": 4,
        },
    },
    "model": {"variant": "deae", "widths": [8, 16], "fc": 32},
    "train": {"steps": 3, "groups_per_step": 2, "sampler": "relaxed", "sample_every": 100},
    "debias": {"classifier_steps": 2},
}


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "bias.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    return path


@pytest.mark.parametrize("mode", ["latent", "rebalance", "both"])
def test_debias_writes_classifier_and_report(tmp_path, recipe, mode):
    out = tmp_path / "report"
    args = [
        "debias",
        "--recipe",
        str(recipe),
        "--mode",
        mode,
        "--run",
        str(tmp_path / "run"),
        "--out",
        str(out),
    ]
    if mode != "latent":
        args += ["--set", "debias.classifier_scale=2"]  # the ResNet-18 sees 32 px, not 16
        args += ["--set", "debias.residual=true"]
    if mode == "both":  # as fonts_bias.yaml: the DEAE trains with per-block heads
        args += ["--set", "train.loss.classify=0.1"]
    result = CliRunner().invoke(main, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == mode and report["test_images"] == 16
    assert 4 <= report["groups"] <= 12  # (letter, background) pairs present in the 16 test images
    for key in ("unbiased", "worst_group", "bias_conflicting"):
        assert 0.0 <= report[key] <= 1.0
    assert report["worst_group"] <= report["unbiased"]
    files = ["classifier_latent", "classifier_rebalance"] if mode == "both" else ["classifier"]
    assert all((out / f"{f}.safetensors").is_file() for f in files)
    assert "worst-group" in (out / "report.md").read_text()
    per_group = [acc for row in report["group_accuracy"].values() for acc in row.values()]
    assert len(per_group) == report["groups"] and min(per_group) == report["worst_group"]
    letter, background = report["worst_group_at"]  # named, with its size: 1 of 2 reads 0.5
    assert report["group_accuracy"][letter][background] == report["worst_group"]
    markdown = (out / "report.md").read_text()
    assert f"{report['worst_group_correct']} of {report['worst_group_size']}" in markdown
    assert "| letter |" in markdown  # the group table, one row per letter
    by_value = report["accuracy_by_value"]  # where misses fall, by every attribute but the label
    assert "letter" not in by_value and "bg_color" in by_value and "Lowest accuracy" in markdown
    assert min(by_value["bg_color"].values()) <= report["unbiased"] <= max(by_value["bg_color"].values())
    if mode == "both":
        assert report["latent"]["counterfactuals"] == 0 and report["rebalance"]["residual"] is True
        assert len(load_model(tmp_path / "run")[0].heads) == 5  # one per attribute, saved and reloaded
    if mode == "rebalance":
        # every (letter, background) pair is filled up to the largest pair (A on its one background, 6):
        # 4 letters x 3 backgrounds x 6 = 72 images, of which the 24 real ones are D_B
        assert report["training_images"] == 72 and report["synthetic_images"] == 48
        assert report["classifier_scale"] == 2 and report["residual"] is True
        with safe_open(out / "classifier.safetensors", "pt") as f:
            assert f.metadata()["input_scale"] == "2"


def test_a_debiaser_from_a_run_reads_names_and_label_from_it(tmp_path):
    from deae_aug.training.run import training_split
    from deae_aug.training.trainer import train

    recipe = recipe_from_dict(RECIPE)
    train(recipe, tmp_path / "run", device="cpu", progress=False)
    deb = Debiaser.from_run(tmp_path / "run", "bg_color", classifier="mlp", counterfactuals=1)
    assert (deb.names, deb.label, deb.bias) == (list(recipe.data.values), "letter", ["bg_color"])
    assert (deb.classifier, deb.counterfactuals) == ("mlp", 1)
    train_split = training_split(recipe)
    letters = train_split.factors[:, 0]
    assert deb.fit(load_images(train_split), letters).predict(load_images(train_split)).shape == letters.shape


def test_debias_needs_a_debias_split(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**RECIPE, "split": {"label": "letter"}}))
    result = CliRunner().invoke(main, ["debias", "--recipe", str(bad), "--run", str(tmp_path / "r")])
    assert result.exit_code == 2 and "split.debias" in result.output


def test_both_predicts_the_mean_of_the_two_saved_classifiers(tmp_path, recipe):
    out, run = tmp_path / "report", tmp_path / "run"
    # enough ResNet-18 steps that its probabilities are not uniform and move the mean off the latent part's
    sets = [
        "--set",
        "debias.classifier_scale=2",
        "--set",
        "debias.residual=true",
        "--set",
        "debias.classifier_steps=30",
    ]
    args = ["debias", "--recipe", str(recipe), "--mode", "both", "--run", str(run), "--out", str(out), *sets]
    result = CliRunner().invoke(main, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    model = load_model(run)[0].eval()
    test = build_splits(recipe_from_dict(RECIPE))["test"]
    images, factors = load_images(test), test.factors
    latent = Debiaser.load(out / "classifier_latent.safetensors", model)
    proba = np.zeros((len(images), 4))
    proba[:, latent.classes_] = latent.predict_proba(images)
    resnet = resnet18(num_classes=4)
    resnet.load_state_dict(load_file(out / "classifier_rebalance.safetensors"))
    proba += predict_proba(resnet, enlarge(images, 2)).numpy()
    expected = (proba.argmax(1) == factors[:, test.schema.position("letter")]).mean()
    assert json.loads((out / "report.json").read_text())["unbiased"] == pytest.approx(expected)
    alone = (latent.predict(images) == factors[:, test.schema.position("letter")]).mean()
    assert expected != pytest.approx(alone)  # the ResNet's half changed some predictions
