import pytest
import torch

from deae_aug.errors import UserError
from deae_aug.models.autoencoder import Autoencoder, ModelConfig, StyleNorm, rescale


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("variant", ["gae", "betavae", "gsl", "deae"])
def test_shapes_and_latent_blocks(resolution, variant):
    cfg = ModelConfig(variant=variant, resolution=resolution, block_sizes=[3, 4, 5], widths=[], fc=32)
    model = Autoencoder(cfg)
    x = torch.rand(2, 3, resolution, resolution) * 2 - 1
    z = model.encode(x)
    assert z.shape == (2, 12)
    assert [b.stop - b.start for b in model.blocks] == [3, 4, 5]
    out = model.decode(z)
    assert out.shape == x.shape and out.abs().max() <= 1


def test_eval_mode_computes_the_same_function():
    model = Autoencoder(ModelConfig(resolution=32, block_sizes=[4, 4], fc=32))
    x = torch.rand(3, 3, 32, 32)
    train_out = model.train()(x)
    assert torch.allclose(model.eval()(x), train_out)


def test_bad_widths_and_resolution_explain_the_fix():
    with pytest.raises(UserError, match="needs 3 entries at 32 px"):
        ModelConfig(resolution=32, widths=[16, 32])
    with pytest.raises(UserError, match="8 times a power of two"):
        ModelConfig(resolution=48)


def test_style_blocks_only_scale_and_shift_channels():
    """A style decoder draws the shape from the other blocks: changing a style block changes each
    channel of every upsampling stage by one scale and one shift, the same at every pixel."""
    torch.manual_seed(0)
    model = Autoencoder(ModelConfig(resolution=32, block_sizes=[3, 4, 5], fc=32, style=[1]))
    for module in model.modules():  # non-zero style weights, as after training
        if isinstance(module, StyleNorm):
            torch.nn.init.normal_(module.affine.weight)
    z = torch.randn(1, 12)
    z_new = z.clone()
    z_new[:, 3:7] = torch.randn(1, 4)  # another value of the style attribute
    first = model.decoder.conv[1]  # the first upsampling stage's transposed conv
    captured = []
    hook = first.register_forward_hook(lambda _m, _i, out: captured.append(out))
    a, b = model.decode(z), model.decode(z_new)
    hook.remove()
    assert torch.equal(captured[0], captured[1])  # everything before the first modulation ignores style
    assert not torch.allclose(a, b)  # and the style still reaches the image

    ref = Autoencoder(ModelConfig(resolution=32, block_sizes=[3, 4, 5], fc=32))
    assert model.decoder.fc[0].in_features == 8 and ref.decoder.fc[0].in_features == 12


def test_bad_style_explains_the_fix():
    with pytest.raises(UserError, match="distinct attribute positions"):
        ModelConfig(block_sizes=[3, 4], style=[1, 1])
    with pytest.raises(UserError, match="cannot hold every attribute"):
        ModelConfig(block_sizes=[3, 4], style=[0, 1])


@pytest.mark.parametrize("trained_like", [False, True])
def test_layered_colour_edits_leave_structure_exactly_unchanged(trained_like):
    """With style_mode="layers" a colour block only picks its layer's colour: swapping or
    interpolating colour blocks between any two codes leaves coverage and free layer identical,
    and a midway colour block decodes to the RGB blend of the two ends' images."""
    torch.manual_seed(0)
    cfg = ModelConfig(resolution=32, block_sizes=[3, 4, 5, 2], fc=32, style=[1, 3], style_mode="layers")
    model = Autoencoder(cfg).eval()
    if trained_like:  # weights far from their initial values
        for p in model.parameters():
            p.data.normal_(0, 0.5)
    a, b = torch.randn(2, 1, 14).unbind(0)
    colours = cfg.dims([1, 3])
    edited = a.clone()
    edited[:, colours] = b[:, colours]
    for name, z in (("swap", edited), ("midway", a + 0.5 * (edited - a))):
        for before, after in zip(model.decoder.structure(a), model.decoder.structure(z), strict=True):
            assert torch.equal(before, after), name
    mid = model.decode(a + 0.3 * (edited - a))
    assert torch.allclose(mid, 0.7 * model.decode(a) + 0.3 * model.decode(edited), atol=1e-5)
    assert not torch.allclose(model.decode(a), model.decode(edited))  # the colours do reach the image
    other = a.clone()
    other[:, 0:3] = b[:, 0:3]  # a content block redraws the layers
    assert not torch.equal(model.decoder.structure(a)[0], model.decoder.structure(other)[0])


def test_coverage_is_a_partition_and_reference_decoders_have_none():
    model = Autoencoder(ModelConfig(resolution=16, block_sizes=[3, 4], fc=16, style=[1], style_mode="layers"))
    coverage, free = model.decoder.structure(torch.randn(5, 7))
    assert coverage.shape == (5, 2, 16, 16) and free.shape == (5, 3, 16, 16)
    assert torch.allclose(coverage.sum(1), torch.ones(5, 16, 16))
    assert (
        coverage[:, -1].mean() < 0.02
    )  # the free layer starts nearly unused: colours go to the style layers
    with pytest.raises(ValueError, match="style_mode='layers'"):
        Autoencoder(ModelConfig(resolution=16, block_sizes=[3, 4], fc=16, style=[1])).decoder.structure(
            torch.randn(1, 7)
        )
    with pytest.raises(UserError, match="style_mode must be one of"):
        ModelConfig(block_sizes=[3, 4], style=[1], style_mode="paint")


@pytest.mark.parametrize("style_mode", ["adain", "layers"])
def test_zoom_blocks_only_scale_the_drawing_about_the_centre(style_mode):
    """A zoom block never reaches the spatial layers: codes that differ only there share every
    feature map, and the drawing is shrunk about the image centre by the block's scale, which
    blends linearly along an interpolation (midway size codes draw the midway size)."""
    torch.manual_seed(0)
    style = [2] if style_mode == "layers" else []
    cfg = ModelConfig(
        resolution=32, block_sizes=[3, 4, 2], fc=32, style=style, style_mode=style_mode, zoom=[1]
    )
    model = Autoencoder(cfg).eval()
    for p in model.parameters():  # weights far from their initial values
        p.data.normal_(0, 0.5)
    zoom = model.decoder.zoom
    with torch.no_grad():  # scales inside the unclamped range, as trained sizes are
        zoom.scales[0].weight.normal_(0, 0.1)
        zoom.scales[0].bias.fill_(0.8)
    a, b = torch.randn(2, 1, 9).unbind(0)
    edited = a.clone()
    edited[:, 3:7] = b[:, 3:7]
    assert torch.equal(model.decoder.features(a), model.decoder.features(edited))
    assert model.decoder.fc[0].in_features == 9 - 4 - len(cfg.dims(style))
    mid = a + 0.3 * (edited - a)
    s_a, s_b = zoom.scale(a), zoom.scale(edited)
    assert not torch.allclose(s_a, s_b)
    assert torch.allclose(zoom.scale(mid), 0.7 * s_a + 0.3 * s_b, atol=1e-6)
    assert float(zoom.scale(torch.cat([100 * a, -100 * a])).detach().min()) >= 0.05  # never mirrored or empty

    with torch.no_grad():  # scale 1, then 1/2: the half-size drawing is the antialiased resize
        zoom.scales[0].weight.zero_()
        zoom.scales[0].bias.fill_(1.0)
        full = model.decode(a)
        zoom.scales[0].bias.fill_(0.5)
        half = model.decode(a)
    assert not torch.allclose(full, half)
    if style_mode == "adain":
        drawing, shrunk = model.decoder.features(a), half  # the image before the zoom, and after
        expected = resize(drawing, 16)
    else:  # the layers' logits are scaled, then the softmax makes coverage of them
        with torch.no_grad():
            logits = model.decoder.paint.out(model.decoder.features(a))[:, : model.decoder.paint.layers]
            shrunk, _ = model.decoder.structure(a)
        expected = resize(logits, 16).softmax(dim=1)
    assert torch.allclose(shrunk[..., 9:23, 9:23], expected[..., 1:15, 1:15], atol=1e-5)


def resize(h: torch.Tensor, size: int) -> torch.Tensor:
    return torch.nn.functional.interpolate(h, size=size, mode="bilinear", antialias=True, align_corners=False)


def test_bad_zoom_explains_the_fix():
    with pytest.raises(UserError, match="model.zoom must list distinct"):
        ModelConfig(block_sizes=[3, 4, 2], zoom=[1, 1])
    with pytest.raises(UserError, match="both model.style and model.zoom"):
        ModelConfig(block_sizes=[3, 4, 2], style=[1], zoom=[1])
    with pytest.raises(UserError, match="cannot hold every attribute"):
        ModelConfig(block_sizes=[3, 4], style=[0], zoom=[1])


def test_rescale_enlarges_as_grid_sample_and_shrinks_as_an_antialiased_resize():
    """Enlarging is grid_sample's bilinear interpolation with border padding; shrinking is what an
    antialiased image resize computes, away from the border, which repeats the edge pixels."""
    h, scale = torch.randn(4, 3, 16, 12), torch.tensor([1.0, 1.3, 1.6, 2.5])
    theta = torch.zeros(4, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    grid = torch.nn.functional.affine_grid(theta, list(h.shape), align_corners=False)
    expected = torch.nn.functional.grid_sample(h, grid, padding_mode="border", align_corners=False)
    assert torch.allclose(rescale(h, scale), expected, atol=1e-5)

    h = torch.randn(2, 3, 32, 32)
    for s, size in ((0.5, 16), (0.25, 8), (0.75, 24)):
        lo, hi = 16 - size // 2, 16 + size // 2
        shrunk = rescale(h, torch.full((2,), s))[..., lo:hi, lo:hi]
        assert torch.allclose(shrunk[..., 2:-2, 2:-2], resize(h, size)[..., 2:-2, 2:-2], atol=1e-5)


def test_rescale_by_any_allowed_scale_is_finite_and_keeps_a_flat_image_flat():
    """Down to the zoom's floor of 0.05 (a drawing a few pixels wide) and up to 20x, every output
    pixel is a weighted mean of input pixels: finite, and a flat image stays flat."""
    scale = torch.tensor([0.05, 0.1, 0.3, 1.0, 4.0, 20.0])
    flat = torch.full((6, 2, 8, 8), 0.7)
    assert torch.allclose(rescale(flat, scale), flat, atol=1e-6)
    assert torch.isfinite(rescale(torch.randn(6, 2, 32, 32), scale)).all()


def test_a_shrunk_thin_stroke_keeps_its_ink_wherever_it_lies():
    """Bilinear sampling at a stride above one pixel skips lines that fall between its samples; the
    antialiased shrink keeps every stroke's share of ink (a glyph's font survives a size edit)."""
    lines = torch.zeros(14, 1, 32, 32)
    for i, column in enumerate(range(9, 23)):
        lines[i, 0, :, column] = 1.0
    ink = rescale(lines, torch.full((14,), 0.4)).sum(dim=(1, 2, 3))
    assert torch.allclose(ink, torch.full((14,), 0.4 * 32), rtol=0.02)


def test_zoom_learns_from_a_scale_of_exactly_one():
    """At scale 1 every pixel sits on a whole-pixel position, where |x| has no derivative; the
    scale must still get a gradient, or a zoom starting at 1 never learns (as happened once)."""
    model = Autoencoder(ModelConfig(resolution=16, block_sizes=[3, 4], fc=16, zoom=[1]))
    model.decode(torch.randn(4, 7)).square().mean().backward()
    assert model.decoder.zoom.scales[0].weight.grad.abs().sum() > 0
    assert model.decoder.zoom.scales[0].bias.grad.abs() > 0


@pytest.mark.parametrize("free_layer", ["grey", "none"])
def test_a_free_layer_without_rgb_cannot_paint_a_hue(free_layer):
    """Where a colour is tied to the class, an RGB free layer lets the content blocks paint it; a
    grey free layer paints only greys, and without one every pixel blends the style colours."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        resolution=16, block_sizes=[3, 4, 2], fc=16, style=[1, 2], style_mode="layers", free_layer=free_layer
    )
    model = Autoencoder(cfg).eval()
    for p in model.parameters():
        p.data.normal_(0, 0.5)
    z = torch.randn(4, 9)
    coverage, free = model.decoder.structure(z)
    palette = model.decoder.paint.palette(z)
    painted = torch.einsum("bshw,bsc->bchw", coverage[:, :2], palette)
    if free_layer == "none":
        assert free is None and coverage.shape[1] == 2
        assert torch.allclose(model.decode(z), painted, atol=1e-5)  # nothing but the style colours
    else:
        assert (
            coverage.shape[1] == 3
            and torch.equal(free[:, 0], free[:, 1])
            and torch.equal(free[:, 1], free[:, 2])
        )
        assert torch.allclose(model.decode(z), painted + coverage[:, 2:] * free, atol=1e-5)
    with pytest.raises(UserError, match="free_layer must be one of"):
        ModelConfig(block_sizes=[3, 4], style=[1], style_mode="layers", free_layer="hsv")
