import numpy as np
import pytest

from deae_aug.data.font_catalog import font_catalog, survey_fonts
from deae_aug.data.fonts import (
    COLORS,
    ILAB_COLORS,
    SIZES,
    V2_FONT_COLORS,
    FontsDataset,
    FontsRenderer,
    format_color,
    parse_color,
)
from deae_aug.errors import UserError


def test_catalog_has_at_least_12_distinct_families():
    catalog = font_catalog()
    assert len(catalog) >= 12
    renderer = FontsRenderer(32)
    masks = np.stack([[renderer.glyph_mask(c, "large", f) for c in "AgR"] for f in catalog])
    diffs = np.abs(masks[:, None] - masks[None]).mean(axis=(2, 3, 4)) + np.eye(len(catalog))
    assert diffs.min() > 0.01  # no two families draw these letters alike


def test_symbol_and_blank_faces_are_rejected():
    reports = {r.face.family: r for r in survey_fonts()}
    for family in ("cmsy10", "cmex10", "DejaVu Sans Display"):
        if family in reports:
            assert not reports[family].accepted, reports[family].reason


def test_palette_values_are_the_ilab_ones():
    assert ILAB_COLORS["red"] == (220, 20, 60)
    assert ILAB_COLORS["chocolate"] == (210, 105, 30)
    assert ILAB_COLORS["silver"] == (192, 192, 192)
    assert len(ILAB_COLORS) == 10
    assert set(V2_FONT_COLORS.values()) == {
        (255, 106, 106),
        (205, 205, 0),
        (34, 139, 34),
        (128, 128, 128),
        (0, 191, 255),
        (255, 20, 147),
    }
    assert parse_color("#0a0B0c") == (10, 11, 12)
    assert format_color((10, 11, 12)) == "#0a0b0c" and parse_color(format_color((0, 127.6, 255))) == (
        0,
        128,
        255,
    )
    with pytest.raises(UserError, match="unknown colour 'mauve'"):
        parse_color("mauve")


def test_render_is_deterministic_and_uses_exact_colours():
    a = FontsRenderer(32).render("Q", "large", "blue", "pink", "Lato")
    b = FontsRenderer(32).render("Q", "large", "blue", "pink", "Lato")
    np.testing.assert_array_equal(a, b)
    mask = FontsRenderer(32).glyph_mask("Q", "large", "Lato")
    assert (a[mask == 0] == COLORS["pink"]).all()
    assert (a[mask == 1] == COLORS["blue"]).all()
    assert ((mask > 0) & (mask < 1)).any()  # anti-aliased edges


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_glyph_is_centred_and_sizes_grow(resolution):
    renderer = FontsRenderer(resolution)
    inks = []
    for size in ("small", "medium", "large"):
        mask = renderer.glyph_mask("H", size, "DejaVu Sans")
        assert mask.shape == (resolution, resolution)
        ys, xs = np.nonzero(mask > 0.5)
        assert abs((ys.min() + ys.max()) / 2 - (resolution - 1) / 2) <= 1.5
        assert abs((xs.min() + xs.max()) / 2 - (resolution - 1) / 2) <= 1.5
        inks.append(mask.sum())
    assert inks[0] < inks[1] < inks[2]


def test_dataset_never_paints_font_colour_on_same_background(small_fonts):
    schema = small_fonts.schema
    fg = np.array(schema["font_color"].values)[small_fonts.factors[:, 2]]
    bg = np.array(schema["bg_color"].values)[small_fonts.factors[:, 3]]
    assert (fg != bg).all()
    # 4 letters x 2 sizes x (3 x 3 - 1 equal pair) x 3 fonts
    assert len(small_fonts) == 4 * 2 * 8 * 3


def test_sample_is_float_in_range_or_uint8(small_fonts):
    image, factors = small_fonts[5]
    assert image.shape == (3, 32, 32) and image.dtype.is_floating_point
    assert image.min() >= -1 and image.max() <= 1
    raw, _ = small_fonts.with_format("uint8")[5]
    assert raw.dtype.is_floating_point is False and raw.max() > 1
    np.testing.assert_allclose(image.numpy(), raw.numpy() / 127.5 - 1, atol=1e-6)
    assert factors.tolist() == small_fonts.factors[5].tolist()


def test_mask_matches_the_image(small_fonts):
    i = 17
    image = small_fonts.load_image(i)
    d = small_fonts.describe(i)
    mask = small_fonts.mask(i)
    assert (image[mask == 0] == COLORS[d["bg_color"]]).all()


def test_glyph_masks_at_sizes_between_the_named_ones(small_fonts):
    """An em fraction draws the glyph at that size: the named sizes' own fractions give their masks,
    an in-between one a glyph in between, and ``mask_at_scale`` stays within the schema's sizes."""
    renderer = small_fonts.renderer
    for name, em in SIZES.items():
        assert np.array_equal(
            renderer.glyph_mask("B", em, "DejaVu Serif"), renderer.glyph_mask("B", name, "DejaVu Serif")
        )
    ink = [renderer.glyph_mask("B", em, "DejaVu Serif").sum() for em in (0.45, 0.55, 0.65)]
    assert ink[0] < ink[1] < ink[2]
    small = next(i for i in range(len(small_fonts)) if small_fonts.describe(i)["size"] == "small")
    d = small_fonts.describe(small)
    large = renderer.glyph_mask(d["letter"], "large", d["font"])
    assert np.array_equal(small_fonts.mask_at_scale(small, SIZES["large"] / SIZES["small"]), large)
    assert np.array_equal(small_fonts.mask_at_scale(small, 5.0), large)  # no size beyond the schema's
    assert np.array_equal(small_fonts.mask_at_scale(small, 0.5), small_fonts.mask(small))
    with pytest.raises(UserError, match="unknown size 'huge'"):
        renderer.glyph_mask("B", "huge", "DejaVu Serif")


def test_unknown_font_names_the_available_ones():
    with pytest.raises(UserError, match="font: 'Comic Sans' is not available"):
        FontsDataset(values={"font": ["Comic Sans"]})


def test_render_edit_draws_the_interpolation_a_perfect_augmenter_would():
    ds = FontsDataset(
        {
            "letter": ["A"],
            "size": ["small", "large"],
            "font_color": ["red", "blue"],
            "bg_color": ["yellow", "silver"],
            "font": ["DejaVu Sans", "cmr10"],
        },  # fmt: skip
        resolution=16,
    )
    src = next(
        i
        for i in range(len(ds))
        if tuple(ds.describe(i).values()) == ("A", "small", "red", "yellow", "DejaVu Sans")
    )
    r = ds.renderer
    # colours: the RGB blend, rounded; a '#rrggbb' target (a novel colour) works the same way
    mid = ds.render_edit(src, {"bg_color": ("silver", 0.25)})
    blend = np.round(0.75 * np.array(COLORS["yellow"]) + 0.25 * np.array(COLORS["silver"]))
    assert np.array_equal(mid, r.render("A", "small", "red", format_color(blend), "DejaVu Sans"))
    blue = r.render("A", "small", "blue", "yellow", "DejaVu Sans")
    assert np.array_equal(ds.render_edit(src, {"font_color": ("blue", 1.0)}), blue)
    assert np.array_equal(ds.render_edit(src, {"font_color": ("#0000ff", 1.0)}), blue)
    # size: the named size nearest the blended em size (0.45 -> 0.85: medium 0.65 is t = 0.5)
    medium = r.render("A", "medium", "red", "yellow", "DejaVu Sans")
    assert np.array_equal(ds.render_edit(src, {"size": ("large", 0.4)}), medium)
    assert np.array_equal(ds.render_edit(src, {"size": ("large", 0.2)}), ds.load_image(src))
    # font: switches at t >= 0.5
    assert np.array_equal(ds.render_edit(src, {"font": ("cmr10", 0.49)}), ds.load_image(src))
    cmr = r.render("A", "small", "red", "yellow", "cmr10")
    assert np.array_equal(ds.render_edit(src, {"font": ("cmr10", 0.5)}), cmr)
    # several edits at once: each as alone, composed
    both = r.render("A", "large", "red", "yellow", "cmr10")
    assert np.array_equal(ds.render_edit(src, {"size": ("large", 1.0), "font": ("cmr10", 0.7)}), both)


def test_your_own_font_files_render_after_the_catalogs_checks(tmp_path):
    """``data.values.font`` takes TrueType/OpenType paths besides catalog names; a file that is
    not a font, or a face whose letters do not read as letters, is refused naming the file."""
    import shutil
    from pathlib import Path

    import matplotlib
    import yaml

    from deae_aug.data.build import build_dataset
    from deae_aug.errors import RecipeError
    from deae_aug.recipes import load_recipe

    bundled = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"
    (tmp_path / "faces").mkdir()
    shutil.copy(bundled / "DejaVuSans-BoldOblique.ttf", tmp_path / "faces" / "Mine.ttf")  # not in the catalog
    shutil.copy(bundled / "cmex10.ttf", tmp_path / "faces" / "Symbols.ttf")  # a math-extension face
    (tmp_path / "faces" / "Broken.otf").write_bytes(b"not a font")
    values = {"letter": ["A", "g"], "size": ["large"], "font_color": ["red"], "bg_color": ["blue"]}

    def recipe(font: str) -> Path:
        path = tmp_path / f"r{abs(hash(font))}.yaml"
        path.write_text(
            yaml.safe_dump(
                {"data": {"dataset": "fonts", "values": {**values, "font": ["DejaVu Sans", font]}}}
            )
        )
        return path

    dataset = build_dataset(load_recipe(recipe("faces/Mine.ttf")).data)  # relative to the recipe's folder
    mine = str((tmp_path / "faces" / "Mine.ttf").resolve())
    assert dataset.schema["font"].values == ("DejaVu Sans", mine)
    images = {
        dataset.describe(i)["font"] + dataset.describe(i)["letter"]: dataset.load_image(i)
        for i in range(len(dataset))
    }
    assert not np.array_equal(images["DejaVu SansA"], images[mine + "A"])  # its own face, drawn
    for font, message in (
        (
            "faces/Symbols.ttf",
            r"font file .*Symbols.ttf: (letter ... renders blank|only \d+% of letters recognisable)",
        ),
        ("faces/Broken.otf", r"font file .*Broken.otf is not a TrueType/OpenType font"),
        ("faces/Missing.ttf", r"font file .*Missing.ttf does not exist"),
    ):
        with pytest.raises(RecipeError, match=r"Recipe key 'data.values' in r\d+.yaml: " + message):
            build_dataset(load_recipe(recipe(font)).data, recipe(font).name)
