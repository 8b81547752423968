import numpy as np
import torch

from deae_aug.data.dataset import load_images, to_float
from deae_aug.evaluate.quality import reconstruction_accuracy, swap_accuracy
from deae_aug.models.autoencoder import Autoencoder, ModelConfig


class LookupModel(Autoencoder):
    """A perfectly disentangled model: block k of the code is the image's value of attribute k,
    and decoding renders the image of those values. ``blind`` blocks are ignored on decode."""

    def __init__(self, dataset, blind: tuple[int, ...] = ()) -> None:
        k_count = len(dataset.schema)
        super().__init__(
            ModelConfig(variant="gsl", resolution=32, block_sizes=[1] * k_count, widths=[4, 4, 4], fc=4)
        )
        self.dataset, self.blind = dataset, blind
        self.images = to_float(load_images(dataset))
        self.index = {tuple(r): i for i, r in enumerate(dataset.factors)}

    def encode_stats(self, x):
        rows = [int(((self.images - im).abs().flatten(1).sum(1)).argmin()) for im in x]
        return torch.from_numpy(self.dataset.factors[rows]).float(), None

    def decode(self, z):
        factors = z.round().long().numpy()
        factors[:, list(self.blind)] = 0
        return self.images[[self.index[tuple(f)] for f in factors]]


class LookupOracle(torch.nn.Module):
    """Reads the factors of the dataset image nearest to each decoded image."""

    def __init__(self, model: LookupModel) -> None:
        super().__init__()
        self.model = model

    def predict(self, images):
        return self.model.encode_stats(images)[0].long()


def test_a_disentangled_model_swaps_every_attribute_and_a_blind_block_swaps_none(small_fonts):
    fc = small_fonts.schema.position("font_color")
    small_fonts = small_fonts.select(
        np.flatnonzero(small_fonts.factors[:, fc] != 0)
    )  # all combinations exist
    model = LookupModel(small_fonts)
    oracle = LookupOracle(model)
    assert set(reconstruction_accuracy(model, oracle, small_fonts, limit=40).values()) == {1.0}
    result = swap_accuracy(model, oracle, small_fonts, pairs_per_attribute=20)
    assert all(r["swapped"] == 1.0 and r["preserved"] == 1.0 for r in result.values())

    blind = LookupModel(small_fonts, blind=(0,))  # decodes every letter as the first one
    result = swap_accuracy(blind, LookupOracle(blind), small_fonts, pairs_per_attribute=20)
    assert result["letter"]["swapped"] < 0.5 and result["size"]["swapped"] == 1.0
    reads = reconstruction_accuracy(blind, LookupOracle(blind), small_fonts, limit=40)
    assert reads["letter"] < 0.5 and reads["font"] == 1.0
