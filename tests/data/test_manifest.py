from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deae_aug.data.manifest import ILabFontsDataset, ManifestDataset
from deae_aug.errors import DataError


def write_images(root: Path, n: int = 6, size: int = 16) -> pd.DataFrame:
    rows = []
    for i in range(n):
        path = root / f"img{i}.png"
        Image.fromarray(np.full((size, size, 3), i * 30, np.uint8)).save(path)
        rows.append({"path": path.name, "emotion": ["happy", "sad"][i % 2], "pose": str(i % 3)})
    return pd.DataFrame(rows)


def make_manifest(tmp_path: Path, frame: pd.DataFrame | None = None) -> Path:
    frame = write_images(tmp_path) if frame is None else frame
    csv = tmp_path / "manifest.csv"
    frame.to_csv(csv, index=False)
    return csv


def test_loads_images_and_schema(tmp_path):
    ds = ManifestDataset(make_manifest(tmp_path))
    assert ds.schema.names == ("emotion", "pose")
    assert ds.schema["pose"].values == ("0", "1", "2")
    assert ds.resolution == 16
    image, factors = ds[3]
    assert image.shape == (3, 16, 16)
    assert ds.describe(3) == {"emotion": "sad", "pose": "0"}
    sub = ds.select(np.array([1, 3]))
    assert len(sub) == 2 and sub.describe(1) == ds.describe(3)


def test_missing_image_names_file_and_row(tmp_path):
    csv = make_manifest(tmp_path)
    (tmp_path / "img4.png").unlink()
    with pytest.raises(DataError, match=r"row 6: image .*img4.png does not exist"):
        ManifestDataset(csv)


def test_unreadable_image_names_file(tmp_path):
    csv = make_manifest(tmp_path)
    (tmp_path / "img2.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"row 4: image .*img2.png is unreadable"):
        ManifestDataset(csv)


def test_truncated_image_is_found_before_training_with_its_row(tmp_path):
    csv = make_manifest(tmp_path, write_images(tmp_path, size=64))
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "img3.png")
    data = (tmp_path / "img3.png").read_bytes()
    (tmp_path / "img3.png").write_bytes(data[: len(data) // 2])  # the header is intact
    with Image.open(tmp_path / "img3.png") as im:
        assert im.size == (64, 64)  # what a header check sees
    with pytest.raises(DataError, match=r"row 5: image .*img3.png is unreadable") as e:
        ManifestDataset(csv)
    assert "\n" not in str(e.value)


def test_corrupt_pixels_found_at_load_name_the_file(tmp_path):
    csv = make_manifest(tmp_path)
    ds = ManifestDataset(csv)
    data = (tmp_path / "img1.png").read_bytes()
    (tmp_path / "img1.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"img1.png is corrupt or unreadable"):
        ds.load_image(1)


def test_missing_attribute_column_is_named(tmp_path):
    csv = make_manifest(tmp_path)
    with pytest.raises(DataError, match="missing attribute column 'identity'"):
        ManifestDataset(csv, attributes=["emotion", "identity"])
    with pytest.raises(DataError, match="no path column 'file'"):
        ManifestDataset(csv, path_column="file")


def test_a_column_named_twice_is_refused(tmp_path):
    csv = make_manifest(tmp_path)
    header, *rows = csv.read_text().splitlines()
    csv.write_text("\n".join([header + ",pose", *(row + ",0" for row in rows)]) + "\n")
    with pytest.raises(DataError, match=r"names the column\(s\) \['pose'\] twice"):
        ManifestDataset(csv)


def test_single_valued_attribute_is_named(tmp_path):
    frame = write_images(tmp_path)
    frame["camera"] = "front"
    with pytest.raises(DataError, match="attribute column 'camera' has a single value 'front'"):
        ManifestDataset(make_manifest(tmp_path, frame))


def test_blank_cells_and_id_columns_are_refused_by_name(tmp_path):
    frame = write_images(tmp_path)
    frame.loc[3, "pose"] = ""
    with pytest.raises(DataError, match=r"row 5: attribute column 'pose' is blank"):
        ManifestDataset(make_manifest(tmp_path, frame))
    frame = write_images(tmp_path)
    frame["photo_id"] = [f"IMG_{i:04d}" for i in range(len(frame))]
    with pytest.raises(DataError, match="column 'photo_id' has a different value in every row"):
        ManifestDataset(make_manifest(tmp_path, frame))
    assert ManifestDataset(make_manifest(tmp_path, frame), attributes=["emotion", "pose"]).schema.names == (
        "emotion",
        "pose",
    )


def test_mixed_sizes_need_resize(tmp_path):
    frame = write_images(tmp_path)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "img5.png")
    csv = make_manifest(tmp_path, frame)
    with pytest.raises(DataError, match="images differ in size .*set data.resize"):
        ManifestDataset(csv)
    ds = ManifestDataset(csv, resize=8)
    assert ds[5][0].shape == (3, 8, 8)


def test_ilab_tree_loader(tmp_path):
    for letter in "AB":
        for bg in ("red", "blue"):
            folder = tmp_path / letter / "small" / "green" / bg / "Arial"
            folder.mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
                folder / f"{letter}_small_green_{bg}_Arial.png"
            )
    with pytest.raises(DataError, match="single value"):
        ILabFontsDataset(tmp_path)
    ds = ILabFontsDataset(tmp_path, attributes=["letter", "bg_color"])
    assert len(ds) == 4 and ds.schema["bg_color"].values == ("blue", "red")
    with pytest.raises(DataError, match="holds no letter/size/fg/bg/font"):
        ILabFontsDataset(tmp_path / "A")


def test_recipe_resolution_resizes_manifest_images_and_must_agree_with_resize(tmp_path):
    """data.resolution is honoured for your own images (not silently ignored): it resizes them,
    as data.resize does, and the two keys may not disagree."""
    from deae_aug.data.build import build_dataset
    from deae_aug.errors import RecipeError
    from deae_aug.recipes import DataSection

    csv = make_manifest(tmp_path)
    assert build_dataset(DataSection(dataset="manifest", manifest=str(csv))).resolution == 16
    ds = build_dataset(DataSection(dataset="manifest", manifest=str(csv), resolution=8))
    assert ds.resolution == 8 and ds[0][0].shape == (3, 8, 8)
    with pytest.raises(RecipeError, match=r"'data.resolution' \(8\) and 'data.resize' \(12\) .* disagree"):
        build_dataset(DataSection(dataset="manifest", manifest=str(csv), resolution=8, resize=12))
