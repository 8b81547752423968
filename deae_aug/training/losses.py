"""Group losses of GSL-AE and DEAE, on a batch of GSL groups, as small term functions.

A batch ``x`` has shape (G, K + 1, 3, H, W): per group a centre (index 0) and, for each
attribute k, a partner (index 1 + k) that shares attribute k with the centre. Every decode of a
pass goes through the decoder in one call; a term weighted 0 is never computed.

Terms (image terms are L1, optionally weighted towards the glyph by ``foreground``):
- ``recon``: every image reconstructs itself.
- ``swap`` (GSL's L_sr): the centre with partner k's block k decodes to the centre, partner k
  with the centre's block k to partner k, and the cover code (every block k from partner k) to
  the centre.
- ``cycle`` (L_csr): swap a block the pair does not share, decode, re-encode, swap back, decode.
- ``latent``: partner k's block k equals the centre's, as a ratio to the gap between blocks that
  differ (a ratio, so collapsing every code to one point cannot lower it).
- ``reg`` (DEAE's L_reg, paper eq. 2): interpolate block k towards a partner that differs in k,
  decode, re-encode; every other block must match the centre's, relative to the mean |code|.
  ``reg_t_max`` > 1 lets t go past the partner on learned blocks (extrapolating edits).
  ``reg_decoder_only`` re-encodes without gradient to the encoder, so only the decoder answers.
- ``moved``: L_reg's moved block must re-encode as the interpolated block itself, so that an
  in-between code draws an in-between image instead of snapping to one end.
- ``blend``: an L_reg interpolation of a colour block decodes to the pixel blend of its ends.
- ``classify``: each block's linear head predicts its attribute, also on L_reg's re-encodings
  for the values they kept (so a block must tell apart values that never share an image).
- ``counterfactual``: a centre with block k from another group's centre must read, to the frozen
  encoder and heads, as the values it was built from.
- ``kl``: beta-VAE's KL divergence to N(0, I).
- ``palette``: each colour layer paints the RGB of its attribute's value (colour-named values).
- ``recolour``: L_reg on real pixels: each centre recoloured on its own pixels to another value of
  one colour layer (exact through the layer model, the colours known from the labels), re-encoded:
  that layer must paint the new colour and every other block stay, so no block reads a colour
  from the shape it was tied to.
- ``zoom``: the excess over 1 of the zoom scales of the training codes, so the decoder draws at
  the largest size and the others are antialiased shrinks of it.
What each addition measured is in docs/experiments/; lasting reasons in docs/design.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812

from deae_aug.data.fonts import MIN_CONTRAST
from deae_aug.models.autoencoder import Autoencoder, recolour


@dataclass
class LossConfig:
    swap: float = 1.0
    cycle: float = 0.0
    reg: float = 0.1
    beta: float = 4.0
    reg_attributes: Sequence[int] | None = None  # None: every attribute in turn
    reg_t: Literal["sample", "element"] = "sample"
    reg_draws: int = 1
    reg_decoder_only: bool = False  # False: the reference (L_reg trains encoder and decoder)
    reg_novel: float = 0.0  # 0: the reference (L_reg moves colour blocks towards partners only)
    reg_t_max: float = 1.0  # 1: the reference (t in [0, 1]); above, learned blocks go past the partner
    reg_moved: float = 0.0  # 0: the reference (L_reg does not look at the moved block's re-encoding)
    foreground: float = 0.0  # 0: plain L1 (the reference)
    latent: float = 0.0  # 0: the reference (image-level swaps only)
    blend: float = 0.0  # 0: the reference (L_reg only constrains the other blocks)
    blend_attributes: Sequence[int] = ()
    classify: float = 0.0  # 0: the reference (labels are only used to form groups)
    counterfactual: float = 0.0  # 0: the reference (no decode is judged by the heads)
    zoom: float = 0.0  # 0: zoom scales are free (no zoom in the reference)
    palette: float = 0.0  # 0: colour layers learn their colours from the images alone
    palette_rgb: Sequence[torch.Tensor] = ()  # per model.cfg.style attribute, (values, 3) in [-1, 1]
    recolour: float = 0.0  # 0: the encoder sees only the training images' own colours

    def weights(self) -> dict[str, float]:
        return {"recon": 1.0, "swap": self.swap, "latent": self.latent, "reg": self.reg, "cycle": self.cycle,
                "moved": self.reg_moved, "blend": self.blend, "kl": self.beta, "classify": self.classify,
                "counterfactual": self.counterfactual, "zoom": self.zoom,
                "palette": self.palette, "recolour": self.recolour}  # fmt: skip


def block_masks(model: Autoencoder, device: torch.device) -> torch.Tensor:
    """(K, D) float: row k is 1 on attribute k's latent block."""
    masks = torch.zeros(len(model.blocks), model.cfg.latent_dim, device=device)
    for k, block in enumerate(model.blocks):
        masks[k, block] = 1.0
    return masks


def mix(base: torch.Tensor, donor: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``base`` with the masked dimensions taken from ``donor`` (broadcasting)."""
    return base * (1 - mask) + donor * mask


def frozen_encode(model: Autoencoder, x: torch.Tensor) -> torch.Tensor:
    """Codes of ``x`` with gradients to ``x`` but none to the encoder's weights."""
    weights = {name: w.detach() for name, w in model.encoder.named_parameters()}
    return torch.func.functional_call(model.encoder, weights, (x,))


def image_l1(out: torch.Tensor, target: torch.Tensor, foreground: float = 0.0) -> torch.Tensor:
    """Mean L1, each pixel weighted by how far the target pixel is from the image's median colour."""
    if foreground == 0:
        return F.l1_loss(out, target)
    median = target.flatten(2).median(dim=2).values[..., None, None]  # (B, C, 1, 1)
    weight = 1 + foreground * (target - median).abs().sum(dim=1, keepdim=True)  # (B, 1, H, W)
    weight = weight / weight.mean(dim=(1, 2, 3), keepdim=True)
    return (weight * (out - target).abs()).mean()


def head_loss(
    model: Autoencoder,
    z: torch.Tensor,
    labels: torch.Tensor,
    keep: torch.Tensor | None = None,
    frozen: bool = False,
) -> torch.Tensor:
    """Mean cross-entropy of every attribute head on its block of ``z`` (N, D) against ``labels``
    (N, K); ``keep`` (N, K) bool leaves out the (row, attribute) pairs whose value is unknown.
    ``frozen`` heads pass gradients to ``z`` only."""
    losses = []
    for k, (head, block) in enumerate(zip(model.heads, model.blocks, strict=True)):
        weight, bias = (head.weight.detach(), head.bias.detach()) if frozen else (head.weight, head.bias)
        losses.append(F.cross_entropy(F.linear(z[:, block], weight, bias), labels[:, k], reduction="none"))
    stacked = torch.stack(losses, 1)
    return stacked.mean() if keep is None else stacked[keep].mean()


@dataclass
class Groups:
    """One batch of groups and its codes: what every term reads."""

    x: torch.Tensor  # (G, K+1, 3, H, W)
    z: torch.Tensor  # (G, K+1, D) codes (sampled for the beta-VAE)
    mu: torch.Tensor  # (G*(K+1), D)
    logvar: torch.Tensor | None
    masks: torch.Tensor  # (K, D)
    labels: torch.Tensor | None  # (G, K+1, K) value indices
    zc: torch.Tensor  # (G, D) the centres' codes
    zp: torch.Tensor  # (G, K, D) the partners' codes

    @property
    def g(self) -> int:
        return self.x.shape[0]

    @property
    def k(self) -> int:
        return self.x.shape[1] - 1

    @property
    def centres(self) -> torch.Tensor:
        """(G*K, 3, H, W): each centre once per attribute, partner order."""
        return self.x[:, :1].expand(-1, self.k, -1, -1, -1).flatten(0, 1)


def encode_groups(
    model: Autoencoder, x: torch.Tensor, generator: torch.Generator | None, labels: torch.Tensor | None
) -> Groups:
    """Codes of every image of the batch (sampled with ``generator`` for the beta-VAE)."""
    mu, logvar = model.encode_stats(x.flatten(0, 1))
    z = mu
    if logvar is not None:
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)  # CPU generator: any device
        z = mu + eps * (0.5 * logvar).exp()
    z = z.view(*x.shape[:2], -1)
    return Groups(x, z, mu, logvar, block_masks(model, x.device), labels, z[:, 0], z[:, 1:])


def swap_codes(b: Groups) -> torch.Tensor:
    """Centre with block k from partner k, partner k with the centre's block k, and the cover."""
    centre_swapped = mix(b.zc[:, None], b.zp, b.masks)
    partner_swapped = mix(b.zp, b.zc[:, None], b.masks)
    cover = (b.zp * b.masks).sum(dim=1)
    return torch.cat([centre_swapped.flatten(0, 1), partner_swapped.flatten(0, 1), cover])


def swap_loss(b: Groups, decoded: torch.Tensor, foreground: float) -> torch.Tensor:
    n = b.g * b.k
    parts = decoded.split([n, n, b.g])
    targets = [b.centres, b.x[:, 1:].flatten(0, 1), b.x[:, 0]]
    return sum(image_l1(out, t, foreground) for out, t in zip(parts, targets, strict=True)) / 3


def latent_loss(b: Groups) -> torch.Tensor:
    gap = ((b.zp[:, None] - b.zc[:, None, None]).abs() * b.masks[:, None]).sum(-1)  # (G, K block, K partner)
    eye = torch.eye(b.k, dtype=torch.bool, device=b.x.device)
    return gap[:, eye].mean() / (gap[:, ~eye].mean() + 1e-6)


@dataclass
class Interpolations:
    """L_reg's codes: block k of each centre moved a fraction t towards a partner differing in k."""

    codes: torch.Tensor  # (M, D) interpolated codes
    keep: torch.Tensor  # (M, D) 0 on the interpolated block, 1 elsewhere
    base: torch.Tensor  # (M, D) the centre codes
    ends: torch.Tensor  # (M, D) the centre with the partner's block k (t = 1)
    t: torch.Tensor  # (M,) how far (the block's mean when t is drawn per element)
    attribute: torch.Tensor  # (M,) k


NOVEL_CONTRAST = MIN_CONTRAST / 127.5  # the augmenter's legibility rule, in the decoder's [-1, 1]


def novel_donors(model: Autoencoder, b: Groups, k: int, generator: torch.Generator | None) -> tuple:
    """The centres with colour block ``k`` repainted a uniform random colour, and which of them keep
    the contrast rule (a glyph painted like its background cannot be read, so L_reg cannot ask for
    its letter): L_reg's exploration beyond the colours training shows."""
    paint, layer = model.decoder.paint, model.cfg.style.index(k)
    colours = (torch.rand(b.g, 3, generator=generator) * 2 - 1).to(b.zc)
    palette = paint.palette(b.zc)
    others = torch.cat([palette[:, :layer], palette[:, layer + 1 :]], 1)
    legible = (others - colours[:, None]).norm(dim=2).min(dim=1).values >= NOVEL_CONTRAST
    return paint.repaint(b.zc, layer, colours), legible


def interpolations(
    b: Groups, cfg: LossConfig, generator: torch.Generator | None, model: Autoencoder | None = None
) -> Interpolations:
    """For each draw and each attribute in ``cfg.reg_attributes``, one interpolation per group;
    with ``cfg.reg_novel``, that share of a colour layer's draws aims at a new colour instead."""
    g, k_count, d = b.zp.shape
    layered = model is not None and model.decoder.paint is not None
    zc, zp, masks, device = b.zc, b.zp, b.masks, b.x.device
    attrs = list(cfg.reg_attributes) if cfg.reg_attributes is not None else list(range(k_count))
    out, keep, ends, ts, which = [], [], [], [], []
    for _ in range(cfg.reg_draws):
        for k in attrs:
            # any partner j != k differs from the centre in k (strict groups); pick one per group
            offset = (
                torch.randint(1, max(k_count, 2), (g,), generator=generator)
                if k_count > 1
                else torch.zeros(g)
            )
            j = ((k + offset) % k_count).long().to(device)
            donor = zp[torch.arange(g, device=device), j]  # (G, D)
            if cfg.reg_novel > 0 and layered and k in model.cfg.style and len(model.cfg.style) > 1:
                novel, legible = novel_donors(model, b, k, generator)
                chosen = legible & (torch.rand(g, generator=generator).to(device) < cfg.reg_novel)
                donor = torch.where(chosen[:, None], novel, donor)
            shape = (g, 1) if cfg.reg_t == "sample" else (g, d)
            t = torch.rand(shape, generator=generator).to(device)
            if not (layered and k in model.cfg.style):
                t = t * cfg.reg_t_max  # past the partner: extrapolation (colour layers stay in gamut)
            moved = zc + t * (donor - zc)
            out.append(mix(zc, moved, masks[k]))
            keep.append((1 - masks[k]).expand(g, d))
            ends.append(mix(zc, donor, masks[k]))
            ts.append(t.expand(g, d)[:, masks[k].bool()].mean(1))
            which.append(torch.full((g,), k, device=device))
    draws = len(out)
    return Interpolations(
        torch.cat(out), torch.cat(keep), zc.repeat(draws, 1), torch.cat(ends), torch.cat(ts), torch.cat(which)
    )


def relative_l1(
    recoded: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, base: torch.Tensor
) -> torch.Tensor:
    """Mean |recoded - target| over ``mask``, relative to the mean |centre code| ``base`` (without
    gradient), so that shrinking the whole latent cannot lower it."""
    err = ((recoded - target).abs() * mask).sum() / mask.sum()
    return err / (base.abs().mean().detach() + 1e-6)


def reg_loss(recoded: torch.Tensor, interp: Interpolations, decoder_only: bool) -> torch.Tensor:
    base = interp.base.detach() if decoder_only else interp.base
    return relative_l1(recoded, base, interp.keep, interp.base)


def moved_loss(recoded: torch.Tensor, interp: Interpolations) -> torch.Tensor:
    """Distance of the re-encoded moved block from the interpolated one (the target carries no
    gradient: the decoder and the encoder must realise the request, not move it)."""
    return relative_l1(recoded, interp.codes.detach(), 1 - interp.keep, interp.base)


def classify_loss(
    model: Autoencoder, b: Groups, recoded: torch.Tensor | None, interp: Interpolations | None
) -> torch.Tensor:
    """Heads on every code; on L_reg's re-encodings, for every value but the moved one."""
    loss = head_loss(model, b.z.flatten(0, 1), b.labels.flatten(0, 1))
    if recoded is not None:
        kept = torch.ones(len(recoded), b.k, dtype=torch.bool, device=b.x.device)
        kept[torch.arange(len(recoded), device=b.x.device), interp.attribute] = False
        loss = loss + head_loss(model, recoded, b.labels[:, 0].repeat(len(recoded) // b.g, 1), kept)
    return loss


def blend_loss(
    model: Autoencoder,
    b: Groups,
    recon: torch.Tensor,
    moved: torch.Tensor,
    interp,
    blended,
    foreground: float,
) -> torch.Tensor:
    start = recon.view(b.g, b.k + 1, *b.x.shape[2:])[:, 0].repeat(len(interp.t) // b.g, 1, 1, 1)[blended]
    t = interp.t[blended].view(-1, 1, 1, 1)
    with torch.no_grad():
        end = model.decode(interp.ends[blended])
    return image_l1(moved[blended], ((1 - t) * start + t * end).detach(), foreground)


def counterfactual_codes(b: Groups, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each centre with block k from another group's centre, and the values it was built from."""
    offset = int(torch.randint(1, b.g, (1,), generator=generator))
    donor = torch.roll(torch.arange(b.g, device=b.x.device), offset)
    fakes = mix(b.zc[:, None], b.zc[donor][:, None], b.masks).detach()  # (G, K, D)
    eye = torch.eye(b.k, dtype=torch.bool, device=b.x.device)
    fake_labels = torch.where(eye, b.labels[donor, 0][:, None], b.labels[:, 0][:, None])  # (G, K, K)
    return fakes.flatten(0, 1), fake_labels.flatten(0, 1)


def cycle_codes(b: Groups) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and partner k with a block they do not share (k + 1) exchanged; and that mask."""
    mj = b.masks[(torch.arange(b.k, device=b.x.device) + 1) % b.k]  # (K, D)
    return torch.cat(
        [mix(b.zc[:, None], b.zp, mj).flatten(0, 1), mix(b.zp, b.zc[:, None], mj).flatten(0, 1)]
    ), mj


def cycle_loss(
    model: Autoencoder, b: Groups, decoded: torch.Tensor, mj: torch.Tensor, foreground: float
) -> torch.Tensor:
    """Re-encode the exchanged decodes, exchange back, decode: the originals must return."""
    za, zb = model.encode(decoded).chunk(2)
    mj = mj.repeat(b.g, 1)
    back = model.decode(torch.cat([mix(za, zb, mj), mix(zb, za, mj)]))
    return image_l1(back, torch.cat([b.centres, b.x[:, 1:].flatten(0, 1)]), foreground)


def zoom_loss(model: Autoencoder, b: Groups) -> torch.Tensor:
    """Mean excess of the training codes' zoom scales over 1: the largest size is drawn at scale 1."""
    return (model.decoder.zoom.scale(b.z.flatten(0, 1)) - 1).clamp(min=0).mean()


def palette_loss(model: Autoencoder, b: Groups, rgb: Sequence[torch.Tensor]) -> torch.Tensor:
    """L1 between each colour layer's colour and the RGB of the image's value of its attribute."""
    labels = b.labels.flatten(0, 1)
    painted = model.decoder.paint.palette(b.z.flatten(0, 1))  # (N, S, 3)
    target = torch.stack(
        [table.to(painted)[labels[:, k]] for k, table in zip(model.cfg.style, rgb, strict=True)], 1
    )
    return F.l1_loss(painted, target)


def recolour_loss(
    model: Autoencoder, b: Groups, rgb: Sequence[torch.Tensor], generator: torch.Generator | None
) -> torch.Tensor:
    """Each centre recoloured on its own pixels: one random colour layer takes another value's RGB.
    Re-encoded, that layer must paint the new colour (L1) and every other block must equal the
    centre's code (relative L1, target without gradient)."""
    device, rows = b.x.device, torch.arange(b.g, device=b.x.device)
    labels = b.labels[:, 0]  # (G, K)
    before = torch.stack([t.to(b.zc)[labels[:, k]] for k, t in zip(model.cfg.style, rgb, strict=True)], 1)
    layer = torch.randint(len(rgb), (b.g,), generator=generator).to(device)
    after = before.clone()
    for s, (k, table) in enumerate(zip(model.cfg.style, rgb, strict=True)):
        n = len(table)
        shift = torch.randint(1, max(n, 2), (b.g,), generator=generator).to(device)  # any other value
        new = (labels[:, k] + shift) % n
        after[:, s] = torch.where((layer == s)[:, None], table.to(b.zc)[new], before[:, s])
    z = model.encode(recolour(b.x[:, 0], before, after))
    keep = 1 - b.masks[torch.tensor(model.cfg.style, device=device)[layer]]  # (G, D)
    painted = model.decoder.paint.palette(z)[rows, layer]
    return relative_l1(z, b.zc.detach(), keep, b.zc) + F.l1_loss(painted, after[rows, layer])


def kl_loss(b: Groups) -> torch.Tensor:
    return -0.5 * (1 + b.logvar - b.mu.pow(2) - b.logvar.exp()).sum(dim=1).mean() / b.x[0, 0].numel()


def group_losses(
    model: Autoencoder,
    x: torch.Tensor,
    cfg: LossConfig,
    generator: torch.Generator | None = None,
    labels: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The enabled terms, weighted, and their sum under ``"total"``; ``labels`` (G, K + 1, K)
    are needed by ``classify`` and ``counterfactual`` only."""
    b = encode_groups(model, x, generator, labels)
    gsl = model.cfg.variant in ("gsl", "deae")
    on = {
        "swap": gsl and cfg.swap > 0,
        "reg": model.cfg.variant == "deae" and cfg.reg > 0,
        "cycle": gsl and cfg.cycle > 0 and b.k > 1,
        "classify": cfg.classify > 0,
    }
    on["latent"] = on["swap"] and cfg.latent > 0 and b.k > 1
    on["blend"] = on["reg"] and cfg.blend > 0 and bool(cfg.blend_attributes)
    on["counterfactual"] = on["swap"] and cfg.counterfactual > 0 and b.g > 1
    if (on["classify"] or on["counterfactual"]) and (labels is None or not model.heads):
        raise ValueError(
            "the classify and counterfactual losses need labels and a model built with head_classes"
        )

    terms = {}
    requests = {"recon": b.z.flatten(0, 1)}  # codes to decode, in one decoder call
    if on["swap"]:
        requests["swap"] = swap_codes(b)
    if on["latent"]:  # before the other codes: autograd then sums gradients in the reference's order
        terms["latent"] = latent_loss(b)
    if on["reg"]:
        interp = interpolations(b, cfg, generator, model)
        requests["reg"] = interp.codes.detach() if cfg.reg_decoder_only else interp.codes
    if on["counterfactual"]:
        requests["counterfactual"], fake_labels = counterfactual_codes(b, generator)
    if on["cycle"]:
        requests["cycle"], mj = cycle_codes(b)
    sizes = [len(c) for c in requests.values()]
    decoded = dict(zip(requests, model.decode(torch.cat(list(requests.values()))).split(sizes), strict=True))

    terms["recon"] = image_l1(decoded["recon"], x.flatten(0, 1), cfg.foreground)
    if on["swap"]:
        terms["swap"] = swap_loss(b, decoded["swap"], cfg.foreground)
    recoded = None
    if on["reg"]:
        encoder = frozen_encode if cfg.reg_decoder_only else lambda m, images: m.encode(images)
        recoded = encoder(model, decoded["reg"])
        terms["reg"] = reg_loss(recoded, interp, cfg.reg_decoder_only)
        if cfg.reg_moved > 0:
            terms["moved"] = moved_loss(recoded, interp)
    if on["classify"]:
        terms["classify"] = classify_loss(model, b, recoded, interp if on["reg"] else None)
    if on["blend"]:
        blended = torch.isin(interp.attribute, torch.tensor(list(cfg.blend_attributes), device=x.device))
        if blended.any():
            terms["blend"] = blend_loss(
                model, b, decoded["recon"], decoded["reg"], interp, blended, cfg.foreground
            )
    if on["counterfactual"]:
        judged = frozen_encode(model, decoded["counterfactual"])
        terms["counterfactual"] = head_loss(model, judged, fake_labels, frozen=True)
    if on["cycle"]:
        terms["cycle"] = cycle_loss(model, b, decoded["cycle"], mj, cfg.foreground)
    if cfg.palette > 0 or cfg.recolour > 0:
        if labels is None or model.decoder.paint is None or len(cfg.palette_rgb) != len(model.cfg.style):
            raise ValueError(
                "the palette loss needs labels, colour layers and one RGB table per style block "
                "(so does recolour)"
            )
    if cfg.palette > 0:
        terms["palette"] = palette_loss(model, b, cfg.palette_rgb)
    if cfg.recolour > 0:
        terms["recolour"] = recolour_loss(model, b, cfg.palette_rgb, generator)
    if cfg.zoom > 0 and model.decoder.zoom is not None:
        terms["zoom"] = zoom_loss(model, b)
    if b.logvar is not None:
        terms["kl"] = kl_loss(b)
    weights = cfg.weights()
    terms["total"] = sum(weights[name] * value for name, value in terms.items())
    return terms


class GroupLoss(torch.nn.Module):
    """The model and its losses as one module, so DistributedDataParallel sees one forward."""

    def __init__(self, model: Autoencoder, cfg: LossConfig) -> None:
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        return group_losses(self.model, x, self.cfg, generator, labels)
