"""Where a classifier looks: Grad-CAM maps (captum) and the glyph-focus ratio (paper Fig. 8 as a number).

ResNet-18 halves the resolution five times, so ``layer4`` sees 1x1 at 32 px and localises
nothing. ``gradcam_layer`` picks the deepest stage whose map is still at least 8x8 (``layer1``
at 32 px, ``layer2`` at 64 px, ``layer3`` at 128 px): a classifier that sees images enlarged
(``classifier.enlarge``) gives an 8x8 map at a deeper stage.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam

from deae_aug.data.dataset import to_float

# ResNet stages and the factor by which each shrinks the input
_STAGES = (("layer4", 32), ("layer3", 16), ("layer2", 8), ("layer1", 4))


def gradcam_layer(resolution: int, min_size: int = 8) -> str:
    """Name of the deepest ResNet stage whose feature map is at least ``min_size`` pixels wide."""
    for name, stride in _STAGES:
        if resolution // stride >= min_size:
            return name
    raise ValueError(f"{resolution} px is too small for a {min_size}x{min_size} Grad-CAM map (need >= 32 px)")


def gradcam_maps(
    model: torch.nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    layer: str | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """(N, H, W) non-negative Grad-CAM maps of uint8 ``images`` for class ``targets``, upsampled bilinearly.

    Attributes a copy of ``model`` whose ReLUs are not in place: captum's hooks read activations
    that an in-place ReLU would already have overwritten.
    """
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False
    size = images.shape[-2:]
    stage = getattr(model, layer or gradcam_layer(min(size)))
    cam = LayerGradCam(model, stage)
    device = next(model.parameters()).device
    maps = []
    for chunk, target in zip(images.split(batch_size), targets.split(batch_size), strict=True):
        x = to_float(chunk).to(device)
        attribution = cam.attribute(x, target=target.to(device), relu_attributions=True)
        upsampled = LayerAttribution.interpolate(attribution, size, "bilinear")
        maps.append(upsampled.clamp_min(0)[:, 0].detach().cpu())
    return torch.cat(maps)


def glyph_focus(maps: torch.Tensor, masks: torch.Tensor | np.ndarray, dilate: int = 0) -> np.ndarray:
    """Per image, the share of positive attribution that falls on the glyph (``masks`` in [0, 1]).

    ``dilate`` grows the glyph by that many pixels: a map upsampled from 4-pixel cells cannot
    land on a 1-2 pixel stroke exactly. Images with no positive attribution at all get NaN;
    average with ``np.nanmean``.
    """
    glyph = (torch.as_tensor(np.asarray(masks), dtype=maps.dtype) > 0.5).to(maps.dtype)
    if dilate:
        glyph = torch.nn.functional.max_pool2d(glyph[:, None], 2 * dilate + 1, stride=1, padding=dilate)[:, 0]
    total = maps.flatten(1).sum(1)
    inside = (maps * glyph).flatten(1).sum(1)
    ratio = torch.where(total > 0, inside / total.clamp_min(1e-12), torch.full_like(total, float("nan")))
    return ratio.numpy()


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """(H, W, 3) uint8 image blended with a jet-coloured (H, W) map, scaled to its own maximum."""
    x = heat / heat.max() if heat.max() > 0 else np.zeros_like(heat)
    jet = np.stack([np.clip(1.5 - np.abs(4 * x - c), 0, 1) for c in (3, 2, 1)], axis=-1)
    return np.round((1 - alpha) * image + alpha * 255 * jet).astype(np.uint8)
