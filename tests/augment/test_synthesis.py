import numpy as np
import torch

from deae_aug.augment.synthesis import MIN_CONTRAST, plan_edits, synthesize
from deae_aug.data.dataset import load_images, to_float
from deae_aug.data.fonts import parse_color
from deae_aug.explore.latent import decode, encode
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.recipes import recipe_from_dict
from deae_aug.training.trainer import model_config, training_split

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
    for s, p, a in zip(plan["source_index"], plan["partner_index"], plan["attribute"], strict=True):
        assert dataset.describe(s)[a] != dataset.describe(p)[a]
    assert not plan.equals(plan_edits(dataset, ["size", "bg_color"], 20, (0.25, 1.0), seed=4))


def test_novel_colours_are_new_legible_and_drawn_alike_by_model_and_renderer():
    model, dataset = model_and_split()
    plan = plan_edits(dataset, ["bg_color", "size"], 60, (0.25, 1.0), seed=0, paint=["bg_color"])
    painted = plan[plan["attribute"] == "bg_color"]
    assert len(painted) > 10 and (painted["t"] == 1.0).all() and (painted["partner_index"] == -1).all()
    assert painted["to_value"].str.match(r"^#[0-9a-f]{6}$").all()
    for _, row in painted.iterrows():  # never within MIN_CONTRAST of the glyph's colour
        glyph = np.array(parse_color(row["source_font_color"]))
        assert np.linalg.norm(np.array(parse_color(row["to_value"])) - glyph) >= MIN_CONTRAST
    moved = plan[plan["attribute"] == "size"]
    assert (moved["partner_index"] >= 0).all() and (moved["t"] < 1.0).any()  # interpolated as before
