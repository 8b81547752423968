"""Base class of every attribute-labelled dataset: images plus a factors array read by the schema."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from deae_aug.data.schema import AttributeSchema
from deae_aug.errors import UserError

ImageFormat = Literal["float", "uint8"]


def to_tensor(image: np.ndarray, image_format: ImageFormat = "float") -> torch.Tensor:
    """(H, W, 3) uint8 array -> (3, H, W) tensor: float in [-1, 1], or uint8 unchanged."""
    if not image.flags.writeable:  # arrays read from PIL images are read-only
        image = image.copy()
    chw = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)  # (3, H, W)
    if image_format == "uint8":
        return chw.contiguous()
    return chw.float().div_(127.5).sub_(1.0)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (..., 3, H, W) -> float in [-1, 1], the range every model here works in."""
    return images.float().div(127.5).sub(1)


def from_float(images: torch.Tensor) -> torch.Tensor:
    """Float images (..., 3, H, W) in [-1, 1] -> uint8, the inverse of `to_float`."""
    return images.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


class AttributeDataset(Dataset):
    """Images with one integer factor per schema attribute.

    ``dataset[i]`` returns ``(image, factors)``: image of shape (3, H, W), float in [-1, 1]
    (``image_format="float"``) or uint8 (``"uint8"``); factors of shape (n_attributes,), int64.
    Subclasses implement :meth:`load_image`; ``select`` makes subsets that keep the schema.
    """

    schema: AttributeSchema
    factors: np.ndarray  # (N, n_attributes) int64
    image_format: ImageFormat = "float"
    contact_attribute: str | None = None  # one contact-sheet row per value of this attribute
    # the attribute that is the size of a centred object, if any: judges of edits must read the
    # other attributes at sizes between its values (see evaluate.oracle)
    scale_attribute: str | None = None
    # colour attributes painted flat where ``mask()`` is 1 ("object") or 0 ("background"); judges
    # of edits must read the other attributes on colours outside the palette (see evaluate.oracle)
    paint_layers: Mapping[str, str] = MappingProxyType({})
    # attributes no judge reads near-perfectly (a real photograph's class): the held-out accuracy
    # the attribute oracle must reach for each, instead of its default (see evaluate.oracle)
    oracle_require: Mapping[str, float] = MappingProxyType({})
    # the attribute oracle's training budget in epochs (a floor of steps applies to small datasets)
    oracle_epochs: int = 5
    # (N,) the underlying sample each row shows, where one sample appears in several rows (a
    # photograph in every colour), so that splits can give each sample to one split only; None
    # when every row is a sample of its own
    sample_ids: np.ndarray | None = None

    def load_image(self, index: int) -> np.ndarray:
        """The (H, W, 3) uint8 image of sample ``index``."""
        raise NotImplementedError

    @property
    def resolution(self) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.factors)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = to_tensor(self.load_image(int(index)), self.image_format)
        return image, torch.from_numpy(self.factors[int(index)].copy())

    def select(self, indices: np.ndarray) -> AttributeDataset:
        """A subset with the same schema; subclasses extend :meth:`_select_arrays`."""
        subset = copy.copy(self)
        subset._select_arrays(np.asarray(indices, dtype=np.int64))
        return subset

    def _select_arrays(self, indices: np.ndarray) -> None:
        self.factors = self.factors[indices]
        if self.sample_ids is not None:
            self.sample_ids = self.sample_ids[indices]

    def with_format(self, image_format: ImageFormat) -> AttributeDataset:
        if image_format not in ("float", "uint8"):
            raise UserError(f"image_format must be 'float' or 'uint8', got {image_format!r}")
        out = copy.copy(self)
        out.image_format = image_format
        return out

    def describe(self, index: int) -> dict[str, str]:
        return self.schema.describe(self.factors[index])

    def source_file(self, index: int) -> str | None:
        """The file sample ``index`` was read from (None: a rendered sample)."""
        return None

    def mask_at_scale(self, index: int, scale: float) -> np.ndarray | None:
        """(H, W) coverage of sample ``index`` with its object drawn ``scale`` times as large, or
        None where the dataset cannot redraw it (judges then resample the image instead)."""
        return None


def load_images(dataset: AttributeDataset, progress: bool = False) -> torch.Tensor:
    """Every image of ``dataset`` as one (N, 3, H, W) uint8 tensor."""
    ds = dataset.with_format("uint8")
    rows = tqdm(range(len(ds)), desc="render", unit="img", disable=not progress, leave=False)
    return torch.stack([ds[i][0] for i in rows])
