from pathlib import Path

import pytest

from deae_aug.data.build import build_splits
from deae_aug.errors import RecipeError, UserError
from deae_aug.recipes import load_recipe, recipe_from_dict
from deae_aug.training.trainer import train

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.mark.parametrize("name", ["fonts_small", "fonts_bias"])
def test_shipped_recipes_load_and_split(name):
    recipe = load_recipe(RECIPES / f"{name}.yaml")
    splits = build_splits(recipe)
    assert all(len(ds) > 0 for ds in splits.values())
    if name == "fonts_small":
        assert len(splits["small"]) == 540  # 2 sizes x 3 font colours x 3 backgrounds x 3 fonts x 10 letters
        assert len(splits["large"]) == 5000 and len(splits["test"]) == 2000
    else:
        assert len(splits["biased"]) == len(splits["unbiased"]) == 2000


def test_all_g1_recipe_shows_every_letter_on_one_background_only():
    biased = build_splits(load_recipe(RECIPES / "fonts_bias_g1.yaml"))["biased"]
    letter, background = biased.schema.position("letter"), biased.schema.position("bg_color")
    for value in range(len(biased.schema["letter"].values)):
        assert len(set(biased.factors[biased.factors[:, letter] == value, background])) == 1


def test_unknown_key_names_path_and_valid_keys():
    with pytest.raises(RecipeError) as e:
        recipe_from_dict({"data": {"resolutoin": 64}}, source="x.yaml")
    assert "Unknown recipe key 'data.resolutoin' in x.yaml" in str(e.value)
    assert "'resolution'" in str(e.value) and "valid keys" in str(e.value)


def test_nested_unknown_key_in_list_item():
    with pytest.raises(RecipeError, match=r"Unknown recipe key 'split.debias.groups\[0\].letters'"):
        recipe_from_dict({"split": {"debias": {"groups": [{"letters": ["A"]}]}}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"data": {"resolution": "big"}}, r"'data.resolution' .* must be an integer or null; got 'big'"),
        ({"data": {"resolution": 4}}, r"'data.resolution' .* must be >= 8; got 4"),
        ({"data": {"dataset": "mnist"}}, r"'data.dataset' .* must be one of 'fonts', 'shapes'"),
        (
            {"data": {"values": {"letter": "A"}}},
            r"'data.values.letter' .* must be a list of strings or an integer",
        ),
        ({"split": {"debias": {"conflict_fraction": 1.5}}}, r"'split.debias.conflict_fraction' .* < 1.0"),
        ({"seed": True}, r"'seed' .* must be an integer; got True"),
        ({"debias": {"test_counterfactuals": -2}}, r"'debias.test_counterfactuals' .* must be >= 0; got -2"),
        ({"debias": {"classifier_scale": 0}}, r"'debias.classifier_scale' .* must be >= 1; got 0"),
        ({"debias": {"residual": "yes"}}, r"'debias.residual' .* must be true or false; got 'yes'"),
        ({"model": {"widths": [16, 0]}}, r"'model.widths' .* every value >= 1 and <= 4096; got \[16, 0\]"),
        ({"train": {"betas": [0.9]}}, r"'train.betas' .* must be a list of exactly 2 values; got \[0.9\]"),
        ({"train": {"betas": [0.9, 1.0]}}, r"'train.betas' .* every value >= 0.0 and < 1.0"),
        ({"train": {"lr": float("nan")}}, r"'train.lr' .* must be a finite number; got nan"),
        ({"train": {"lr": -1e-3}}, r"'train.lr' .* must be >= 0.0; got -0.001"),
        ({"augment": {"t_range": []}}, r"'augment.t_range' .* exactly 2 values; got \[\]"),
        ({"augment": {"t_range": [0.8, 0.2]}}, r"'augment.t_range' .* low <= high; got \[0.8, 0.2\]"),
        ({"augment": {"t_range": [0.5, 5]}}, r"'augment.t_range' .* every value >= 0.0 and <= 4.0"),
        ({"augment": {"attributes": []}}, r"'augment.attributes' .* must be a non-empty list; got \[\]"),
        ({"split": {"debias": {"groups": []}}}, r"'split.debias.groups' .* must be a non-empty list"),
        (
            {"split": {"debias": {"groups": [{"labels": []}]}}},
            r"'split.debias.groups\[0\].labels' .* must be a non-empty list",
        ),
        ({"seed": -1}, r"'seed' .* must be >= 0 and < 4294967296; got -1"),
        ({"train": {"seed": 2**64}}, r"'train.seed' .* must be >= 0 and < 4294967296"),
        ({"name": "../../elsewhere"}, r"'name' .* must be letters, digits, .*it names run folders"),
        ({"name": "a/b"}, r"'name' .* must be letters, digits"),
        ({"name": ""}, r"'name' .* must be letters, digits"),
        ({"train": {"loss": {"reg_attributes": []}}}, r"'train.loss.reg_attributes' .* non-empty list"),
    ],
)
def test_wrong_types_and_values_name_the_key(data, message):
    with pytest.raises(RecipeError, match=message):
        recipe_from_dict(data)


def test_overrides_are_validated_like_the_file():
    recipe = recipe_from_dict({}, overrides=["data.resolution=64", "split.label=letter"])
    assert recipe.data.resolution == 64 and recipe.split.label == "letter"
    with pytest.raises(RecipeError, match="Unknown recipe key 'data.steps'"):
        recipe_from_dict({}, overrides=["data.steps=3"])
    with pytest.raises(RecipeError, match="must look like key.path=value"):
        recipe_from_dict({}, overrides=["data.resolution"])


def test_dataset_value_errors_point_at_the_recipe_key():
    recipe = recipe_from_dict({"data": {"values": {"font": ["Comic Sans"]}}}, source="r.yaml")
    with pytest.raises(RecipeError, match=r"'data.values' in r.yaml: font: 'Comic Sans' is not available"):
        build_splits(recipe)


def test_miscased_label_is_refused_for_augmentation_splits():
    recipe = recipe_from_dict(
        {"split": {"label": "Letter", "augmentation": {"held_out": {"bg_color": ["blue"]}}}}, source="r.yaml"
    )
    with pytest.raises(RecipeError, match=r"'split.label' in r.yaml must name an attribute .*got 'Letter'"):
        build_splits(recipe)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty; a recipe names at least its data"),
        (b"# only a comment\n", "is empty; a recipe names at least its data"),
        (b"name: mine\n", "has no data section; a recipe names at least its data"),
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "is not a text file"),
        (None, "is a folder; pass a YAML file"),
    ],
)
def test_files_that_are_not_recipes_get_one_line(tmp_path, content, message):
    path = tmp_path / "recipe.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(RecipeError, match=message) as e:
        load_recipe(path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["augment.attributes=[shape]"], r"'augment.attributes' in r.yaml: unknown attributes \['shape'\]"),
        (["augment.attributes=[letter]"], r"'augment.attributes' in r.yaml lists the label 'letter'"),
        (["augment.edits=[1,5]"], r"'augment.edits' in r.yaml asks for up to 5 edits .* has 4"),
        (["augment.mode=novel"], r"'augment.mode' in r.yaml: novel paints new colours, which needs"),
        (["train.loss.blend_attributes=[font]"], r"'train.loss.blend_attributes' in r.yaml: .* are not"),
    ],
)
def test_attribute_keys_are_checked_against_the_data_before_training(tmp_path, overrides, message):
    """Every command that trains (train, augment, debias) checks them: a wrong augment key must not
    wait until a training run has finished."""
    recipe = recipe_from_dict(
        {"data": {"values": {"letter": 2, "size": 2, "font_color": 2, "bg_color": 3, "font": 2}},
         "split": {"label": "letter", "augmentation": {"held_out": {"bg_color": ["yellow"]}}}},
        source="r.yaml", overrides=overrides,
    )  # fmt: skip
    with pytest.raises(UserError, match=message) as e:
        train(recipe, tmp_path, device="cpu", progress=False)
    assert "\n" not in str(e.value)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # refused before writing anything


def test_recipe_round_trips_through_dict():
    recipe = load_recipe(RECIPES / "fonts_bias.yaml")
    again = recipe_from_dict(recipe.to_dict(), source=recipe.source)
    assert again == recipe


def test_paths_in_a_recipe_file_resolve_next_to_it(tmp_path, monkeypatch):
    """A recipe names its manifest and warm-start run relative to itself, so it works from any
    working directory; a --set value is relative to where it was typed, and made absolute there."""
    folder = tmp_path / "project"
    folder.mkdir()
    recipe_file = folder / "my_data.yaml"
    recipe_file.write_text(
        "data: {dataset: manifest, manifest: data/labels.csv, root: /srv/images}\n"
        "train: {init_from: runs/gsl}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(recipe_file)
    assert recipe.data.manifest == str((folder / "data" / "labels.csv").resolve())
    assert recipe.data.root == "/srv/images"
    assert recipe.train.init_from == str((folder / "runs" / "gsl").resolve())
    assert load_recipe(recipe_file, ["data.manifest=other.csv"]).data.manifest == str(tmp_path / "other.csv")


def test_a_misspelt_data_section_is_named_with_the_key_it_meant(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("dta:\n  resolution: 32\n")
    with pytest.raises(RecipeError, match=r"Unknown recipe key 'dta' in typo.yaml; did you mean 'data'\?"):
        load_recipe(path)


def test_shipped_recipes_resolve_by_name_from_any_folder_and_a_file_there_comes_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_recipe("fonts_small").name == load_recipe("fonts_small.yaml").name == "fonts_small"
    (tmp_path / "fonts_small.yaml").write_text("name: mine\ndata: {resolution: 16}\n")
    assert load_recipe("fonts_small.yaml").name == "mine"  # the user's own file of that name
    assert load_recipe("fonts_small").name == "fonts_small"  # no such file: the shipped one
    with pytest.raises(RecipeError, match=r"recipe sub/fonts_small.yaml is neither a file nor a shipped"):
        load_recipe("sub/fonts_small.yaml")  # a path is a path, never a shipped name
    with pytest.raises(
        RecipeError, match=r"neither a file nor a shipped recipe; shipped: .*fonts_small.yaml"
    ):
        load_recipe("fonts_smal.yaml")
