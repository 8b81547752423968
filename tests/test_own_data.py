"""Your own images end to end: the shipped example recipe, pointed at a dataset this test writes
with its own folder layout and column names, trains and augments."""

from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner
from PIL import Image

from deae_aug.cli import main
from deae_aug.recipes import load_recipe

EXAMPLE = Path(__file__).resolve().parents[1] / "recipes" / "manifest_example.yaml"
TINTS = {"red": (220, 40, 40), "blue": (40, 60, 220), "green": (40, 180, 60)}


def own_dataset(root: Path) -> Path:
    """photos/<object>/IMG_<k>.png (a ring or a bar in one of three tints on grey, 20 px) and
    meta/labels.csv with the columns file, object, tint and an id column."""
    rows = []
    yy, xx = np.mgrid[:20, :20]
    shapes = {
        "ring": np.abs(np.hypot(yy - 9.5, xx - 9.5) - 6) < 1.5,
        "bar": (np.abs(yy - 9.5) < 2.5) & (np.abs(xx - 9.5) < 7),
    }
    for k, (obj, tint) in enumerate((o, t) for o in shapes for t in TINTS for _ in range(4)):
        image = np.full((20, 20, 3), 128, np.uint8)
        image[shapes[obj]] = TINTS[tint]
        path = root / "photos" / obj / f"IMG_{k:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
        rows.append({"file": f"{obj}/IMG_{k:04d}.png", "object": obj, "tint": tint, "id": f"id{k}"})
    (root / "meta").mkdir()
    pd.DataFrame(rows).to_csv(root / "meta" / "labels.csv", index=False)
    return root / "meta" / "labels.csv"


def test_the_example_recipe_trains_and_augments_your_own_images(tmp_path):
    csv = own_dataset(tmp_path)
    mine = [
        f"data.manifest={csv}", f"data.root={tmp_path / 'photos'}", "data.path_column=file",
        "data.attributes=[object,tint]", "data.resolution=16", "split.label=object",
        "model.style=[tint]", "model.zoom=[]", "model.widths=[8,16]", "model.fc=32",
        "train.steps=3", "augment.attributes=[tint]", "augment.count=6", "augment.edits=[1,1]",
    ]  # fmt: skip
    sets = [arg for key in mine for arg in ("--set", key)]
    run, out = tmp_path / "run", tmp_path / "augmented"
    trained = CliRunner().invoke(
        main, ["train", "--recipe", str(EXAMPLE), "--out", str(run), "--quiet", *sets]
    )
    assert trained.exit_code == 0, trained.output
    made = CliRunner().invoke(
        main, ["augment", "--recipe", str(EXAMPLE), "--run", str(run), "--out", str(out), "--quiet", *sets]
    )
    assert made.exit_code == 0, made.output
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert len(manifest) == 6 and set(manifest["edited"]) == {"tint"}
    for _, row in manifest.iterrows():
        source = Path(row["source_file"])  # the user's own file, not a row number
        assert source.is_file() and source.parent.name == row["label"] == row["source_object"]
        assert row["tint_to"].startswith("#")  # a new colour painted (augment.mode: novel)
        assert Image.open(out / row["path"]).size == (16, 16)


def test_the_example_recipe_finds_its_manifest_next_to_itself(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # any working directory
    manifest = Path(load_recipe(EXAMPLE).data.manifest)
    assert manifest == EXAMPLE.parents[1] / "my_images" / "manifest.csv"
