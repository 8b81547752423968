"""Latent-space primitives shared by exploration, augmentation and evaluation.

A code is a (N, D) tensor whose attribute blocks are ``model.blocks[k]``; every operation here
edits one block and leaves the rest of the code untouched, which is what makes a change to
one attribute possible.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from deae_aug.data.dataset import to_float
from deae_aug.errors import UserError
from deae_aug.models.autoencoder import Autoencoder, recolour


@torch.no_grad()
def encode(model: Autoencoder, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Codes of float images in [-1, 1]; uint8 images are converted first."""
    device = next(model.parameters()).device
    if images.dtype == torch.uint8:
        images = to_float(images)
    chunks = [model.encode(chunk.to(device)).cpu() for chunk in images.split(batch_size)]
    return torch.cat(chunks) if chunks else torch.empty(0, model.cfg.latent_dim)


@torch.no_grad()
def decode(model: Autoencoder, codes: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Float images in [-1, 1] for ``codes``."""
    device = next(model.parameters()).device
    return torch.cat([model.decode(chunk.to(device)).cpu() for chunk in codes.split(batch_size)])


@torch.no_grad()
def decode_edit(
    model: Autoencoder, edited: torch.Tensor, codes: torch.Tensor, images: torch.Tensor | None = None
) -> torch.Tensor:
    """Float images in [-1, 1] for the ``edited`` versions of ``codes``. Given the source
    ``images`` that ``codes`` encode, the source plus the decoder's change, D(edited) - D(codes),
    instead: the source keeps the detail the decoder never reproduces (a letter it never saw on
    that background), and only the edit comes from the model."""
    out = decode(model, edited)
    if images is None:
        return out
    source = to_float(images) if images.dtype == torch.uint8 else images
    return (source + out - decode(model, codes)).clamp(-1, 1)


@torch.no_grad()
def repaint_edit(
    model: Autoencoder, edited: torch.Tensor, codes: torch.Tensor, images: torch.Tensor
) -> torch.Tensor:
    """Float images in [-1, 1] for the ``edited`` versions of ``codes``, made on the source
    ``images``' own pixels: the colour layers' change recoloured there (`recolour`, with the
    palettes of both codes), any other block's change added as residual (`decode_edit`). A
    photograph keeps the texture and shading a decoded coverage smooths away."""
    paint = model.decoder.paint
    if paint is None:
        raise UserError("repaint needs colour attributes in model.style with model.style_mode: layers")
    source = (to_float(images) if images.dtype == torch.uint8 else images).cpu()  # as `decode` returns
    colours = model.cfg.dims(model.cfg.style)
    shaped = edited.clone()
    shaped[:, colours] = codes[:, colours]
    if not torch.equal(shaped, codes):  # a block besides the colours moved too
        source = decode_edit(model, shaped, codes, source)
    device = next(model.parameters()).device
    before, after = (paint.palette(c.to(device)).to(source) for c in (codes, edited))
    return recolour(source, before, after)


def swap(base: torch.Tensor, donor: torch.Tensor, block: slice) -> torch.Tensor:
    """``base`` with ``block`` taken from ``donor``."""
    out = base.clone()
    out[..., block] = donor[..., block]
    return out


def interpolate(
    base: torch.Tensor, target: torch.Tensor, block: slice, t: torch.Tensor | float
) -> torch.Tensor:
    """``base`` with ``block`` moved a fraction ``t`` (scalar or (N,)) of the way to ``target``."""
    t = torch.as_tensor(t, dtype=base.dtype)
    if t.ndim == 1:
        t = t[:, None]
    out = base.clone()
    out[..., block] = base[..., block] + t * (target[..., block] - base[..., block])
    return out


def repaint(model: Autoencoder, codes: torch.Tensor, k: int, colours: torch.Tensor) -> torch.Tensor:
    """``codes`` whose block ``k`` paints its layer with ``colours`` ((N, 3) in [-1, 1]). A layered
    colour block reaches the image only through a linear map W, so the smallest change that paints
    a given colour is exact: block + pinv(W) (colour - W block - bias). Any colour, seen in
    training or not, decodes as a clean flat layer (``model.style_mode: layers``)."""
    paint = model.decoder.paint
    if paint is None or k not in model.cfg.style:
        raise UserError(
            f"repaint needs a colour attribute of a layered decoder (model.style with style_mode: layers); "
            f"attribute {k} is not one"
        )
    return paint.repaint(codes, model.cfg.style.index(k), colours)


def interpolation_path(base: torch.Tensor, target: torch.Tensor, block: slice, steps: int) -> torch.Tensor:
    """(steps, D) codes from ``base`` (t=0) to ``base`` with ``target``'s block (t=1); 1-D inputs."""
    t = torch.linspace(0, 1, steps)
    return interpolate(base.expand(steps, -1), target.expand(steps, -1), block, t)


@torch.no_grad()
def scored_interpolations(
    model: Autoencoder,
    oracle: torch.nn.Module,
    codes: torch.Tensor,
    k: int,
    samples: int = 2000,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Block-k codes interpolated between random pairs of ``codes`` (t ~ U(0, 1)), and the
    oracle's (samples, n_values) probabilities for attribute k on their decodes."""
    g = torch.Generator().manual_seed(seed)
    i, j = torch.randint(len(codes), (2, samples), generator=g)
    moved = interpolate(codes[i], codes[j], model.blocks[k], torch.rand(samples, generator=g))
    return moved[:, model.blocks[k]], oracle.probabilities(decode(model, moved), k)


@torch.no_grad()
def walk_until(
    model: Autoencoder,
    read: Callable[[torch.Tensor], torch.Tensor],
    code: torch.Tensor,
    block: slice,
    direction: torch.Tensor,
    target: int,
    step: float,
    max_steps: int = 20,
) -> tuple[torch.Tensor, int | None]:
    """Step a 1-D ``code``'s block along ``direction`` until ``read`` (decoded images -> values,
    e.g. one oracle column) returns ``target``.

    Returns the codes from the start up to the first hit (all ``max_steps`` when there is none)
    and the number of steps taken, or None when the target was never read.
    """
    t = torch.arange(max_steps + 1, dtype=code.dtype)[:, None] * step
    path = code.repeat(max_steps + 1, 1)
    path[:, block] += t * torch.as_tensor(direction, dtype=code.dtype)
    hits = torch.nonzero(read(decode(model, path)) == target).flatten()
    if len(hits) == 0:
        return path, None
    first = int(hits[0])
    return path[: first + 1], first
