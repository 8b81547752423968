import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from deae_aug.cli import main
from deae_aug.data.export import export_splits

RECIPE = str(Path(__file__).resolve().parents[1] / "recipes" / "fonts_small.yaml")
SHRINK = ["--set", "split.augmentation.max_large=600", "--set", "split.augmentation.max_test=40"]


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_render_writes_images_manifest_and_contact_sheet(tmp_path):
    out = tmp_path / "out"
    result = run("data", "render", "--recipe", RECIPE, "--out", str(out), *SHRINK)
    assert result.exit_code == 0, result.output
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert list(manifest.columns) == ["path", "split", "letter", "size", "font_color", "bg_color", "font"]
    assert manifest["split"].value_counts().to_dict() == {"large": 600, "small": 540, "test": 40}
    first = Image.open(out / manifest["path"][0])
    assert first.size == (32, 32)
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.height > 12 * 64  # one row per font, 12 fonts at 2x scale


def test_render_refuses_non_empty_folder_without_overwrite(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = run("data", "render", "--recipe", RECIPE, "--out", str(tmp_path), *SHRINK)
    assert result.exit_code == 2
    assert "not empty; pass --overwrite" in result.output
    assert not (tmp_path / "manifest.csv").exists()
    result = run("data", "render", "--recipe", RECIPE, "--out", str(tmp_path), "--overwrite", *SHRINK)
    assert result.exit_code == 0 and (tmp_path / "keep.txt").read_text() == "mine"


def test_bad_recipe_key_is_one_line_exit_2(tmp_path):
    result = run("data", "render", "--recipe", RECIPE, "--out", str(tmp_path / "o"), "--set", "data.colour=1")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Unknown recipe key 'data.colour'" in lines[0]


def test_interrupted_export_leaves_no_manifest(tmp_path, small_fonts, monkeypatch):
    calls = {"n": 0}
    original = type(small_fonts).load_image

    def flaky(self, index):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, index)

    monkeypatch.setattr(type(small_fonts), "load_image", flaky)
    with pytest.raises(KeyboardInterrupt):
        export_splits({"all": small_fonts}, tmp_path, progress=False)
    assert not (tmp_path / "manifest.csv").exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_killed_render_leaves_nothing_the_next_run_does_not_clean(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-c", "from deae_aug.cli import main; main()", "data", "render"]
    child = subprocess.Popen([*command, "--recipe", RECIPE, "--out", str(out), *SHRINK])
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.partial-*/*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert list(tmp_path.glob(".out.partial-*"))  # the kill did leave a half-written folder
    assert not (out / "manifest.csv").exists()
    result = run("data", "render", "--recipe", RECIPE, "--out", str(out), *SHRINK)
    assert result.exit_code == 0, result.output
    assert "left by a killed run" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["augment", "--recipe", RECIPE, "--count", "0"], "Invalid value for '--count': 0 is not in"),
        (["explore", "--run", ".", "--n", "0"], "Invalid value for '--n'"),
        (["explore", "--run", ".", "--mode", "warp"], "Invalid value for '--mode'"),
        (["trian"], "No such command 'trian'. Did you mean 'train'?"),
        (["train"], "Missing option '--recipe'"),
        (["train", "--recipe", RECIPE, "--bogus"], "No such option '--bogus'"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "--help)" in lines[0]


def test_a_bare_group_shows_its_help():
    result = CliRunner().invoke(main, ["data"])
    assert result.exit_code == 2 and "Commands:" in result.stderr and "render" in result.stderr


def test_recipes_lists_the_shipped_recipes_and_shows_one_to_copy():
    listed = run("recipes")
    assert listed.exit_code == 0
    assert "fonts_small.yaml         Fonts at 32 px for the CPU profile" in listed.output
    shown = run("recipes", "show", "fashion_bias")
    assert shown.output == (Path(RECIPE).parent / "fashion_bias.yaml").read_text()
    unknown = run("recipes", "show", "fonts")
    assert unknown.exit_code == 2 and unknown.output.count("\n") == 1
    assert "no shipped recipe 'fonts'; shipped: fashion_bias.yaml" in unknown.output
