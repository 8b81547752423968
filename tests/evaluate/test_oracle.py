import copy

import pytest
import torch

from deae_aug.data.dataset import load_images
from deae_aug.data.fonts import MIN_CONTRAST, SIZES, FontsDataset, format_color, parse_color
from deae_aug.data.shapes import ShapesDataset
from deae_aug.errors import UserError
from deae_aug.evaluate import oracle as oracle_module
from deae_aug.evaluate.oracle import oracle_for


@pytest.fixture(scope="module")
def dataset():
    return FontsDataset(
        values={
            "letter": ["A", "B", "C"],
            "size": ["small", "large"],
            "font_color": ["red", "blue"],
            "bg_color": ["yellow", "silver", "green"],
            "font": ["DejaVu Sans"],
        },
        resolution=16,
        block_size=4,
    )


def test_oracle_reads_attributes_and_is_cached(dataset, tmp_path, monkeypatch):
    oracle, accuracy = oracle_for(dataset, cache=tmp_path, progress=False, require=0.0)
    assert set(accuracy) == set(dataset.schema.names)
    images = load_images(dataset).float().div(127.5).sub(1)
    read = oracle.predict(images)
    truth = torch.from_numpy(dataset.factors)
    hit = (read == truth).float().mean(0)
    assert read.shape == truth.shape
    assert hit.min() >= 0.9, hit  # colours, letters and sizes are easy at 16 px

    def must_not_train(*args, **kwargs):
        raise AssertionError("the cached oracle was retrained")

    monkeypatch.setattr(oracle_module, "fit_oracle", must_not_train)
    cached, cached_accuracy = oracle_for(dataset, cache=tmp_path, progress=False, require=0.0)
    assert cached_accuracy == accuracy
    assert torch.equal(cached.predict(images), read)
    assert torch.equal(cached.predict(load_images(dataset)), read)  # uint8 is scaled, not misread


def test_weak_oracle_is_refused_with_the_attribute_named(dataset, tmp_path):
    oracle_for(dataset, cache=tmp_path, progress=False, require=0.0)
    with pytest.raises(UserError, match="letter.*below the required"):
        oracle_for(dataset, cache=tmp_path, progress=False, require=1.01)


def test_other_values_get_another_cache_entry(dataset):
    other = FontsDataset(
        values={**{a.name: list(a.values) for a in dataset.schema.attributes}, "letter": ["A"]}, resolution=16
    )
    assert oracle_module.dataset_key(other) != oracle_module.dataset_key(dataset)


def test_a_dataset_sets_its_oracle_budget_and_a_judge_of_another_budget_is_not_reused(
    dataset, tmp_path, monkeypatch
):
    budgets = []
    monkeypatch.setattr(oracle_module, "fit_oracle", lambda d, epochs, **kw: budgets.append(epochs) or 1 / 0)
    longer = copy.copy(dataset)
    longer.oracle_epochs = 15
    for d in (dataset, longer):
        with pytest.raises(ZeroDivisionError):  # stops once the budget is recorded
            oracle_for(d, cache=tmp_path, progress=False)
    assert budgets == [5, 15]
    assert oracle_module.dataset_key(longer) != oracle_module.dataset_key(dataset)


@pytest.mark.parametrize("shapes", [False, True])
def test_repaint_draws_what_the_renderer_draws_with_the_new_colour(dataset, shapes):
    """The oracle's new-colour copies are exact renders (one colour replaced, far from the image's
    other colours), and the replaced attribute is the one whose head skips the copy."""
    small_shapes = {"x": 2, "y": 2, "orientation": 2}
    data = ShapesDataset(values=small_shapes, resolution=16, block_size=4) if shapes else dataset
    paint = oracle_module.Paint(data)
    batch = torch.randint(len(data), (400,), generator=torch.Generator().manual_seed(0))
    x = load_images(data).float().div(127.5).sub(1)[batch]
    out, lost = oracle_module._repaint(x, paint, batch, paint.masks[batch], torch.Generator().manual_seed(0))
    assert 0.4 < (lost >= 0).float().mean() < 0.6
    names = data.schema.names
    for i, index in enumerate(batch.tolist()):
        if lost[i] < 0:
            assert torch.equal(out[i], x[i])
            continue
        values, name = data.describe(index), names[lost[i]]
        mask = torch.from_numpy(data.mask(index))
        layer = mask if data.paint_layers[name] == "object" else 1 - mask
        j = layer.flatten().argmax()  # the pixel most of that colour tells which colour it is now
        old = torch.tensor(parse_color(values[name])).float()
        new = (old + (out[i] - x[i]).flatten(1)[:, j] * 127.5 / layer.flatten()[j]).round()
        others = [parse_color(v) for n, v in values.items() if n in data.paint_layers and n != name]
        for other in [*others, *([(0, 0, 0)] if shapes else [])]:
            assert torch.dist(new, torch.tensor(other).float()) >= MIN_CONTRAST - 1
        if shapes:
            rendered = mask[None] * new[:, None, None]
        else:
            values[name] = format_color(new)
            rendered = torch.from_numpy(data.renderer.render(**values)).permute(2, 0, 1).float()
        assert (rendered - (out[i] + 1) * 127.5).abs().max() <= 1.5


def test_redraw_renders_the_glyph_at_the_new_size_in_its_own_colours(dataset):
    """The oracle's resized Fonts copies are exact renders at the new em size (kept between the
    schema's sizes), not resampled images; the masks it returns are the ones drawn."""
    paint = oracle_module.Paint(dataset)
    batch = torch.arange(len(dataset))
    x = load_images(dataset).float().div(127.5).sub(1)
    out, picked, masks = oracle_module._redraw(x, dataset, paint, batch, torch.Generator().manual_seed(0))
    pick, factor = oracle_module._resize_factors(len(batch), torch.Generator().manual_seed(0))
    assert torch.equal(picked, pick) and 0.3 < pick.float().mean() < 0.7
    changed = 0
    for i in range(len(dataset)):
        if not pick[i]:
            assert torch.equal(out[i], x[i]) and torch.equal(masks[i, 0], torch.from_numpy(dataset.mask(i)))
            continue
        d = dataset.describe(i)
        em = min(max(SIZES[d["size"]] * float(factor[i]), SIZES["small"]), SIZES["large"])
        mask = torch.from_numpy(dataset.renderer.glyph_mask(d["letter"], em, d["font"]))
        fg, bg = (torch.tensor(parse_color(d[n])).float()[:, None, None] for n in ("font_color", "bg_color"))
        assert torch.allclose((out[i] + 1) * 127.5, bg + (fg - bg) * mask, atol=1e-3)
        assert torch.equal(masks[i, 0], mask)
        changed += not torch.equal(mask, torch.from_numpy(dataset.mask(i)))
    assert changed > 0
