from pathlib import Path

import pytest

from deae_aug.data.build import build_splits
from deae_aug.errors import RecipeError
from deae_aug.recipes import load_recipe, recipe_from_dict

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
        ({"data": {"resolution": "big"}}, r"'data.resolution' .* must be an integer; got 'big'"),
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


def test_recipe_round_trips_through_dict():
    recipe = load_recipe(RECIPES / "fonts_bias.yaml")
    again = recipe_from_dict(recipe.to_dict(), source=recipe.source)
    assert again == recipe
