import pytest
import torch

from deae_aug.errors import UserError
from deae_aug.models.autoencoder import Autoencoder, ModelConfig


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("variant", ["gae", "betavae", "gsl", "deae"])
def test_shapes_and_latent_blocks(resolution, variant):
    cfg = ModelConfig(variant=variant, resolution=resolution, block_sizes=[3, 4, 5], widths=[], fc=32)
    model = Autoencoder(cfg)
    x = torch.rand(2, 3, resolution, resolution) * 2 - 1
    z = model.encode(x)
    assert z.shape == (2, 12)
    assert [b.stop - b.start for b in model.blocks] == [3, 4, 5]
    out = model.decode(z)
    assert out.shape == x.shape and out.abs().max() <= 1


def test_eval_mode_computes_the_same_function():
    model = Autoencoder(ModelConfig(resolution=32, block_sizes=[4, 4], fc=32))
    x = torch.rand(3, 3, 32, 32)
    train_out = model.train()(x)
    assert torch.allclose(model.eval()(x), train_out)


def test_bad_widths_and_resolution_explain_the_fix():
    with pytest.raises(UserError, match="needs 3 entries at 32 px"):
        ModelConfig(resolution=32, widths=[16, 32])
    with pytest.raises(UserError, match="8 times a power of two"):
        ModelConfig(resolution=48)
