from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from PIL import Image

from deae_aug.augment import synthesis as synthesis_module
from deae_aug.cli import main

RECIPE = str(Path(__file__).resolve().parents[2] / "recipes" / "fonts_small.yaml")
FAST = [
    "--set", "train.steps=3",
    "--set", "model.widths=[8,16,32]",
    "--set", "model.fc=32",
    "--set", "split.augmentation.max_large=600",
    "--set", "split.augmentation.max_test=40",
]  # fmt: skip


def augment(tmp_path, *extra):
    args = ["augment", "--recipe", RECIPE, "--run", str(tmp_path / "run"), "--count", "24", "--quiet", *FAST]
    return CliRunner().invoke(main, [*args, *extra])


def test_augment_writes_image_folder_manifest_and_preview(tmp_path):
    out = tmp_path / "aug"
    result = augment(tmp_path, "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert len(manifest) == 24
    columns = {"path", "label", "edited", "source_index", "size_to", "size_t", "size_partner"}
    assert columns <= set(manifest.columns)
    assert not manifest["edited"].str.contains("letter").any()  # the label is never varied
    for _, row in manifest.iterrows():
        for a in row["edited"].split("+"):
            assert row[f"{a}_to"] != row[f"source_{a}"]  # the new value differs from the source's
            if row[f"{a}_partner"] >= 0:  # interpolated (colours are painted new: t = 1)
                assert 0.25 <= row[f"{a}_t"] <= 1.0
    for _, row in manifest.iterrows():
        folder = Path(row["path"]).parent.name
        assert folder.split("_", 1)[1] == row["label"] == row["source_letter"]
        assert Image.open(out / row["path"]).size == (32, 32)
    assert Image.open(out / "preview.png").width > 3 * 64
    assert not list(tmp_path.glob(".aug.partial-*"))


def test_augment_refuses_existing_output_then_overwrites_reusing_the_run(tmp_path):
    out = tmp_path / "aug"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    result = augment(tmp_path, "--out", str(out))
    assert result.exit_code == 2 and "pass --overwrite" in result.output
    assert not (tmp_path / "run").exists()  # refused before any training
    assert augment(tmp_path, "--out", str(out), "--overwrite").exit_code == 0
    assert (out / "manifest.csv").is_file() and not (out / "mine.txt").exists()


def test_a_killed_synthesis_leaves_no_manifest(tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthesis_module, "save_png", killed)
    out = tmp_path / "aug"
    result = augment(tmp_path, "--out", str(out))  # Ctrl-C while writing images
    assert result.exit_code == 1 and "Aborted" in result.output
    assert not out.exists()
    assert not list(tmp_path.glob(".aug.partial-*"))  # the half-written folder is cleaned up


def test_more_edits_than_attributes_is_refused_before_training(tmp_path):
    result = augment(tmp_path, "--out", str(tmp_path / "a"), "--set", "augment.edits=[1,5]")
    assert result.exit_code == 2 and "augment.edits" in result.output and "4" in result.output
    assert not (tmp_path / "run").exists()


def test_bad_recipe_values_name_the_key(tmp_path):
    result = augment(tmp_path, "--out", str(tmp_path / "a"), "--set", "augment.attributes=[letter]")
    assert result.exit_code == 2 and "augment.attributes" in result.output and "label" in result.output
    for bad in ("[0.9,0.1]", "[]"):
        result = augment(tmp_path, "--out", str(tmp_path / "a"), "--set", f"augment.t_range={bad}")
        assert result.exit_code == 2 and "augment.t_range" in result.output
    result = augment(tmp_path, "--out", str(tmp_path / "a"), "--set", "augment.attributes=[colour]")
    assert result.exit_code == 2 and "colour" in result.output


def test_mismatched_run_is_refused(tmp_path):
    assert augment(tmp_path, "--out", str(tmp_path / "a")).exit_code == 0
    result = augment(tmp_path, "--out", str(tmp_path / "b"), "--set", "model.fc=64")
    assert result.exit_code == 2 and "model.fc" in result.output
    assert not (tmp_path / "b").exists()


def test_novel_mode_needs_colour_layers(tmp_path):
    result = augment(tmp_path, "--out", str(tmp_path / "a"), "--set", "model.style_mode=adain")
    assert result.exit_code == 2 and "style_mode: layers" in result.output
    assert len(result.output.strip().splitlines()) == 1
