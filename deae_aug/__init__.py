"""deae-aug: attribute-controlled data augmentation and dataset debiasing with DEAE."""

import importlib

from deae_aug.data.dataset import AttributeDataset
from deae_aug.data.fonts import FontsDataset
from deae_aug.data.manifest import ILabFontsDataset, ManifestDataset
from deae_aug.data.sampler import GroupSampler
from deae_aug.data.schema import Attribute, AttributeSchema
from deae_aug.data.shapes import ShapesDataset
from deae_aug.recipes import Recipe, load_recipe

__version__ = "0.1.0"
# the model-level API, imported on first use so that `import deae_aug` stays light
_LAZY = {
    "DEAEAugment": "deae_aug.augment.transform",
    "Debiaser": "deae_aug.debias.latent",
    "load_model": "deae_aug.training.run",
    "Run": "deae_aug.training.run",
}
__all__ = [
    "Attribute",
    "AttributeDataset",
    "AttributeSchema",
    "DEAEAugment",
    "Debiaser",
    "FontsDataset",
    "GroupSampler",
    "ILabFontsDataset",
    "ManifestDataset",
    "Recipe",
    "Run",
    "ShapesDataset",
    "load_model",
    "load_recipe",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deae_aug' has no attribute {name!r}")
