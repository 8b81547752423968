import pytest
import torch

from deae_aug.data.build import build_splits
from deae_aug.data.dataset import load_images
from deae_aug.debias.rebalance import rebalance
from deae_aug.errors import UserError
from deae_aug.explore.latent import decode, decode_edit, encode
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.recipes import recipe_from_dict
from deae_aug.training.run import model_config

from .test_debias_cli import RECIPE


def biased_split_and_model():
    recipe = recipe_from_dict(RECIPE)
    biased = build_splits(recipe)["biased"]
    torch.manual_seed(0)
    return biased, Autoencoder(model_config(recipe, biased)).eval()


def test_decode_edit_without_a_change_returns_the_source():
    biased, model = biased_split_and_model()
    images = load_images(biased)[:5]
    codes = encode(model, images)
    source = images.float() / 127.5 - 1
    assert torch.allclose(decode_edit(model, codes, codes, images), source, atol=1e-5)
    assert torch.equal(decode_edit(model, codes, codes), decode(model, codes))  # no source: the decode


def test_rebalance_fills_every_pair_and_residual_keeps_the_source_glyphs():
    biased, model = biased_split_and_model()
    real = load_images(biased)
    plain, labels, synthetic = rebalance(model, biased, "letter", "bg_color", seed=0)
    residual, labels_r, synthetic_r = rebalance(model, biased, "letter", "bg_color", seed=0, residual=True)
    n = len(real)
    assert torch.equal(plain[:n], real) and torch.equal(residual[:n], real)  # real images come first
    assert torch.equal(labels, labels_r) and synthetic == synthetic_r == len(plain) - n > 0
    assert torch.bincount(labels).unique().numel() == 1  # every letter equally often

    # an untrained decoder draws no letters: its decodes are near-uniform, while a residual image
    # is a real image of its letter plus the decoder's (small) change
    def distance_to_nearest_real(images: torch.Tensor) -> float:
        flat = images[n:].flatten(1).float()
        return torch.cdist(flat, real.flatten(1).float()).min(dim=1).values.mean().item()

    assert distance_to_nearest_real(residual) < 0.5 * distance_to_nearest_real(plain)


def test_rebalance_repaint_keeps_real_images_and_needs_a_colour_layer():
    biased, plain = biased_split_and_model()
    recipe = recipe_from_dict(
        {**RECIPE, "model": {**RECIPE["model"], "style": ["bg_color"], "style_mode": "layers"}}
    )
    model = Autoencoder(model_config(recipe, biased)).eval()
    images, labels, synthetic = rebalance(model, biased, "letter", "bg_color", seed=0, repaint=True)
    real = load_images(biased)
    assert torch.equal(images[: len(real)], real) and synthetic == len(images) - len(real) > 0
    assert torch.bincount(labels).unique().numel() == 1
    with pytest.raises(UserError, match="residual or repaint"):
        rebalance(model, biased, "letter", "bg_color", repaint=True, residual=True)
    with pytest.raises(UserError, match="repaint needs 'bg_color' in model.style"):
        rebalance(plain, biased, "letter", "bg_color", repaint=True)
