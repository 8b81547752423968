"""The classic augmentations a practitioner tries first, as baselines for DEAE's rows.

Colour randomisation (hue rotation, channel permutation, inversion and their combinations; the
benchmarks choose one on validation), torchvision's automatic policies (TrivialAugment,
RandAugment, AugMix, default settings), TrivialAugment with colour randomisation, and geometric
ones (RandomAffine, ElasticTransform), which move strokes, the one thing a colour trick cannot.
Each is a list of v2 transforms, applied with a fresh draw per image by `per_image`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms import v2

COLOUR = {
    "hue": [v2.ColorJitter(hue=0.5)],
    "channels": [v2.RandomChannelPermutation()],
    "invert": [v2.RandomInvert()],
    "hue + channels": [v2.ColorJitter(hue=0.5), v2.RandomChannelPermutation()],
    "hue + channels + invert": [v2.ColorJitter(hue=0.5), v2.RandomChannelPermutation(), v2.RandomInvert()],
}
POLICIES = {
    "TrivialAugment": [v2.TrivialAugmentWide()],
    "RandAugment": [v2.RandAugment()],
    "AugMix": [v2.AugMix()],
}
# the strongest pipeline of a first try on Fonts (D_test 0.807, TrivialAugment alone 0.63)
COMBINED = {
    "TrivialAugment + hue + channels + invert": POLICIES["TrivialAugment"] + COLOUR["hue + channels + invert"]
}
GEOMETRIC = {
    "RandomAffine": [v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10)],
    "ElasticTransform": [v2.ElasticTransform()],
}
# every augmenter by the name its row carries ("colour: hue", "RandAugment", ...)
COLOUR_ROWS = {f"colour: {k}": v for k, v in COLOUR.items()}
CLASSIC = {**COLOUR_ROWS, **POLICIES, **COMBINED, **GEOMETRIC}


def per_image(transforms: list) -> Callable[[torch.Tensor], torch.Tensor]:
    """A uint8 batch transform applying a fresh draw of ``transforms`` to each image (v2 applies one
    draw per call)."""
    chain = v2.Compose(transforms)
    return lambda batch: torch.stack([chain(im) for im in batch])
