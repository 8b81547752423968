import numpy as np
import pytest
import torch

from deae_aug.augment.synthesis import plan_edits, planned_edits, synthesize
from deae_aug.data.dataset import load_images, to_float
from deae_aug.data.fonts import MIN_CONTRAST, parse_color
from deae_aug.errors import UserError
from deae_aug.explore.latent import decode, encode
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.recipes import recipe_from_dict
from deae_aug.training.run import model_config, training_split

from .test_transform import RECIPE


def model_and_split():
    recipe = recipe_from_dict(RECIPE)
    dataset = training_split(recipe)
    torch.manual_seed(0)
    model = Autoencoder(model_config(recipe, dataset)).eval()
    return model, dataset


def test_residual_at_t0_returns_the_source_and_adds_the_decoded_change():
    model, dataset = model_and_split()
    still = synthesize(model, dataset, ["bg_color"], 12, (0.0, 0.0), progress=False, residual=True)
    assert torch.equal(still.images, still.sources)  # no move: the source, not its blurry decode

    plain = synthesize(model, dataset, ["bg_color"], 12, (1.0, 1.0), progress=False)
    moved = synthesize(model, dataset, ["bg_color"], 12, (1.0, 1.0), progress=False, residual=True)
    sources = load_images(dataset)[moved.records["source_index"].tolist()]
    recon = decode(model, encode(model, sources))
    expected = to_float(sources) + to_float(plain.images) - recon
    got = to_float(moved.images)
    inside = expected.abs() < 0.99  # away from the clamp, up to uint8 rounding of the plain decode
    assert (got - expected)[inside].abs().max() < 2 / 127.5
    assert not torch.equal(moved.images, plain.images)


def test_the_renderer_and_the_model_draw_the_same_planned_edits():
    """The Table 1 ceiling renders exactly the edits the model makes: same sources, attributes,
    partners and t for a seed, every partner differing from its source in the edited attribute."""
    model, dataset = model_and_split()
    plan = plan_edits(dataset, ["size", "bg_color"], 20, (0.25, 1.0), seed=3)
    made = synthesize(model, dataset, ["size", "bg_color"], 20, (0.25, 1.0), seed=3, progress=False)
    assert plan.equals(made.records)
    assert set(plan["edited"]) == {"size", "bg_color"}  # one edit per image by default
    for i, s in enumerate(plan["source_index"]):
        ((a, (value, t)),) = planned_edits(plan, i).items()
        partner = plan.at[i, f"{a}_partner"]
        assert dataset.describe(s)[a] != dataset.describe(partner)[a] == value and 0.25 <= t <= 1
    assert not plan.equals(plan_edits(dataset, ["size", "bg_color"], 20, (0.25, 1.0), seed=4))


def test_several_edits_per_image_compose_in_the_code():
    """``edits=2``: every image changes two distinct attributes, and its code is the source's with
    both blocks moved (blocks are disjoint, so one edit cannot undo the other)."""
    model, dataset = model_and_split()
    attributes = ["size", "font_color", "bg_color"]
    made = synthesize(model, dataset, attributes, 30, (0.25, 1.0), seed=1, progress=False, edits=(2, 2))
    plan = made.records
    assert (plan["edited"].str.count(r"\+") == 1).all()
    for a in attributes:
        chosen = plan[f"{a}_to"] != ""
        assert (chosen == plan["edited"].str.split("+").map(lambda e, a=a: a in e)).all()
        assert (plan.loc[~chosen, f"{a}_t"] == 0).all() and (plan.loc[~chosen, f"{a}_partner"] == -1).all()
    codes = encode(model, load_images(dataset))
    expected = codes[plan["source_index"].to_numpy(copy=True)].clone()
    for a in attributes:
        block, rows = model.blocks[dataset.schema.names.index(a)], np.flatnonzero(plan[f"{a}_to"] != "")
        partner, t = codes[plan[f"{a}_partner"].to_numpy()[rows]], plan[f"{a}_t"].to_numpy()[rows]
        expected[rows, block] += torch.from_numpy(t).float()[:, None] * (partner - expected[rows])[:, block]
    want = decode(model, expected)
    assert (to_float(made.images) - want).abs().max() < 1.5 / 127.5  # uint8 rounding only
    counts = plan_edits(dataset, attributes, 300, edits=(1, 3))["edited"].str.count(r"\+") + 1
    assert set(counts) == {1, 2, 3} and abs(counts.mean() - 2) < 0.15  # uniform in the range
    with pytest.raises(UserError, match=r"augment.edits must be \[low, high\] with 1 <= low <= high <= 3"):
        plan_edits(dataset, attributes, 5, edits=(2, 4))


def test_novel_colours_are_new_legible_and_drawn_alike_by_model_and_renderer():
    model, dataset = model_and_split()
    plan = plan_edits(dataset, ["bg_color", "size"], 60, (0.25, 1.0), seed=0, paint=["bg_color"])
    painted = plan[plan["bg_color_to"] != ""]
    assert len(painted) > 10 and (painted["bg_color_t"] == 1.0).all()
    assert (painted["bg_color_partner"] == -1).all()
    assert painted["bg_color_to"].str.match(r"^#[0-9a-f]{6}$").all()
    for _, row in painted.iterrows():  # never within MIN_CONTRAST of the glyph's colour
        glyph = np.array(parse_color(row["source_font_color"]))
        assert np.linalg.norm(np.array(parse_color(row["bg_color_to"])) - glyph) >= MIN_CONTRAST
    moved = plan[plan["size_to"] != ""]
    assert (moved["size_partner"] >= 0).all() and (moved["size_t"] < 1.0).any()  # interpolated as before


def test_a_colour_no_image_repaints_is_left_alone():
    """Few images: a painted attribute that no image happens to change is skipped, not an error
    (this model has no colour layers, so a repaint would raise)."""
    model, dataset = model_and_split()
    attributes, paint = ["size", "bg_color"], ["bg_color"]
    seed = next(
        s
        for s in range(50)
        if plan_edits(dataset, attributes, 1, seed=s, paint=paint).at[0, "edited"] == "size"
    )
    made = synthesize(model, dataset, attributes, 1, seed=seed, progress=False, paint=paint)
    assert len(made.images) == 1 and made.records.at[0, "bg_color_to"] == ""


def test_two_painted_colours_of_one_image_stay_apart():
    """With both colours repainted, the second keeps MIN_CONTRAST from the first new one."""
    _, dataset = model_and_split()
    paint = ["font_color", "bg_color"]
    plan = plan_edits(dataset, paint, 80, seed=2, paint=paint, edits=(2, 2))
    glyph, ground = (np.stack(plan[f"{a}_to"].map(parse_color).tolist()).astype(float) for a in paint)
    assert (np.linalg.norm(glyph - ground, axis=1) >= MIN_CONTRAST).all()


def test_seen_brightness_draws_new_colours_as_light_or_dark_as_the_splits_own():
    from deae_aug.augment.transform import brightness_range

    _, dataset = model_and_split()
    paint = ["font_color", "bg_color"]
    plan = plan_edits(dataset, paint, 80, seed=4, paint=paint, edits=(1, 2), brightness="seen")
    for a in paint:
        present = np.unique(dataset.factors[:, dataset.schema.position(a)])
        seen = brightness_range(np.array([parse_color(dataset.schema[a].values[v]) for v in present]))
        drawn = plan.loc[plan[f"{a}_to"] != "", f"{a}_to"].map(lambda c: max(parse_color(c)) / 255)
        assert len(drawn) > 20 and drawn.between(seen[0] - 0.005, seen[1] + 0.005).all(), (a, seen)
    uniform = plan_edits(dataset, paint, 80, seed=4, paint=paint, edits=(1, 2))
    assert not uniform["bg_color_to"].equals(plan["bg_color_to"])


def test_udv_edits_walk_towards_another_value_through_the_transforms_code_path():
    """``augment.mode: udv``: each edit names another value than the source's, no partner, and the
    image is what ``DEAEAugment(mode="udv")`` makes of the same parameters."""
    from deae_aug.augment.synthesis import plan_params
    from deae_aug.augment.transform import DEAEAugment

    model, dataset = model_and_split()
    made = synthesize(model, dataset, ["size", "bg_color"], 16, (0.5, 1.0), seed=2, progress=False, udv=True)
    params = plan_params(made.records, dataset.schema)
    for i, q in enumerate(params):
        ((a, (value, t)),) = planned_edits(made.records, i).items()
        assert (
            made.records.at[i, f"{a}_partner"] == -1
            and value != dataset.describe(made.records.at[i, "source_index"])[a]
        )
        assert q["edits"] == [{"attribute": a, "t": t, "value": dataset.schema[a].index(value)}]
    images = load_images(dataset)
    augment = DEAEAugment(model, mode="udv", bank=images, bank_factors=torch.from_numpy(dataset.factors),
                          schema_names=dataset.schema.names, attributes=["size", "bg_color"])  # fmt: skip
    again, _ = augment.augment_batch(made.sources, params)
    assert torch.equal(again, made.images)
    assert not torch.equal(made.images, made.sources)
