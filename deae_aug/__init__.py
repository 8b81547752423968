"""deae-aug: attribute-controlled data augmentation and dataset debiasing with DEAE."""

from deae_aug.data.dataset import AttributeDataset
from deae_aug.data.fonts import FontsDataset
from deae_aug.data.manifest import ILabFontsDataset, ManifestDataset
from deae_aug.data.sampler import GroupSampler
from deae_aug.data.schema import Attribute, AttributeSchema
from deae_aug.data.shapes import ShapesDataset
from deae_aug.recipes import Recipe, load_recipe

__version__ = "0.1.0"
__all__ = [
    "Attribute",
    "AttributeDataset",
    "AttributeSchema",
    "FontsDataset",
    "GroupSampler",
    "ILabFontsDataset",
    "ManifestDataset",
    "Recipe",
    "ShapesDataset",
    "load_recipe",
]
