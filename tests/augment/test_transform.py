import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from deae_aug.augment.transform import DEAEAugment
from deae_aug.errors import UserError
from deae_aug.recipes import recipe_from_dict
from deae_aug.training.trainer import train

RECIPE = {
    "name": "aug-fixture",
    "data": {
        "dataset": "fonts",
        "resolution": 16,
        "block_size": 4,
        "values": {
            "letter": ["A", "B"],
            "size": ["small", "large"],
            "font_color": ["red", "blue"],
            "bg_color": ["yellow", "silver"],
            "font": ["DejaVu Sans", "DejaVu Serif"],
        },
    },
    "split": {"label": "letter"},
    "model": {"variant": "deae", "widths": [8, 16], "fc": 32},
    "train": {"steps": 2, "groups_per_step": 2, "sample_every": 100, "checkpoint_every": 100},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("aug-run")
    train(recipe_from_dict(RECIPE), path, device="cpu", progress=False)
    return path


def image_u8(seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 256, (3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def test_types_pass_through(run):
    aug = DEAEAugment(run, seed=0)
    x = image_u8()
    out = aug(x)
    assert out.dtype == torch.uint8 and out.shape == (3, 16, 16) and not torch.equal(out, x)
    f = aug(x.float() / 255)
    assert f.dtype == torch.float32 and 0 <= f.min() and f.max() <= 1
    pil = aug(Image.fromarray(x.permute(1, 2, 0).numpy()))
    assert isinstance(pil, Image.Image) and pil.size == (16, 16)
    wrapped = aug(tv_tensors.Image(x))
    assert isinstance(wrapped, tv_tensors.Image)
    image, label, extra = aug(x, 7, {"id": "x"})
    assert image.shape == (3, 16, 16) and label == 7 and extra == {"id": "x"}
    tv_image, plain = aug(tv_tensors.Image(x), torch.tensor([3]))
    assert torch.equal(plain, torch.tensor([3]))  # a plain tensor beside an Image is not an image


def test_masks_boxes_and_labels_of_a_sample_pass_through(run):
    x = image_u8()
    mask = tv_tensors.Mask(torch.ones(16, 16, dtype=torch.uint8))
    boxes = tv_tensors.BoundingBoxes([[2, 2, 10, 10]], format="XYXY", canvas_size=(16, 16))
    out = DEAEAugment(run, seed=0)({"image": tv_tensors.Image(x), "mask": mask, "boxes": boxes, "label": 3})
    assert not torch.equal(out["image"], x)
    assert out["mask"] is mask and out["boxes"] is boxes and out["label"] == 3


def test_label_is_protected_and_params_replay(run):
    aug = DEAEAugment(run, seed=1)
    assert "letter" in aug.protected and "letter" not in aug.attributes
    x = image_u8()
    first = aug(x)
    params = aug.last_params
    assert set(params) == {"apply", "edits"} and len(params["edits"]) == 1  # one edit by default
    assert (
        set(params["edits"][0]) == {"attribute", "partner", "t"}
        and params["edits"][0]["attribute"] != "letter"
    )
    assert torch.equal(aug.transform(x, params), first)  # logged params replay exactly


def test_several_edits_move_every_chosen_block_and_nothing_else(run):
    """``edits=(2, 3)``: each image changes 2 or 3 distinct attributes; the code handed to the
    decoder is the input's with exactly those blocks moved to the planned fraction t."""
    aug = DEAEAugment(run, seed=4, edits=(2, 3))
    x = torch.stack([image_u8(i) for i in range(8)])
    params = aug.draw(8)
    counts = [len(q["edits"]) for q in params]
    assert set(counts) == {2, 3} and all(
        len({e["attribute"] for e in q["edits"]}) == len(q["edits"]) for q in params
    )
    for q in params:
        q["apply"] = True
    decoded: list[torch.Tensor] = []
    hook = aug.model.decoder.register_forward_pre_hook(lambda module, args: decoded.append(args[0].clone()))
    try:
        aug.augment_batch(x, params)
    finally:
        hook.remove()
    with torch.no_grad():
        expected = aug.model.encode(x.float().div(127.5).sub(1))
    for i, q in enumerate(params):
        for e in q["edits"]:
            block = aug.model.blocks[aug.names.index(e["attribute"])]
            expected[i, block] += e["t"] * (aug.bank[e["partner"], block] - expected[i, block])
    assert torch.allclose(decoded[-1], expected, atol=1e-5)
    with pytest.raises(UserError, match=r"edits must be \(low, high\) with 1 <= low <= high <= 4"):
        DEAEAugment(run, edits=(1, 5))


def test_errors_name_the_problem(run):
    with pytest.raises(UserError, match="protected"):
        DEAEAugment(run, attributes=["letter"])
    with pytest.raises(UserError, match="'colour'"):
        DEAEAugment(run, attributes=["colour"])
    with pytest.raises(UserError, match="mode"):
        DEAEAugment(run, mode="warp")
    aug = DEAEAugment(run)
    with pytest.raises(UserError, match="32x32 but the model works at 16x16"):
        aug(torch.zeros(3, 32, 32, dtype=torch.uint8))
    with pytest.raises(UserError, match="3 channels"):
        aug(torch.zeros(1, 16, 16, dtype=torch.uint8))
    resized = DEAEAugment(run, resize=True)(torch.zeros(3, 32, 32, dtype=torch.uint8))
    assert resized.shape == (3, 32, 32)


def test_compose_and_p_zero(run):
    never = DEAEAugment(run, p=0.0)
    x = image_u8()
    assert torch.equal(never(x), x)
    pipeline = v2.Compose([DEAEAugment(run, seed=0), v2.ToDtype(torch.float32, scale=True)])
    out = pipeline(x)
    assert out.dtype == torch.float32 and out.shape == (3, 16, 16)


class Images(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int):
        return image_u8(i), i


def test_two_worker_dataloader_loads_model_lazily(run):
    aug = DEAEAugment(run, seed=0)
    assert pickle.loads(pickle.dumps(aug))._cache == {}  # workers get the run path, not weights

    class Augmented(Images):
        def __getitem__(self, i):
            return aug(*super().__getitem__(i))

    batches = list(DataLoader(Augmented(), batch_size=4, num_workers=2))
    images = torch.cat([b[0] for b in batches])
    labels = torch.cat([b[1] for b in batches])
    assert images.shape == (8, 3, 16, 16) and images.dtype == torch.uint8
    assert sorted(labels.tolist()) == list(range(8))


def test_seeded_draws_differ_across_workers_and_epochs_and_repeat_on_a_rerun(run):
    aug = DEAEAugment(run, seed=3)
    aug.draw(1)  # the main process draws before the workers fork

    class Params(Images):
        def __getitem__(self, i):
            (edit,) = aug.draw(1)[0]["edits"]
            return torch.tensor([edit["t"], edit["partner"]], dtype=torch.float64)

    def two_epochs() -> list[torch.Tensor]:
        torch.manual_seed(0)
        loader = DataLoader(Params(), batch_size=2, num_workers=2)
        return [torch.cat(list(loader)) for _ in range(2)]

    first, rerun = two_epochs(), two_epochs()
    t = torch.cat(first)[:, 0]
    assert len(set(t.tolist())) == len(t) == 16  # no worker or epoch repeats another's draws
    assert all(torch.equal(a, b) for a, b in zip(first, rerun, strict=True))


def test_batched_form_matches_per_sample(run):
    aug = DEAEAugment(run, seed=0, p=0.5)
    x = torch.stack([image_u8(i) for i in range(6)])
    out, params = aug.augment_batch(x)
    assert out.shape == x.shape and len(params) == 6
    for i, q in enumerate(params):
        single = aug.transform(x[i], q)
        assert (single.int() - out[i].int()).abs().max() <= 1  # same edit, batch or not
        if not q["apply"]:
            assert torch.equal(out[i], x[i])
    assert {q["apply"] for q in params} == {True, False}  # both branches ran (seed 0 draws both)
    whole = aug.transform(x, params[0] | {"apply": True})  # called on a batch: one draw for all, as v2
    for i in range(6):
        assert (aug.transform(x[i], params[0] | {"apply": True}).int() - whole[i].int()).abs().max() <= 1


def test_residual_adds_the_decoded_change_to_the_input(run):
    x = torch.rand(4, 3, 16, 16)
    params = DEAEAugment(run, seed=3).draw(4)
    for q in params:
        q["apply"] = True
    plain, _ = DEAEAugment(run).augment_batch(x, params)
    still = [dict(q, edits=[dict(e, t=0.0) for e in q["edits"]]) for q in params]
    residual = DEAEAugment(run, residual=True)
    assert torch.allclose(residual.augment_batch(x, still)[0], x, atol=1e-5)  # no move: the input
    moved, _ = residual.augment_batch(x, params)
    recon, _ = DEAEAugment(run).augment_batch(x, still)
    inside = torch.stack([(a > 0.01) & (a < 0.99) for a in (moved, plain, recon)]).all(0)  # unclamped
    assert torch.allclose((moved - x)[inside], (plain - recon)[inside], atol=1e-4)


PROTECT = {
    "name": "protect-fixture",
    "data": {
        "dataset": "fonts",
        "resolution": 16,
        "block_size": 6,
        "values": {
            "letter": ["A", "B"],
            "size": ["small", "large"],
            "font_color": ["red", "blue", "green"],
            "bg_color": ["yellow", "silver", "purple"],
            "font": ["DejaVu Sans", "DejaVu Serif"],
        },
    },
    "model": {"variant": "deae", "widths": [16, 32], "fc": 64},
    "train": {
        "steps": 300,
        "groups_per_step": 4,
        "lr": 0.002,
        "sample_every": 1000,
        "checkpoint_every": 1000,
    },
}


def test_protected_attribute_is_unchanged_by_the_oracle(tmp_path):
    """Vary letter, size and font colour while protecting the background: the oracle must still
    read every augmented image's original background."""
    from deae_aug.data.build import build_dataset
    from deae_aug.data.dataset import load_images
    from deae_aug.evaluate.oracle import fit_oracle

    recipe = recipe_from_dict(PROTECT)
    train(recipe, tmp_path, device="cpu", progress=False)
    dataset = build_dataset(recipe.data)
    oracle, accuracy = fit_oracle(dataset, progress=False)
    assert accuracy["bg_color"] >= 0.98
    images = load_images(dataset)
    aug = DEAEAugment(tmp_path, attributes=["letter", "size", "font_color"], protect=["bg_color"], seed=0)
    out, params = aug.augment_batch(images.repeat(2, 1, 1, 1))
    read = oracle.predict(out.float().div(127.5).sub(1))
    truth = torch.from_numpy(dataset.factors).repeat(2, 1)
    bg = dataset.schema.position("bg_color")
    assert (read[:, bg] == truth[:, bg]).float().mean() >= 0.95
    assert {e["attribute"] for q in params for e in q["edits"]} == {"letter", "size", "font_color"}


def test_udv_moves_only_the_chosen_block_along_another_values_direction(run):
    aug = DEAEAugment(run, attributes=["bg_color"], mode="udv", seed=0)
    x = torch.stack([image_u8(i) for i in range(4)])
    model, k = aug.model, 3  # bg_color is the fourth block
    decoded: list[torch.Tensor] = []  # the codes the transform hands to the decoder
    hook = model.decoder.register_forward_pre_hook(lambda module, args: decoded.append(args[0].clone()))
    try:
        out, params = aug.augment_batch(x)
    finally:
        hook.remove()
    with torch.no_grad():
        before = model.encode(x.float().div(127.5).sub(1))
    own = aug.own_values(before, k)
    udv, scale = aug.directions(k)
    assert scale > 0 and torch.allclose(udv.norm(dim=1)[udv.abs().sum(1) > 0], torch.ones(1))
    for i, q in enumerate(params):
        (edit,) = q["edits"]
        assert edit["attribute"] == "bg_color" and edit["value"] != own[i]  # towards another value
        step = decoded[-1][i] - before[i]
        assert torch.allclose(step[model.blocks[k]], edit["t"] * scale * udv[edit["value"]], atol=1e-5)
        assert (
            step.abs()[: model.blocks[k].start].max() < 1e-6
            and step.abs()[model.blocks[k].stop :].max() < 1e-6
        )


@pytest.fixture(scope="module")
def layered(tmp_path_factory):
    path = tmp_path_factory.mktemp("layered-run")
    recipe = json.loads(json.dumps(RECIPE))
    recipe["model"] |= {"style": ["font_color", "bg_color"], "style_mode": "layers"}
    train(recipe_from_dict(recipe), path, device="cpu", progress=False)
    return path


def test_partners_differ_from_the_images_own_value(layered):
    aug = DEAEAugment(layered, seed=1, edits=(1, 4))
    x = torch.stack([image_u8(i) for i in range(8)])
    _, params = aug.augment_batch(x)
    codes = aug._encode(x.float().div(127.5).sub(1))
    bank_values = aug._bank_factors
    checked = 0
    for i, q in enumerate(params):
        for edit in q["edits"]:
            k = aug.names.index(edit["attribute"])
            assert bank_values[edit["partner"], k] != aug.own_values(codes, k)[i]
            checked += 1
    assert checked >= 8


def test_novel_paints_legible_new_colours_exactly_and_interpolates_the_rest(layered, run):
    from deae_aug.data.fonts import MIN_CONTRAST, parse_color

    aug = DEAEAugment(layered, mode="novel", seed=2, edits=(1, 3))
    x = torch.stack([image_u8(i) for i in range(8)])
    decoded: list[torch.Tensor] = []  # the codes the transform hands to the decoder
    hook = aug.model.decoder.register_forward_pre_hook(lambda module, args: decoded.append(args[0].clone()))
    try:
        _, params = aug.augment_batch(x)
    finally:
        hook.remove()
    before = aug.layer_colours(aug._encode(x.float().div(127.5).sub(1)))
    after = aug.layer_colours(decoded[-1])
    painted = 0
    for i, q in enumerate(params):
        for edit in q["edits"]:
            k = aug.names.index(edit["attribute"])
            if k in before:  # a colour layer: a new colour, drawn exactly
                assert "partner" not in edit and edit["t"] == 1.0
                assert torch.allclose(
                    after[k][i], torch.tensor(parse_color(edit["colour"])).float(), atol=1e-2
                )
                painted += 1
            else:
                assert "partner" in edit  # size, font, letter interpolate as in `interpolate`
        fg, bg = (after[aug.names.index(a)][i] for a in ("font_color", "bg_color"))
        if any(aug.names.index(e["attribute"]) in before for e in q["edits"]):
            assert torch.dist(fg, bg) >= MIN_CONTRAST - 0.1  # the glyph stays legible on its background
    assert painted >= 4
    with pytest.raises(UserError, match="needs colour attributes in model.style"):
        DEAEAugment(run, mode="novel").augment_batch(x)


def test_seen_brightness_keeps_each_layers_new_colours_as_light_or_dark_as_its_training_ones(layered):
    from deae_aug.augment.transform import brightness_range
    from deae_aug.data.fonts import parse_color

    aug = DEAEAugment(layered, mode="novel", seed=3, edits=(1, 2), brightness="seen")
    x = torch.stack([image_u8(i) for i in range(16)])
    _, params = aug.augment_batch(x)
    seen = {k: brightness_range(c.numpy()) for k, c in aug.layer_colours(aug.bank).items()}
    painted = 0
    for q in params:
        for edit in q["edits"]:
            k = aug.names.index(edit["attribute"])
            if k in seen:
                value = max(parse_color(edit["colour"])) / 255
                assert seen[k][0] - 0.01 <= value <= seen[k][1] + 0.01, (edit, seen[k])
                painted += 1
    assert painted >= 8
    with pytest.raises(UserError, match="brightness must be one of"):
        DEAEAugment(layered, mode="novel", brightness="light")


def test_colour_at_brightness_spans_hue_and_saturation_at_the_asked_value():
    from deae_aug.augment.transform import brightness_range, colour_at_brightness

    rng = np.random.default_rng(0)
    colours = np.array([colour_at_brightness(rng.random(3), 0.2, 0.4) for _ in range(500)])
    low, high = brightness_range(colours)
    assert 0.2 - 0.005 <= low < 0.22 and 0.38 < high <= 0.4 + 0.005
    assert (
        colours.argmax(1).tolist().count(0) > 100 and colours.argmax(1).tolist().count(2) > 100
    )  # hues vary
    assert brightness_range(np.array([[0, 0, 110], [220, 20, 60]])) == (110 / 255, 220 / 255)
