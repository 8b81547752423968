import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from deae_aug.cli import main
from deae_aug.data.build import build_splits
from deae_aug.data.fashion import PARTS, FashionDataset, read_idx
from deae_aug.data.fonts import COLORS
from deae_aug.errors import DataError, RecipeError
from deae_aug.recipes import load_recipe


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fashion(root, per_part: int = 40, gz: bool = True, seed: int = 0) -> dict:
    """Tiny Fashion-MNIST idx files: random 28x28 photographs, labels cycling 0..9."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    photos = {}
    for part, (images_stem, labels_stem) in PARTS.items():
        images = rng.integers(0, 256, size=(per_part, 28, 28), dtype=np.uint8)
        labels = np.arange(per_part) % 10
        for stem, array in ((images_stem, images), (labels_stem, labels)):
            data = idx_bytes(array)
            if gz:
                (root / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (root / stem).write_bytes(data)
        photos[part] = (images, labels)
    return photos


@pytest.fixture
def fashion_root(tmp_path):
    write_fashion(tmp_path / "fashion")
    return tmp_path / "fashion"


def test_an_image_is_the_grey_level_blending_garment_and_background_colours(fashion_root):
    ds = FashionDataset(fashion_root, parts=["train"])
    photos, labels = write_fashion(fashion_root.parent / "again")["train"]
    assert ds.schema.names == ("garment", "garment_color", "bg_color") and len(ds) == 40
    np.testing.assert_array_equal(ds.factors[:, 0], labels)
    for i in (0, 7, 39):
        d = ds.describe(i)
        g = np.pad(photos[i], 2).astype(np.float32)[..., None] / 255
        want = g * np.array(COLORS[d["garment_color"]]) + (1 - g) * np.array(COLORS[d["bg_color"]])
        np.testing.assert_array_equal(ds.load_image(i), np.round(want).astype(np.uint8))
        np.testing.assert_allclose(ds.mask(i), g[..., 0])


def test_colours_are_drawn_from_the_seed_and_subsets_keep_their_photographs(fashion_root):
    a, b = FashionDataset(fashion_root, seed=3), FashionDataset(fashion_root, seed=3)
    np.testing.assert_array_equal(a.factors, b.factors)
    assert not np.array_equal(a.factors, FashionDataset(fashion_root, seed=4).factors)
    sub = a.select(np.array([5, 70]))
    np.testing.assert_array_equal(sub.load_image(1), a.load_image(70))
    assert len(a) == 80  # train and test photographs


def test_values_choose_classes_and_colours_and_plain_idx_files_read(tmp_path):
    write_fashion(tmp_path, gz=False)
    ds = FashionDataset(tmp_path, values={"garment": ["trouser", "bag"], "garment_color": ["red", "#00ff00"]})
    assert ds.schema["garment"].values == ("trouser", "bag") and len(ds) == 16
    assert set(ds.factors[:, 1]) <= {0, 1}
    assert ds.resolution == 32 and FashionDataset(tmp_path, resolution=16).load_image(0).shape == (16, 16, 3)


def test_missing_or_broken_files_name_the_file_and_the_package(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        FashionDataset(tmp_path)
    write_fashion(tmp_path)
    broken = tmp_path / "train-labels-idx1-ubyte.gz"
    broken.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x09abc"))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz.*promises shape"):
        FashionDataset(tmp_path)
    with pytest.raises(DataError, match="bad header"):
        read_idx(_write(tmp_path / "junk", b"PK\x03\x04"))


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_a_recipe_builds_a_colour_biased_split_with_validation_on_other_photographs(tmp_path):
    write_fashion(tmp_path / "fashion", per_part=3000)
    recipe = {
        "name": "fb",
        "data": {"dataset": "fashion", "root": str(tmp_path / "fashion"),
                 "values": {"garment_color": 4, "garment": ["tshirt", "trouser", "bag", "boot"]}},
        "split": {"label": "garment", "debias": {
            "bias": "garment_color",
            "groups": [{"labels": ["tshirt", "trouser", "bag", "boot"], "n_bias_values": 1}],
            "conflict_fraction": 0.1, "per_label": 50, "test_per_group": 5, "val_per_group": 3}},
    }  # fmt: skip
    path = tmp_path / "fb.yaml"
    path.write_text(yaml.safe_dump(recipe))
    splits = build_splits(load_recipe(path))
    biased, val, test = splits["biased"], splits["val"], splits["test"]
    aligned = biased.factors[:, 0] == biased.factors[:, 1]
    assert len(biased) == 200 and (~aligned).sum() == 4 * 5
    for split, n in ((val, 3), (test, 5)):
        groups = np.unique(split.factors[:, :2], axis=0, return_counts=True)[1]
        assert len(groups) == 16 and (groups == n).all()
    photos = [set(s._rows.tolist()) for s in (biased, val, test, splits["unbiased"])]
    assert all(not (a & b) for i, a in enumerate(photos) for b in photos[i + 1 :])
    recipe["data"]["root"] = str(tmp_path / "nowhere")
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(DataError, match="not in .*nowhere; install it"):
        build_splits(load_recipe(path))
    recipe["data"]["values"] = {"garment": ["jumper"]}
    recipe["data"]["root"] = str(tmp_path / "fashion")
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(RecipeError, match="data.values.*'jumper' is not available"):
        build_splits(load_recipe(path))


def test_every_colour_shows_each_photograph_in_every_colour_and_a_split_takes_it_once(tmp_path):
    """Colored MNIST's way: a class's own colour holds all its photographs, so D_B can be larger
    than a tenth of a class, and no photograph reaches two splits in two colours."""
    write_fashion(tmp_path / "fashion", per_part=300)
    one = FashionDataset(tmp_path / "fashion")
    every = FashionDataset(tmp_path / "fashion", values={"garment_color": 4}, every_colour=True)
    assert len(every) == 4 * len(one) and one.sample_ids is None
    for photo in (0, 123, 599):
        rows = np.flatnonzero(every.sample_ids == photo)
        assert sorted(every.factors[rows, 1]) == [0, 1, 2, 3]
        np.testing.assert_allclose(every.mask(rows[0]), every.mask(rows[3]))
    recipe = {
        "name": "fb",
        "data": {"dataset": "fashion", "root": str(tmp_path / "fashion"), "every_colour": True,
                 "values": {"garment_color": 4, "garment": ["tshirt", "trouser", "bag", "boot"]}},
        "split": {"label": "garment", "debias": {
            "bias": "garment_color",
            "groups": [{"labels": ["tshirt", "trouser", "bag", "boot"], "n_bias_values": 1}],
            "per_label": 15, "test_per_group": 5, "val_per_group": 2}},
    }  # fmt: skip
    path = tmp_path / "fb.yaml"
    path.write_text(yaml.safe_dump(recipe))
    splits = build_splits(load_recipe(path))
    biased = splits["biased"]
    assert len(biased) == 60 and (biased.factors[:, 0] == biased.factors[:, 1]).all()
    photos = [s.sample_ids.tolist() for s in splits.values()]
    assert all(len(p) == len(set(p)) for p in photos)
    assert sum(len(p) for p in photos) == len(set().union(*map(set, photos)))
    recipe["split"]["debias"]["per_label"] = 40  # 40 + 40 > 60 photographs of a class
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(RecipeError, match="unbiased split.*needs 40 images but only 20 exist; lower"):
        build_splits(load_recipe(path))
    recipe["data"]["dataset"] = "fonts"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(RecipeError, match="data.every_colour.*fashion only"):
        build_splits(load_recipe(path))


RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TINY = ["--set", "train.steps=3", "--set", "model.widths=[8,16,32]", "--set", "model.fc=32", "--quiet"]


def test_the_shipped_fashion_recipes_debias_and_augment_tiny_photographs(tmp_path):
    """recipes/fashion_bias.yaml and fashion_small.yaml, as shipped, on 3,000 generated photographs:
    `debias` repaints garments for the rebalanced set and reports, `augment` writes recoloured ones."""
    write_fashion(tmp_path / "fm", per_part=1500)
    root = ["--set", f"data.root={tmp_path / 'fm'}"]
    shrink = ["--set", "split.debias.per_label=10", "--set", "split.debias.test_per_group=1",
              "--set", "split.debias.val_per_group=1", "--set", "debias.classifier_steps=2"]  # fmt: skip
    out = tmp_path / "report"
    args = ["debias", "--recipe", str(RECIPES / "fashion_bias.yaml"), "--run", str(tmp_path / "bias-run")]
    result = CliRunner().invoke(main, [*args, "--out", str(out), *root, *shrink, *TINY])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["repaint"] is True and report["classifier"] == "cnn" and report["test_images"] == 100
    assert report["synthetic_images"] == 10 * 10 * 9  # every class topped up in the 9 colours it lacks
    aug = tmp_path / "aug"
    args = ["augment", "--recipe", str(RECIPES / "fashion_small.yaml"), "--run", str(tmp_path / "aug-run")]
    shrink = ["--set", "split.augmentation.max_small=40", "--set", "split.augmentation.max_large=100"]
    result = CliRunner().invoke(main, [*args, "--out", str(aug), "--count", "12", *root, *shrink, *TINY])
    assert result.exit_code == 0, result.output
    manifest = pd.read_csv(aug / "manifest.csv", keep_default_na=False)
    assert len(manifest) == 12 and set(manifest["edited"]) <= {
        "garment_color",
        "bg_color",
        "garment_color+bg_color",
    }
