"""Your own images end to end: the shipped example recipe, pointed at a dataset this test writes
with its own folder layout and column names, trains and augments."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from deae_aug.cli import main
from deae_aug.data.build import build_splits
from deae_aug.errors import DataError, RecipeError
from deae_aug.recipes import load_recipe, recipe_from_dict

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


def test_the_example_recipe_finds_its_manifest_next_to_itself_or_in_your_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # any working directory
    copy = tmp_path / "mine" / "recipe.yaml"
    copy.parent.mkdir()
    copy.write_text(EXAMPLE.read_text())
    assert Path(load_recipe(copy).data.manifest) == copy.parent / "my_images" / "manifest.csv"
    # used by name, the shipped recipe reads the data from the folder the command runs in
    by_name = Path(load_recipe("manifest_example.yaml").data.manifest)
    assert by_name == tmp_path.resolve() / "my_images" / "manifest.csv"


def split_dataset(root: Path, rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """Images of (object, tint, split) rows under root/img, as a table with a `part` column."""
    yy, xx = np.mgrid[:20, :20]
    shapes = {
        "ring": np.abs(np.hypot(yy - 9.5, xx - 9.5) - 6) < 1.5,
        "bar": (np.abs(yy - 9.5) < 2.5) & (np.abs(xx - 9.5) < 7),
    }
    table = []
    for k, (obj, tint, part) in enumerate(rows):
        image = np.full((20, 20, 3), 128, np.uint8)
        image[shapes[obj]] = TINTS[tint]
        (root / "img").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "img" / f"{k}.png")
        table.append({"file": f"img/{k}.png", "object": obj, "tint": tint, "part": part})
    return pd.DataFrame(table)


# training: a ring is always red or green, a bar always blue (the tint predicts the object)
BIASED = [
    (o, t, "train")
    for o, ts in (("ring", ("red", "green")), ("bar", ("blue",)))
    for t in ts
    for _ in range(6)
]
# validation and test: every object on every tint but a blue ring (the test lacks that group)
MIXED = [(o, t) for o in ("ring", "bar") for t in TINTS if (o, t) != ("ring", "blue")]
GIVEN = [
    "data.path_column=file", "data.attributes=[object,tint]", "data.resolution=16", "split.label=object",
    "split.given.bias=tint", "model.style=[tint]", "model.zoom=[]", "model.widths=[8,16]", "model.fc=32",
    "train.steps=3", "augment.attributes=[tint]", "augment.edits=[1,1]",
]  # fmt: skip


def debias(recipe: Path, tmp_path: Path, sets: list[str]):
    args = [arg for key in sets for arg in ("--set", key)]
    run, out = tmp_path / "run", tmp_path / "report"
    result = CliRunner().invoke(
        main, ["debias", "--recipe", str(recipe), "--run", str(run), "--out", str(out), "--quiet", *args]
    )
    assert result.exit_code == 0, result.output
    return result.output, json.loads((out / "report.json").read_text())


def test_debias_on_your_own_split_column_chooses_on_val_and_reports_what_the_test_lacks(tmp_path):
    rows = (
        BIASED
        + [(o, t, "val") for o, t in MIXED for _ in range(2)]
        + [(o, t, "test") for o, t in MIXED for _ in range(3)]
    )
    table = split_dataset(tmp_path, rows)
    table.loc[table.index[-2:], "tint"] = ""  # two test images without a bias label
    table.to_csv(tmp_path / "labels.csv", index=False)
    output, report = debias(
        EXAMPLE, tmp_path, [f"data.manifest={tmp_path / 'labels.csv'}", "split.given.column=part", *GIVEN]
    )
    assert report["test_images"] == 15 and report["bias_labelled"] == 13
    assert len(report["validation"]) == 4 and report["chosen_on_val"].startswith("{'classifier'")
    assert {c["classifier"] for c in report["validation"]} == {"logistic", "mlp"}
    assert sum(len(v) for v in report["group_accuracy"].values()) == report["groups"] == 5
    assert "blue" not in report["group_accuracy"]["ring"]
    # bias-conflicting: the test's pairs training never shows (a bar on red or green)
    assert report["bias_conflicting"] is not None
    notes = " ".join(report["notes"])
    assert (
        "2 test images have no bias label" in notes and "5 of 6 groups" in notes and "ring on blue" in notes
    )
    assert "note: the test split holds 5 of 6 groups" in output


def test_debias_with_separate_test_manifest_without_bias_labels_reports_accuracy_only(tmp_path):
    split_dataset(tmp_path, BIASED).drop(columns="part").to_csv(tmp_path / "train.csv", index=False)
    test = split_dataset(tmp_path / "held_out", [(o, t, "test") for o, t in MIXED])
    test.drop(columns=["part", "tint"]).to_csv(tmp_path / "held_out" / "test.csv", index=False)
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(EXAMPLE.read_text().replace("split:\n", "split:\n  given: {test: held_out/test.csv}\n"))
    output, report = debias(recipe, tmp_path, [f"data.manifest={tmp_path / 'train.csv'}", *GIVEN])
    assert report["test_images"] == 5 and report["bias_labelled"] == 0
    assert (
        report["worst_group"] is None and report["bias_conflicting"] is None and 0 <= report["accuracy"] <= 1
    )
    assert "validation" not in report  # nothing to choose on: the recipe's classifier
    assert "no bias labels" in output


def given_recipe(tmp_path: Path, table: pd.DataFrame, **given):
    table.to_csv(tmp_path / "labels.csv", index=False)
    data = {"dataset": "manifest", "manifest": str(tmp_path / "labels.csv"), "path_column": "file"}
    return recipe_from_dict({"data": data, "split": {"label": "object", "given": given}}, source="mine.yaml")


@pytest.mark.parametrize(
    ("edit", "given", "message"),
    [
        (lambda t: t.assign(part=t["part"].replace("val", "valid")), {"column": "part"},
         r"labels.csv, row 20: split column 'part' holds 'valid'; use one of train, val, test"),
        (lambda t: t.assign(tint=t["tint"].mask(t.index == 3, "")), {"column": "part"},
         r"labels.csv, row 5: attribute column 'tint' is blank; give every image a value"),
        (lambda t: t.assign(object=t["object"].mask(t.index == 20, "")), {"column": "part"},
         r"labels.csv, row 22: the label column 'object' is blank; every image needs its label"),
        (lambda t: t, {"column": "split"}, r"labels.csv: no split column 'split'; columns are"),
        (lambda t: t, {"column": "part", "test": "t.csv"}, r"given' in mine.yaml: give split.given.column"),
        (lambda t: t, {"column": "part", "bias": "hue"}, r"given.bias' in mine.yaml must name an attri"),
        (lambda t: t, {"column": "part", "bias": "object"}, r"given.bias' in mine.yaml must differ from"),
        (lambda t: t, {}, r"'split.given' in mine.yaml: name the manifest's split column"),
        (lambda t: t.drop(columns="part"), {"test": "no.csv"}, r"given.test' in mine.yaml names no.csv"),
    ],
)  # fmt: skip
def test_a_given_split_refuses_bad_input_naming_the_row_or_key(tmp_path, edit, given, message):
    rows = BIASED + [(o, t, "val") for o, t in MIXED] + [(o, t, "test") for o, t in MIXED]
    recipe = given_recipe(tmp_path, edit(split_dataset(tmp_path, rows)), **given)
    with pytest.raises((DataError, RecipeError), match=message):
        build_splits(recipe)


def test_a_given_split_keeps_blank_test_cells_as_unlabelled_and_each_file_finds_its_images(tmp_path):
    table = split_dataset(tmp_path, BIASED + [(o, t, "test") for o, t in MIXED])
    table.loc[table.index[-1], "tint"] = ""
    splits = build_splits(given_recipe(tmp_path, table, column="part"))
    assert list(splits) == ["train", "test"] and len(splits["train"]) == 18
    assert (splits["test"].factors[:, 1] == -1).sum() == 1 and (splits["train"].factors >= 0).all()
    assert splits["test"].schema.names == ("object", "tint")  # the split column is no attribute
    assert splits["test"].schema["tint"].values == ("blue", "green", "red")  # values of every split
    recipe = tmp_path / "sub" / "mine.yaml"  # a relative test manifest is read from the recipe's folder
    recipe.parent.mkdir()
    (tmp_path / "sub" / "t.csv").write_text(
        "file,object\n" + "".join(f"{tmp_path}/img/{k}.png,bar\n" for k in range(2))
    )
    text = yaml.safe_dump({"data": {"dataset": "manifest", "manifest": "../labels.csv", "path_column": "file",
                                    "attributes": ["object", "tint"]},
                           "split": {"label": "object", "given": {"test": "t.csv"}}})  # fmt: skip
    table.drop(columns="part").iloc[:18].to_csv(tmp_path / "labels.csv", index=False)
    recipe.write_text(text)
    splits = build_splits(load_recipe(recipe))
    assert len(splits["test"]) == 2 and (splits["test"].factors[:, 1] == -1).all()


def test_a_run_trained_with_relative_set_paths_works_from_any_directory(tmp_path, monkeypatch):
    csv = own_dataset(tmp_path / "data")
    monkeypatch.chdir(tmp_path / "data")
    mine = [
        "data.manifest=meta/labels.csv", "data.root=photos", "data.path_column=file",
        "data.attributes=[object,tint]", "data.resolution=16", "split.label=object", "model.style=[tint]",
        "model.zoom=[]", "model.widths=[8,16]", "model.fc=32", "train.steps=2", "augment.attributes=[tint]",
        "augment.edits=[1,1]",
    ]  # fmt: skip
    sets = [arg for key in mine for arg in ("--set", key)]
    run = tmp_path / "run"
    trained = CliRunner().invoke(
        main, ["train", "--recipe", str(EXAMPLE), "--out", str(run), "--quiet", *sets]
    )
    assert trained.exit_code == 0, trained.output
    assert Path(load_recipe(EXAMPLE, mine[:1]).data.manifest) == csv  # the --set path, made absolute
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    explored = CliRunner().invoke(
        main, ["explore", "--run", str(run), "--mode", "swap", "--n", "2", "--out", "grids"]
    )
    assert explored.exit_code == 0, explored.output  # the run's recipe finds the images from here
    assert (elsewhere / "grids" / "swap-all-seed0.png").is_file()
