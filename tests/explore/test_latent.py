import pytest
import torch

from deae_aug.errors import UserError
from deae_aug.explore.latent import repaint
from deae_aug.models.autoencoder import Autoencoder, ModelConfig, recolour


def test_repaint_paints_any_colour_exactly_and_touches_nothing_else():
    torch.manual_seed(0)
    cfg = ModelConfig(resolution=16, block_sizes=[3, 4, 5], fc=16, style=[1, 2], style_mode="layers")
    model = Autoencoder(cfg).eval()
    z = torch.randn(6, 12)
    colours = torch.rand(6, 3) * 2 - 1  # colours no training image had
    painted = repaint(model, z, 2, colours)
    palette = model.decoder.paint.palette(painted)
    assert torch.allclose(palette[:, 1], colours, atol=1e-5)  # attribute 2 is the second style layer
    assert torch.allclose(palette[:, 0], model.decoder.paint.palette(z)[:, 0])
    assert torch.equal(painted[:, :7], z[:, :7])  # other blocks untouched
    for before, after in zip(model.decoder.structure(z), model.decoder.structure(painted), strict=True):
        assert torch.equal(before, after)


def test_repaint_refuses_a_block_that_is_not_a_colour_layer():
    model = Autoencoder(ModelConfig(resolution=16, block_sizes=[3, 4], fc=16, style=[1]))  # adain
    with pytest.raises(UserError, match="style_mode: layers"):
        repaint(model, torch.randn(1, 7), 1, torch.zeros(1, 3))


def test_recolour_changes_the_layer_colours_on_the_images_own_pixels():
    """An image that is coverage x garment colour + (1 - coverage) x background colour comes back
    with the garment colour replaced and every pixel's coverage, texture included, kept."""
    torch.manual_seed(0)
    g = torch.rand(3, 1, 8, 8)
    garment, background, new = torch.rand(3, 3) * 2 - 1, torch.rand(3, 3) * 2 - 1, torch.rand(3, 3) * 2 - 1
    background[:, 0] = -garment[:, 0]  # keep the two colours apart
    images = g * garment[..., None, None] + (1 - g) * background[..., None, None]
    out = recolour(images, torch.stack([garment, background], 1), torch.stack([new, background], 1))
    want = g * new[..., None, None] + (1 - g) * background[..., None, None]
    assert torch.allclose(out, want.clamp(-1, 1), atol=1e-5)
    same = recolour(images, torch.stack([garment, background], 1), torch.stack([garment, background], 1))
    assert torch.allclose(same, images.clamp(-1, 1), atol=1e-6)
