"""The GSL-style encoder/decoder shared by every variant (GAE, beta-VAE, GSL-AE, DEAE).

Encoder: 7x7 conv -> 4x4 stride-2 convs down to 8x8 -> residual blocks -> FC -> ReLU -> FC.
The decoder mirrors it and ends in tanh (images live in [-1, 1]). InstanceNorm keeps no running
statistics, so train and eval modes compute the same function. Variants differ only in their
losses, except beta-VAE, whose encoder also outputs a log-variance.

``style`` attributes (``model.style``, e.g. the colours) never reach the decoder's spatial layers
directly. With ``style_mode="adain"`` they set the per-channel scale and shift of the upsampling
stages' InstanceNorms: the same at every pixel, but able to switch shape-carrying channels on and
off, so a colour block can still redraw a glyph where every letter owns one colour. With
``style_mode="layers"`` the other blocks decode colour-free layers (a softmax coverage map per style
attribute plus one free RGB layer) and each style block only chooses, through a linear map, the
flat colour its layer is painted with, after the last spatial layer. Changing style blocks then
cannot move a single pixel of coverage, and interpolating a style block blends its colour in RGB
exactly (the map is linear), for any weights, trained or not.

``zoom`` attributes (``model.zoom``, e.g. the size of a centred object) never reach the spatial
layers either: each such block sets, through a linear map, one scale factor, and the decoder's
drawing (its coverage logits and free layer, or its image) is enlarged or shrunk about the image
centre by it. A zoom edit therefore changes only how large the drawing is, never its shape, and a
midway code draws the midway scale: a font cannot be lost on the way from small to large.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
from torch import nn

from deae_aug.errors import UserError

Variant = Literal["gae", "betavae", "gsl", "deae"]
VARIANTS = ("gae", "betavae", "gsl", "deae")
STYLE_MODES = ("adain", "layers")
FREE_LAYERS = ("rgb", "grey", "none")


def default_widths(resolution: int) -> list[int]:
    """Channel widths: 32 at full resolution, doubling per halving, capped at 128."""
    n_down = int(math.log2(resolution // 8))
    return [min(32 * 2**i, 128) for i in range(n_down + 1)]


@dataclass
class ModelConfig:
    variant: Variant = "deae"
    resolution: int = 32
    block_sizes: list[int] = field(default_factory=lambda: [20] * 5)
    widths: list[int] = field(default_factory=list)  # empty: default_widths(resolution)
    fc: int = 512
    res_blocks: int = 1
    head_classes: list[int] = field(default_factory=list)  # values per attribute; empty: no heads
    style: list[int] = field(default_factory=list)  # attributes kept out of the spatial layers
    style_mode: Literal["adain", "layers"] = "adain"  # how style blocks reach the image
    zoom: list[int] = field(default_factory=list)  # attributes that only scale the drawing
    free_layer: Literal["rgb", "grey", "none"] = "rgb"  # what the layers decoder's free layer may paint

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise UserError(f"model variant must be one of {VARIANTS}, got {self.variant!r}")
        n_down = math.log2(self.resolution / 8)
        if self.resolution < 8 or n_down != int(n_down):
            raise UserError(
                f"model resolution must be 8 times a power of two (8, 16, 32, ...), got {self.resolution}"
            )
        if self.head_classes and len(self.head_classes) != len(self.block_sizes):
            raise UserError(
                f"model.head_classes needs one entry per attribute ({len(self.block_sizes)}), "
                f"got {self.head_classes}"
            )
        for key, positions in (("style", self.style), ("zoom", self.zoom)):
            in_range = all(0 <= k < len(self.block_sizes) for k in positions)
            if len(set(positions)) != len(positions) or not in_range:
                raise UserError(f"model.{key} must list distinct attribute positions, got {positions}")
        if self.style_mode not in STYLE_MODES:
            raise UserError(f"model.style_mode must be one of {STYLE_MODES}, got {self.style_mode!r}")
        if self.free_layer not in FREE_LAYERS:
            raise UserError(f"model.free_layer must be one of {FREE_LAYERS}, got {self.free_layer!r}")
        if set(self.zoom) & set(self.style):
            raise UserError("an attribute cannot be in both model.style and model.zoom; choose one")
        if len(self.style) + len(self.zoom) == len(self.block_sizes):
            raise UserError("model.style and model.zoom cannot hold every attribute: one must draw the shape")
        if not self.widths:
            self.widths = default_widths(self.resolution)
        if len(self.widths) != int(n_down) + 1:
            raise UserError(
                f"model.widths needs {int(n_down) + 1} entries at {self.resolution} px "
                f"(one per scale from {self.resolution} down to 8 px), got {self.widths}"
            )

    @property
    def latent_dim(self) -> int:
        return sum(self.block_sizes)

    def blocks(self) -> list[slice]:
        """Each attribute's slice of the latent code."""
        edges = [0, *itertools.accumulate(self.block_sizes)]
        return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]

    def dims(self, attributes: list[int]) -> list[int]:
        """Latent dimensions of the blocks of ``attributes``, in order."""
        blocks = self.blocks()
        return [d for k in sorted(attributes) for d in range(blocks[k].start, blocks[k].stop)]

    def to_dict(self) -> dict:
        return asdict(self)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _norm_relu(channels: int) -> list[nn.Module]:
    return [nn.InstanceNorm2d(channels, affine=True), nn.ReLU(inplace=True)]


class StyleNorm(nn.Module):
    """InstanceNorm whose per-channel scale and shift are read from the style code (AdaIN)."""

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels)
        self.affine = nn.Linear(style_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)  # starts as a plain InstanceNorm
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        scale, shift = self.affine(style)[..., None, None].chunk(2, dim=1)
        return self.norm(x) * (1 + scale) + shift


class Paint(nn.Module):
    """Colour-free layers from the decoder's last features, painted with one flat colour per
    style block: coverage (softmax over style layers + one free layer) and the free layer's paint
    come from the content features alone; each colour is a linear map of its style block.

    The free layer (``free_layer``) paints any RGB (``"rgb"``), only greys (``"grey"``: shading,
    no hue) or does not exist (``"none"``: every pixel is a blend of the style colours). Where a
    colour is tied to the class and sits on the object, an RGB free layer lets the content blocks
    paint the colour themselves; with ``"grey"`` or ``"none"`` no weights can do that."""

    def __init__(self, cfg: ModelConfig, channels: int) -> None:
        super().__init__()
        blocks = cfg.blocks()
        self.blocks = [blocks[k] for k in cfg.style]
        self.free = {"rgb": 3, "grey": 1, "none": 0}[cfg.free_layer]  # channels of the free layer's paint
        self.layers = len(cfg.style) + (1 if self.free else 0)
        self.out = nn.Conv2d(channels, self.layers + self.free, 7, padding=3)  # coverage logits, free paint
        if self.free:  # the free layer starts at about 1% coverage: colours go to the style layers
            with torch.no_grad():
                self.out.bias[self.layers - 1] = -5.0
        self.colours = nn.ModuleList(nn.Linear(cfg.block_sizes[k], 3) for k in cfg.style)

    def structure(
        self, h: torch.Tensor, zoom: Zoom | None = None, z: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, layers, H, W) coverage summing to 1 at every pixel, and the (B, 3, H, W) free layer
        (None without one); with ``zoom``, both scaled by the zoom blocks of ``z``."""
        out = self.out(h)
        if zoom is not None:
            out = zoom(out, z)
        logits, free = out.split([self.layers, self.free], dim=1)
        return logits.softmax(dim=1), free.tanh().expand(-1, 3, -1, -1) if self.free else None

    def palette(self, z: torch.Tensor) -> torch.Tensor:
        """(B, S, 3) colours of the style layers, in [-1, 1] for trained codes."""
        return torch.stack([linear(z[:, b]) for linear, b in zip(self.colours, self.blocks, strict=True)], 1)

    def repaint(self, z: torch.Tensor, layer: int, colours: torch.Tensor) -> torch.Tensor:
        """``z`` whose style block ``layer`` paints ``colours`` ((N, 3) in [-1, 1]), changed by the
        least amount: the colour is a linear map W of the block, so block + pinv(W) (colour - W
        block - bias) paints it exactly, whatever the colour (no gradient: a target, not a path)."""
        linear, block = self.colours[layer], self.blocks[layer]
        out = z.detach().clone()
        with torch.no_grad():
            out[:, block] += (colours.to(z) - linear(z[:, block])) @ torch.linalg.pinv(linear.weight).T
        return out

    def forward(self, h: torch.Tensor, z: torch.Tensor, zoom: Zoom | None = None) -> torch.Tensor:
        coverage, free = self.structure(h, zoom, z)
        painted = torch.einsum("bshw,bsc->bchw", coverage[:, : len(self.blocks)], self.palette(z))
        return painted if free is None else painted + coverage[:, -1:] * free


def recolour(images: torch.Tensor, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """``images`` (N, 3, H, W) in [-1, 1] with their colour layers' colours (N, S, 3) changed from
    ``before`` to ``after`` on their own pixels: a layered decoder's image is its layers' coverage
    times their colours, so each pixel's coverage (summing to 1) is solved by least squares from its
    RGB, then x + sum_s a_s (after_s - before_s). Texture and shading the decoder would not redraw
    stay, and what the layers do not explain is kept as it is."""
    last = before[:, -1, :, None, None]  # (N, 3, 1, 1)
    basis = (before[:, :-1] - before[:, -1:]).transpose(1, 2)  # (N, 3, S-1): layer s minus the last
    coverage = torch.einsum("nsc,nchw->nshw", torch.linalg.pinv(basis), images - last).clamp(0, 1)
    coverage = torch.cat([coverage, (1 - coverage.sum(1, keepdim=True)).clamp(min=0)], 1)
    return (images + torch.einsum("nshw,nsc->nchw", coverage, after - before)).clamp(-1, 1)


class Zoom(nn.Module):
    """One scale factor from the zoom blocks (a product of one linear map per block, starting at 1),
    applied about the image centre by bilinear resampling; outside the scaled drawing the edge
    pixels repeat, so a shrunk drawing sits on its own background."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        blocks = cfg.blocks()
        self.blocks = [blocks[k] for k in cfg.zoom]
        self.scales = nn.ModuleList(nn.Linear(cfg.block_sizes[k], 1) for k in cfg.zoom)
        for linear in self.scales:
            nn.init.zeros_(linear.weight)
            nn.init.ones_(linear.bias)

    def scale(self, z: torch.Tensor) -> torch.Tensor:
        """(B,) scale factors, kept above 0.05 so that no code mirrors or empties the drawing."""
        factors = [linear(z[:, b]).squeeze(1) for linear, b in zip(self.scales, self.blocks, strict=True)]
        return torch.stack(factors).prod(0).clamp(min=0.05)

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return rescale(h, self.scale(z))


def rescale(h: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) maps scaled by ``scale`` (B,) about their centre, bilinearly, edge pixels
    repeated outside: the function of ``grid_sample`` with border padding, as two small matrix
    products per map (as fast as grid_sample forward and backward on a CPU)."""
    rows, cols = (_resample_matrix(scale, n) for n in h.shape[-2:])
    return torch.einsum("bij,bcjk,blk->bcil", rows, h, cols)


def _resample_matrix(scale: torch.Tensor, size: int) -> torch.Tensor:
    """(B, size, size): output pixel i reads position p = (i + 0.5 - size / 2) / scale + size / 2 - 0.5
    of the input through a tent filter of radius r = max(1, 1 / scale) input pixels, edge pixels
    repeated outside. Enlarging (r = 1) is bilinear interpolation; shrinking averages every input
    pixel the output pixel covers (antialiasing, as an image resize does), so a thin stroke is
    thinned, never dropped. Distances are written through the floor of p, as grid_sample's
    weights are: at a whole-pixel position (every pixel at scale 1) the gradient to the scale is
    one-sided, not zero, and the scale can start learning from exactly 1."""
    centre = size / 2 - 0.5
    out = torch.arange(size, device=scale.device, dtype=scale.dtype)
    radius = (1 / scale.detach()).clamp(min=1)[:, None, None]  # (B, 1, 1)
    reach = int(radius.max().ceil())
    # beyond one radius past the edge every tap is outside, so only the edge pixel is read
    source = ((out - centre) / scale[:, None] + centre).clamp(-reach, size - 1 + reach)  # (B, size)
    taps = torch.arange(-2 * reach - 1, size + 2 * reach + 1, device=scale.device, dtype=scale.dtype)
    below = taps <= source.detach().floor()[..., None]  # (B, size, taps)
    distance = torch.where(below, source[..., None] - taps, taps - source[..., None])
    reached = torch.where(below, distance < radius, distance <= radius)  # the taps grid_sample reads at r = 1
    weights = torch.where(reached, 1 - distance / radius, 0)
    weights = weights / weights.sum(-1, keepdim=True)
    index = taps.long().clamp(0, size - 1).expand_as(weights)
    return torch.zeros(*weights.shape[:2], size, dtype=scale.dtype, device=scale.device).scatter_add(
        -1, index, weights
    )


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig, out_dim: int) -> None:
        super().__init__()
        w = cfg.widths
        layers: list[nn.Module] = [nn.Conv2d(3, w[0], 7, padding=3, bias=False), *_norm_relu(w[0])]
        for c_in, c_out in zip(w[:-1], w[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False), *_norm_relu(c_out)]
        layers += [ResidualBlock(w[-1]) for _ in range(cfg.res_blocks)]
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Linear(w[-1] * 64, cfg.fc), nn.ReLU(inplace=True), nn.Linear(cfg.fc, out_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))  # (B, C*8*8) -> (B, out_dim)


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.widths[::-1]
        style = cfg.dims(cfg.style)
        content = [d for d in range(cfg.latent_dim) if d not in set(style) | set(cfg.dims(cfg.zoom))]
        self.register_buffer("style_dims", torch.tensor(style, dtype=torch.long), persistent=False)
        self.register_buffer("content_dims", torch.tensor(content, dtype=torch.long), persistent=False)
        self.fc = nn.Sequential(
            nn.Linear(len(content), cfg.fc),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.fc, w[0] * 64),
            nn.ReLU(inplace=True),
        )
        adain = bool(style) and cfg.style_mode == "adain"
        layers: list[nn.Module] = [ResidualBlock(w[0]) for _ in range(cfg.res_blocks)]
        for c_in, c_out in zip(w[:-1], w[1:], strict=True):
            norm = StyleNorm(c_out, len(style)) if adain else nn.InstanceNorm2d(c_out, affine=True)
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), norm, nn.ReLU()]
        self.paint = Paint(cfg, w[-1]) if style and not adain else None
        if self.paint is None:
            layers += [nn.Conv2d(w[-1], 3, 7, padding=3), nn.Tanh()]
        self.conv = nn.Sequential(*layers)
        self.zoom = Zoom(cfg) if cfg.zoom else None
        self.channels = w[0]

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """The spatial layers' output: the image, or the features ``paint`` turns into layers."""
        style = z[:, self.style_dims]
        content = z if len(self.content_dims) == z.shape[1] else z[:, self.content_dims]  # no copy: reference
        h = self.fc(content).view(-1, self.channels, 8, 8)  # (B, C, 8, 8)
        for layer in self.conv:
            h = layer(h, style) if isinstance(layer, StyleNorm) else layer(h)
        return h

    def structure(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Colour-free coverage and free layer of a ``style_mode="layers"`` decoder (see ``Paint``)."""
        if self.paint is None:
            raise ValueError(
                "only a decoder with style_mode='layers' and style blocks has colour-free layers"
            )
        return self.paint.structure(self.features(z), self.zoom, z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.features(z)
        if self.paint is not None:
            return self.paint(h, z, self.zoom)  # (B, 3, H, W)
        return h if self.zoom is None else self.zoom(h, z)


class Autoencoder(nn.Module):
    """Encoder + decoder with the latent split into one block per attribute."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        out_dim = cfg.latent_dim * (2 if cfg.variant == "betavae" else 1)
        self.encoder = Encoder(cfg, out_dim)
        self.decoder = Decoder(cfg)
        self.blocks = cfg.blocks()
        # one linear head per block, reading only that block: its attribute must be linearly
        # readable from it alone (train.loss.classify)
        self.heads = nn.ModuleList(
            nn.Linear(size, n) for size, n in zip(cfg.block_sizes, cfg.head_classes, strict=False)
        )

    def encode_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean, log-variance) for beta-VAE; (code, None) for the deterministic variants."""
        h = self.encoder(x)
        if self.cfg.variant == "betavae":
            mu, logvar = h.chunk(2, dim=1)
            return mu, logvar.clamp(-10, 10)
        return h, None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, latent_dim); beta-VAE returns the posterior mean."""
        return self.encode_stats(x)[0]

    def classify(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Per attribute, (B, values) logits of its head on its block of ``z``."""
        return [head(z[:, block]) for head, block in zip(self.heads, self.blocks, strict=True)]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
