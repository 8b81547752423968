import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from deae_aug.models.autoencoder import Autoencoder, ModelConfig
from deae_aug.training.losses import (
    NOVEL_CONTRAST,
    LossConfig,
    encode_groups,
    group_losses,
    head_loss,
    image_l1,
    interpolations,
    moved_loss,
)


class OracleModel(Autoencoder):
    """Blocks carry exactly their attribute: a tiny 'image' is its attribute vector, block k = value k."""

    def __init__(self, k_count: int, variant: str = "gsl") -> None:
        super().__init__(
            ModelConfig(variant=variant, resolution=8, block_sizes=[1] * k_count, widths=[4], fc=4)
        )
        self.k_count = k_count

    def encode_stats(self, x):
        return x[:, 0, 0, : self.k_count].clone(), None

    def decode(self, z):
        out = torch.zeros(z.shape[0], 3, 8, 8)
        out[:, 0, 0, : self.k_count] = z
        return out


def strict_groups(k_count: int = 3, g: int = 4) -> torch.Tensor:
    """(G, K+1, 3, 8, 8) with centre attributes c and partner k = c except k (+1 everywhere else)."""
    torch.manual_seed(0)
    x = torch.zeros(g, k_count + 1, 3, 8, 8)
    centre = torch.randint(0, 5, (g, k_count)).float()
    x[:, 0, 0, 0, :k_count] = centre
    for k in range(k_count):
        partner = centre + 1 + torch.rand(g, k_count)
        partner[:, k] = centre[:, k]
        x[:, 1 + k, 0, 0, :k_count] = partner
    return x


def test_swap_loss_is_zero_for_perfectly_disentangled_blocks():
    terms = group_losses(OracleModel(3), strict_groups(), LossConfig(swap=1.0, reg=0.0))
    assert terms["recon"].item() == 0 and terms["swap"].item() == 0


def test_swap_loss_is_positive_when_blocks_are_mixed_up():
    class Mixed(OracleModel):
        def encode_stats(self, x):
            z = x[:, 0, 0, : self.k_count]
            return z[:, [1, 0, 2]], None  # letter and size blocks exchanged

        def decode(self, z):
            return super().decode(z[:, [1, 0, 2]])

    terms = group_losses(Mixed(3), strict_groups(), LossConfig(swap=1.0, reg=0.0))
    assert terms["recon"].item() == 0 and terms["swap"].item() > 1e-3  # 3 of 192 pixels carry codes


def test_reg_ignores_the_interpolated_block():
    class Leaky(OracleModel):
        """Any off-grid (interpolated) code leaks into block 0 when re-encoded."""

        def decode(self, z):
            out = super().decode(z)
            out[:, 0, 0, 0] += 100.0 * (z != z.round()).any(dim=1).float()
            return out

    cfg = LossConfig(swap=0.0, reg=1.0, reg_attributes=[0])
    assert group_losses(Leaky(3, "deae"), strict_groups(), cfg)["reg"].item() == 0
    cfg = LossConfig(swap=0.0, reg=1.0, reg_attributes=[1])
    assert group_losses(Leaky(3, "deae"), strict_groups(), cfg)["reg"].item() > 0


def test_reg_gradient_flows_through_both_encoder_passes_and_decoder():
    model = Autoencoder(ModelConfig(variant="deae", resolution=8, block_sizes=[2, 2], widths=[4], fc=8))
    x = torch.rand(2, 3, 3, 8, 8) * 2 - 1
    terms = group_losses(model, x, LossConfig(swap=0.0, reg=1.0), torch.Generator().manual_seed(0))
    (grads_enc, grads_dec) = torch.autograd.grad(
        terms["reg"], [model.encoder.fc[-1].weight, model.decoder.fc[0].weight]
    )
    assert grads_enc.abs().sum() > 0 and grads_dec.abs().sum() > 0


def test_reg_decoder_only_trains_the_decoder_alone_and_keeps_the_value():
    model = Autoencoder(ModelConfig(variant="deae", resolution=8, block_sizes=[2, 2], widths=[4], fc=8))
    x = torch.rand(2, 3, 3, 8, 8) * 2 - 1
    both = group_losses(model, x, LossConfig(swap=0.0, reg=1.0), torch.Generator().manual_seed(0))
    cfg = LossConfig(swap=0.0, reg=1.0, reg_decoder_only=True)
    terms = group_losses(model, x, cfg, torch.Generator().manual_seed(0))
    assert torch.allclose(terms["reg"], both["reg"])  # the same loss, only its gradient differs
    encoder = list(model.encoder.parameters())
    grads = torch.autograd.grad(terms["reg"], [*encoder, model.decoder.fc[0].weight], allow_unused=True)
    assert all(g is None or g.abs().sum() == 0 for g in grads[:-1])
    assert grads[-1].abs().sum() > 0


def test_variants_compute_only_their_terms():
    x = torch.rand(2, 3, 3, 8, 8) * 2 - 1
    expected = {
        "gae": {"recon"},
        "betavae": {"recon", "kl"},
        "gsl": {"recon", "swap"},
        "deae": {"recon", "swap", "reg", "cycle"},
    }
    for variant, names in expected.items():
        model = Autoencoder(ModelConfig(variant=variant, resolution=8, block_sizes=[2, 2], widths=[4], fc=8))
        terms = group_losses(model, x, LossConfig(cycle=0.5 if variant == "deae" else 0.0))
        assert set(terms) - {"total"} == names
        assert torch.isfinite(terms["total"])
        assert isinstance(model, nn.Module)


def test_foreground_weighting_counts_glyph_errors_above_background_errors():
    target = torch.zeros(2, 3, 16, 16)
    target[:, :, 6:10, 6:10] = 1.0  # a small 'glyph' on a plain background
    glyph_miss, bg_miss = target.clone(), target.clone()
    glyph_miss[:, :, 6:10, 6:10] = 0.0  # 16 px wrong, on the glyph
    bg_miss[:, :, 0:4, 0:4] = 1.0  # 16 px wrong by the same amount, on the background
    assert image_l1(glyph_miss, target, 0.0) == image_l1(bg_miss, target, 0.0)
    assert torch.allclose(image_l1(bg_miss, target, 0.0), F.l1_loss(bg_miss, target))
    weighted_glyph, weighted_bg = image_l1(glyph_miss, target, 1.0), image_l1(bg_miss, target, 1.0)
    assert weighted_glyph > 2 * weighted_bg
    # weights are normalised to mean 1: a uniform error costs the same as plain L1
    assert torch.allclose(image_l1(target + 0.5, target, 4.0), torch.tensor(0.5))


def test_latent_agreement_is_zero_for_disentangled_blocks_and_counts_only_shared_blocks():
    x = strict_groups()
    cfg = LossConfig(swap=1.0, reg=0.0, latent=1.0)
    assert group_losses(OracleModel(3), x, cfg)["latent"].item() == 0

    class Mixed(OracleModel):
        def encode_stats(self, x):
            return x[:, 0, 0, : self.k_count][:, [1, 0, 2]], None  # letter and size blocks exchanged

    mixed = group_losses(Mixed(3), x, cfg)["latent"]
    assert mixed.item() > 0.05
    # only the shared block of each partner is compared: a change to unshared blocks costs nothing
    y = x.clone()
    y[:, 1, 0, 0, 1:3] += 7.0  # partner 0 shares block 0 only
    terms = group_losses(OracleModel(3), y, cfg)
    assert terms["latent"].item() == 0
    assert "latent" not in group_losses(OracleModel(3), x, LossConfig(reg=0.0))  # off by default


def test_blend_is_zero_for_a_decoder_linear_in_the_block_and_counts_only_its_attributes():
    class Snapping(OracleModel):
        """Decodes block 2 only at whole values: in-between codes jump to one end."""

        def decode(self, z):
            z = z.clone()
            z[:, 2] = z[:, 2].round()
            return super().decode(z)

    x = strict_groups()
    cfg = LossConfig(swap=1.0, reg=0.1, blend=1.0, blend_attributes=[2])
    assert group_losses(OracleModel(3, "deae"), x, cfg)["blend"].item() < 1e-7  # linear: the blend itself
    assert group_losses(Snapping(3, "deae"), x, cfg)["blend"].item() > 1e-4
    assert (
        group_losses(Snapping(3, "deae"), x, LossConfig(reg=0.1, blend=1.0, blend_attributes=[0]))[
            "blend"
        ].item()
        < 1e-7
    )  # only block 2 snaps
    assert "blend" not in group_losses(Snapping(3, "deae"), x, LossConfig(reg=0.1, blend=0.0))


def test_classify_reads_each_attribute_from_its_own_block_and_skips_unknown_values():
    model = Autoencoder(
        ModelConfig(variant="deae", resolution=8, block_sizes=[2, 2], widths=[4], fc=8, head_classes=[3, 5])
    )
    x = torch.rand(2, 3, 3, 8, 8) * 2 - 1
    labels = torch.tensor([[[0, 4], [0, 1], [2, 4]], [[1, 3], [1, 0], [0, 3]]])
    cfg = LossConfig(swap=0.0, reg=1.0, classify=1.0)
    terms = group_losses(model, x, cfg, torch.Generator().manual_seed(0), labels)
    assert torch.isfinite(terms["classify"]) and terms["classify"] > 0
    z = model.encode(x.flatten(0, 1))
    grads = torch.autograd.grad(terms["classify"], [model.heads[0].weight, model.heads[1].weight])
    assert all(g.abs().sum() > 0 for g in grads)
    # head k sees block k only: changing block 1 leaves head 0's logits alone
    shifted = z.clone()
    shifted[:, model.blocks[1]] += 5
    assert torch.equal(model.classify(z)[0], model.classify(shifted)[0])
    assert not torch.equal(model.classify(z)[1], model.classify(shifted)[1])
    flat = labels.flatten(0, 1)
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[:, 0] = True  # attribute 1's value unknown (L_reg moved it): only head 0 counts
    assert torch.allclose(head_loss(model, z, flat, keep), F.cross_entropy(model.classify(z)[0], flat[:, 0]))
    with pytest.raises(ValueError, match="labels"):
        group_losses(model, x, cfg, torch.Generator().manual_seed(0))


class ReadOut(nn.Module):
    """An encoder without weights that reads the oracle image: pixel row 0 holds the code."""

    def __init__(self, k_count: int) -> None:
        super().__init__()
        self.k_count = k_count

    def forward(self, x):
        return x[:, 0, 0, : self.k_count].clone()


class JudgedOracle(OracleModel):
    """OracleModel with heads that read value v from a 1-d block z (logits s * (v z - v^2 / 2),
    largest at the v nearest z), and a decoder that may always draw attribute 0 as value 0."""

    def __init__(self, k_count: int, values: int, stubborn: bool = False) -> None:
        super().__init__(k_count, "deae")
        self.encoder = ReadOut(k_count)
        self.heads = nn.ModuleList(nn.Linear(1, values) for _ in range(k_count))
        v = torch.arange(values, dtype=torch.float32)
        for head in self.heads:
            head.weight.data = 20 * v[:, None]
            head.bias.data = -20 * v**2 / 2
        self.stubborn = stubborn

    def decode(self, z):
        out = super().decode(z)
        if self.stubborn:
            out[:, 0, 0, 0] = 0.0
        return out


def test_counterfactual_decodes_are_judged_as_the_values_they_were_built_from():
    x = strict_groups(k_count=3, g=4)
    labels = torch.zeros(4, 4, 3, dtype=torch.long)
    labels[:, 0] = x[:, 0, 0, 0, :3].long()  # the centres' values; only they are judged
    cfg = LossConfig(swap=1.0, reg=0.0, counterfactual=1.0)
    faithful = group_losses(JudgedOracle(3, 5), x, cfg, torch.Generator().manual_seed(0), labels)
    assert faithful["counterfactual"] < 1e-3  # every fake reads as its blocks' values, donor's included
    stubborn = JudgedOracle(3, 5, stubborn=True)
    assert group_losses(stubborn, x, cfg, torch.Generator().manual_seed(0), labels)["counterfactual"] > 0.5
    off = LossConfig(swap=1.0, reg=0.0)
    assert "counterfactual" not in group_losses(JudgedOracle(3, 5), x, off, None, labels)


def test_counterfactual_trains_the_decoder_only():
    model = Autoencoder(
        ModelConfig(variant="deae", resolution=8, block_sizes=[2, 2], widths=[4], fc=8, head_classes=[3, 5])
    )
    x = torch.rand(3, 3, 3, 8, 8) * 2 - 1
    labels = torch.tensor([[[0, 4], [0, 1], [2, 4]], [[1, 3], [1, 0], [0, 3]], [[2, 2], [2, 0], [1, 2]]])
    cfg = LossConfig(reg=1.0, classify=1.0, counterfactual=1.0)
    terms = group_losses(model, x, cfg, torch.Generator().manual_seed(0), labels)
    terms["counterfactual"].backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is None or not g.any() for name, g in grads.items() if not name.startswith("decoder"))
    assert any(g is not None and g.any() for name, g in grads.items() if name.startswith("decoder"))
    with pytest.raises(ValueError, match="labels"):
        group_losses(model, x, cfg, torch.Generator().manual_seed(0))


def test_zoom_charges_only_scales_above_one_and_pulls_them_down():
    """The zoom term is the mean excess of the codes' scales over 1: zero while every scale is at
    most 1, and otherwise a gradient that lowers the scale (the largest size is drawn at 1)."""
    x = torch.rand(2, 3, 3, 8, 8) * 2 - 1
    model = Autoencoder(
        ModelConfig(variant="gsl", resolution=8, block_sizes=[2, 2], widths=[4], fc=8, zoom=[1])
    )
    linear = model.decoder.zoom.scales[0]
    with torch.no_grad():
        linear.bias.fill_(0.8)
    assert float(group_losses(model, x, LossConfig(zoom=1.0))["zoom"].detach()) == 0.0
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.fill_(1.5)
    terms = group_losses(model, x, LossConfig(zoom=2.0))
    assert float(terms["zoom"].detach()) == pytest.approx(0.5)
    model.zero_grad()
    terms["zoom"].backward()
    assert float(linear.bias.grad) > 0  # gradient descent lowers the bias
    assert "zoom" not in group_losses(model, x, LossConfig())


def test_reg_novel_aims_colour_draws_at_legible_new_colours_and_leaves_other_blocks():
    """With reg_novel = 1 a colour layer's L_reg target paints a random colour (not the partner's),
    legible against the other layer; other attributes still move towards their partners."""
    cfg_model = ModelConfig(variant="deae", resolution=8, block_sizes=[3, 3, 3], widths=[4], fc=8,
                            style=[1, 2], style_mode="layers")  # fmt: skip
    torch.manual_seed(0)
    model = Autoencoder(cfg_model)
    x = torch.rand(64, 4, 3, 8, 8)
    b = encode_groups(model, x, None, None)
    paint = model.decoder.paint
    for novel, k in ((1.0, 1), (0.0, 1), (1.0, 0)):
        cfg = LossConfig(reg=1.0, reg_attributes=[k], reg_novel=novel)
        interp = interpolations(b, cfg, torch.Generator().manual_seed(0), model)
        ends, partners = interp.ends, b.zp[torch.arange(b.g), :, :]
        is_partner = torch.stack([
            torch.isclose(ends[:, model.blocks[k]], partners[:, j, model.blocks[k]]).all(1) for j in range(3)
        ]).any(0)  # fmt: skip
        if novel and k == 1:
            moved = ~is_partner  # the rest kept the contrast rule by falling back to a partner
            assert moved.float().mean() > 0.5
            colours = paint.palette(ends[moved])
            assert colours[:, 0].abs().max() <= 1 + 1e-5  # the drawn colour, painted exactly
            assert ((colours[:, 0] - colours[:, 1]).norm(dim=1) >= NOVEL_CONTRAST - 1e-5).all()
            assert torch.equal(ends[:, model.blocks[2]], b.zc[:, model.blocks[2]])  # one block at a time
        else:
            assert is_partner.all()


def test_reg_t_max_explores_past_the_partner_on_learned_blocks_only():
    """reg_t_max = 1.5 draws t in [0, 1.5] on a learned block, on the line through centre and
    partner; a colour layer's t stays in [0, 1], so its colour stays a blend of the two."""
    cfg_model = ModelConfig(variant="deae", resolution=8, block_sizes=[3, 3, 3], widths=[4], fc=8,
                            style=[1, 2], style_mode="layers")  # fmt: skip
    torch.manual_seed(0)
    model = Autoencoder(cfg_model)
    b = encode_groups(model, torch.rand(256, 4, 3, 8, 8), None, None)
    for k, high in ((0, 1.5), (1, 1.0)):
        interp = interpolations(b, LossConfig(reg_attributes=[k], reg_t_max=1.5), torch.Generator(), model)
        block = model.blocks[k]
        assert interp.t.max() <= high and interp.t.max() > high - 0.05
        expected = b.zc[:, block] + interp.t[:, None] * (interp.ends[:, block] - b.zc[:, block])
        assert torch.allclose(interp.codes[:, block], expected, atol=1e-5)
        other = model.blocks[2]  # an attribute not moved
        assert torch.equal(interp.codes[:, other], b.zc[:, other])


def test_reg_moved_charges_the_moved_block_against_the_interpolated_one():
    """reg_moved compares the re-encoded moved block with the interpolated block, and nothing
    else; the target carries no gradient, the decoder gets one; off (0), the term is absent."""
    cfg_model = ModelConfig(variant="deae", resolution=8, block_sizes=[3, 3, 3], widths=[4], fc=8)
    torch.manual_seed(0)
    model = Autoencoder(cfg_model)
    x = torch.rand(8, 4, 3, 8, 8)
    b = encode_groups(model, x, None, None)
    interp = interpolations(b, LossConfig(reg_attributes=[1]), torch.Generator().manual_seed(0), model)
    recoded = model.encode(model.decode(interp.codes))
    block = model.blocks[1]
    expected = (recoded[:, block] - interp.codes[:, block]).abs().mean() / interp.base.abs().mean()
    assert torch.allclose(moved_loss(recoded, interp), expected)
    elsewhere = recoded.clone()
    elsewhere[:, model.blocks[0]] += 1.0  # a kept block re-encoded differently: L_reg's business
    assert torch.equal(moved_loss(elsewhere, interp), moved_loss(recoded, interp))
    assert not moved_loss(recoded.detach(), interp).requires_grad  # no gradient through the target
    moved_loss(recoded, interp).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters())
    on = group_losses(model, x, LossConfig(reg=1.0, reg_moved=0.5), torch.Generator().manual_seed(0))
    off = group_losses(model, x, LossConfig(reg=1.0), torch.Generator().manual_seed(0))
    assert "moved" in on and on["moved"] > 0 and "moved" not in off
    assert torch.allclose(on["total"] - off["total"], 0.5 * on["moved"], atol=1e-5)


def test_palette_charges_each_colour_layer_against_its_values_rgb():
    torch.manual_seed(0)
    model = Autoencoder(
        ModelConfig(variant="gsl", resolution=8, block_sizes=[2, 3, 3], widths=[4], fc=8, style=[1, 2],
                    style_mode="layers", free_layer="none")
    )  # fmt: skip
    x = torch.rand(2, 4, 3, 8, 8) * 2 - 1
    labels = torch.randint(0, 2, (2, 4, 3))
    rgb = [torch.tensor([[1.0, -1, -1], [-1, 1, -1]]), torch.tensor([[-1.0, -1, 1], [0, 0, 0]])]
    for linear in model.decoder.paint.colours:  # every layer paints (0.5, 0.5, 0.5), whatever the code
        nn.init.zeros_(linear.weight)
        nn.init.constant_(linear.bias, 0.5)
    flat = labels.flatten(0, 1)
    want = torch.stack([rgb[0][flat[:, 1]], rgb[1][flat[:, 2]]], 1).sub(0.5).abs().mean()
    terms = group_losses(model, x, LossConfig(palette=2.0, palette_rgb=rgb), labels=labels)
    assert float(terms["palette"].detach()) == pytest.approx(float(want))
    terms["palette"].backward()
    assert model.decoder.paint.colours[0].bias.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="palette loss needs"):
        group_losses(model, x, LossConfig(palette=1.0, palette_rgb=rgb[:1]), labels=labels)


def test_recolour_reencodes_real_pixels_with_one_colour_layer_changed():
    """The term encodes each centre recoloured on its own pixels: the same coverage, one layer's
    colour replaced by another value's, the other kept; it trains the encoder."""
    torch.manual_seed(0)
    model = Autoencoder(
        ModelConfig(variant="gsl", resolution=8, block_sizes=[2, 3, 3], widths=[4], fc=8, style=[1, 2],
                    style_mode="layers", free_layer="none")
    )  # fmt: skip
    rgb = [torch.tensor([[1.0, -1, -1], [-1, 1, -1], [-1, -1, 1]]), torch.tensor([[-1.0, -1, -1], [1, 1, 1]])]
    labels = torch.stack(
        [torch.randint(0, 2, (3, 4)), torch.randint(0, 3, (3, 4)), torch.randint(0, 2, (3, 4))], 2
    )
    g = torch.rand(3, 4, 1, 8, 8)
    x = g * rgb[0][labels[..., 1]][..., None, None] + (1 - g) * rgb[1][labels[..., 2]][..., None, None]
    seen = []
    encode = model.encode
    model.encode = lambda images: seen.append(images) or encode(images)
    terms = group_losses(model, x, LossConfig(recolour=1.0, palette_rgb=rgb), labels=labels)
    recoloured, coverage = seen[-1], g[:, 0]
    for i in range(3):
        blends = [
            (f, b) for f in range(3) for b in range(2)
            if torch.allclose(recoloured[i], coverage[i] * rgb[0][f][:, None, None]
                              + (1 - coverage[i]) * rgb[1][b][:, None, None], atol=1e-4)
        ]  # fmt: skip
        assert len(blends) == 1  # the centre's own coverage, one garment and one background colour
        (f, b), own = blends[0], labels[i, 0]
        assert (f != own[1]) + (b != own[2]) == 1  # exactly one layer took another value
    terms["recolour"].backward()
    assert model.encoder.fc[-1].weight.grad.abs().sum() > 0
