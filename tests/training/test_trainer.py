import json
import os
import pickle
import socket
import subprocess
import sys
import warnings

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from deae_aug.errors import UserError
from deae_aug.recipes import TrainSection, recipe_from_dict
from deae_aug.training import losses as losses_module
from deae_aug.training.run import load_model, training_split
from deae_aug.training.trainer import (
    TrainingError,
    ensure_trained,
    learning_rate,
    loss_config,
    resolve_device,
    train,
)

TINY = {
    "name": "tiny",
    "data": {
        "dataset": "fonts",
        "resolution": 16,
        "block_size": 4,
        "values": {
            "letter": ["A", "B", "C"],
            "size": ["small", "large"],
            "font_color": ["red", "blue"],
            "bg_color": ["yellow", "silver"],
            "font": ["DejaVu Sans", "DejaVu Serif"],
        },
    },
    "model": {"variant": "deae", "widths": [8, 16], "fc": 32},
    "train": {
        "steps": 6,
        "groups_per_step": 2,
        "lr": 2e-3,
        "log_every": 1,
        "sample_every": 3,
        "checkpoint_every": 3,
    },
}


def tiny(**train):
    data = json.loads(json.dumps(TINY))
    data["train"].update(train)
    return recipe_from_dict(data)


def weights(run):
    return load_file(next((run / "checkpoints").glob("step_*")) / "model.safetensors")


def test_loss_falls_and_outputs_are_written(tmp_path):
    train(tiny(steps=60, checkpoint_every=60, sample_every=60), tmp_path, device="cpu", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    first = sum(r["total"] for r in rows[:5]) / 5
    last = sum(r["total"] for r in rows[-5:]) / 5
    assert last < 0.8 * first
    assert (tmp_path / "samples" / "step_0000060.png").is_file()
    assert (tmp_path / "recipe.yaml").is_file()
    model, meta = load_model(tmp_path)
    assert meta["step"] == 60 and meta["schema"]["attributes"][0]["name"] == "letter"


@pytest.mark.parametrize(("classify", "counterfactual"), [(0.0, 0.0), (0.5, 0.0), (0.5, 0.5)])
def test_resume_gives_the_same_weights_as_a_straight_run(tmp_path, classify, counterfactual):
    straight, split = tmp_path / "straight", tmp_path / "split"
    # reg_start is a fraction of train.steps, so the 3-step leg must not move it: pin it to step 0
    loss = {"reg_start": 0, "classify": classify, "counterfactual": counterfactual}
    train(tiny(steps=6, loss=loss), straight, device="cpu", progress=False)
    train(tiny(steps=3, loss=loss), split, device="cpu", progress=False)
    train(tiny(steps=6, loss=loss), split, device="cpu", resume=True, progress=False)
    a, b = weights(straight), weights(split)
    assert a.keys() == b.keys()
    assert any(key.startswith("heads.") for key in a) == (classify > 0)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_existing_run_needs_resume(tmp_path):
    train(tiny(steps=3), tmp_path, device="cpu", progress=False)
    with pytest.raises(UserError, match="already has checkpoints; pass --resume"):
        train(tiny(steps=3), tmp_path, device="cpu", progress=False)


def test_mismatched_checkpoint_says_what_differs(tmp_path):
    train(tiny(steps=3), tmp_path, device="cpu", progress=False)
    recipe = tiny(steps=6)
    recipe.model.fc = 64
    with pytest.raises(
        UserError, match="does not match the recipe: model.fc: checkpoint has 32, recipe gives 64"
    ):
        train(recipe, tmp_path, device="cpu", resume=True, progress=False)


def test_finished_run_is_reused_only_for_the_same_settings(tmp_path):
    trained = train(tiny(steps=3), tmp_path, device="cpu", progress=False)
    reused = ensure_trained(tiny(steps=3, sample_every=1), tmp_path, device="cpu", progress=False)
    saved, loaded = trained.state_dict(), reused.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
    meta_file = next((tmp_path / "checkpoints").glob("step_*")) / "meta.json"
    meta = json.loads(meta_file.read_text())
    del meta["recipe"]["train"]["loss"]["blend"]  # a run saved before the keys existed
    del meta["model"]["head_classes"]
    meta_file.write_text(json.dumps(meta))
    ensure_trained(tiny(steps=3), tmp_path, device="cpu", progress=False)  # its default: same run
    message = r"train.lr: checkpoint has 0.002, recipe gives 0.001\); pick another"
    with pytest.raises(UserError, match=message):
        ensure_trained(tiny(steps=3, lr=1e-3), tmp_path, device="cpu", progress=False)


def test_a_gsl_run_is_reused_whatever_the_settings_only_deae_reads(tmp_path):
    def gsl(**loss):
        data = json.loads(json.dumps(TINY))
        data["model"]["variant"] = "gsl"
        data["train"].update(steps=3, loss=loss)
        return recipe_from_dict(data)

    def same(a, b, atol=0.0):
        a, b = a.state_dict(), b.state_dict()
        return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=atol) for k in a)

    trained = train(gsl(), tmp_path / "gsl", device="cpu", progress=False)
    other = train(gsl(reg=0.5, reg_start=0.2), tmp_path / "gsl2", device="cpu", progress=False)
    assert same(trained, other, atol=1e-5)  # the same model (up to float summation order): reuse is right
    reused = ensure_trained(
        gsl(reg=0.5, reg_start=0.2, beta=0.1, reg_moved=0.5, reg_t_max=1.5),
        tmp_path / "gsl",
        device="cpu",
        progress=False,
    )
    assert same(trained, reused)  # loaded, not trained again: GSL-AE reads neither L_reg nor beta
    with pytest.raises(UserError, match="train.loss.swap"):  # a setting GSL-AE does read
        ensure_trained(gsl(swap=0.5), tmp_path / "gsl", device="cpu", progress=False)
    train(tiny(steps=3), tmp_path / "deae", device="cpu", progress=False)
    for key, value in (("reg", 0.5), ("reg_moved", 0.5)):  # DEAE reads L_reg's settings
        with pytest.raises(UserError, match=f"train.loss.{key}"):
            ensure_trained(tiny(steps=3, loss={key: value}), tmp_path / "deae", device="cpu", progress=False)


def test_train_seed_reseeds_the_model_on_the_same_split(tmp_path):
    default = train(tiny(steps=2), tmp_path / "a", device="cpu", progress=False).state_dict()
    same = train(tiny(steps=2, seed=0), tmp_path / "b", device="cpu", progress=False).state_dict()
    other = train(tiny(steps=2, seed=1), tmp_path / "c", device="cpu", progress=False).state_dict()
    assert all(torch.equal(default[k], same[k]) for k in default)  # recipe seed 0 = train.seed 0
    assert not all(torch.equal(default[k], other[k]) for k in default)
    ensure_trained(tiny(steps=2, seed=0), tmp_path / "a", device="cpu", progress=False)  # reused as one model
    with pytest.raises(UserError, match="train.seed: checkpoint has 0, recipe gives 1"):
        ensure_trained(tiny(steps=2, seed=1), tmp_path / "a", device="cpu", progress=False)


def test_warm_start_from_gsl(tmp_path):
    recipe = tiny(steps=3)
    recipe.model.variant = "gsl"
    train(recipe, tmp_path / "gsl", device="cpu", progress=False)
    warm = tiny(steps=1, lr=0.0, init_from=str(tmp_path / "gsl"))  # lr 0: weights stay as loaded
    model = train(warm, tmp_path / "deae", device="cpu", progress=False)
    gsl_model, _ = load_model(tmp_path / "gsl")
    for (name, a), b in zip(model.state_dict().items(), gsl_model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    fresh = tiny(steps=1, lr=0.0)
    fresh.seed = 1
    other = train(fresh, tmp_path / "fresh", device="cpu", progress=False)
    assert not torch.equal(other.encoder.fc[0].weight, gsl_model.encoder.fc[0].weight)
    headed = tiny(steps=3, loss={"classify": 0.5})
    headed.model.variant = "gsl"
    train(headed, tmp_path / "gsl_heads", device="cpu", progress=False)
    dropped = tiny(steps=1, init_from=str(tmp_path / "gsl_heads"))  # a warm start may drop the heads
    assert len(train(dropped, tmp_path / "dropped", device="cpu", progress=False).heads) == 0
    added = tiny(steps=1, init_from=str(tmp_path / "gsl"), loss={"classify": 0.5})  # or add them
    assert len(train(added, tmp_path / "added", device="cpu", progress=False).heads) == 5


def test_nan_loss_stops_with_clear_message_and_keeps_checkpoint(tmp_path, monkeypatch):
    train(tiny(steps=3), tmp_path, device="cpu", progress=False)
    real = losses_module.group_losses

    def poisoned(*args, **kwargs):
        terms = real(*args, **kwargs)
        terms["total"] = terms["total"] * float("nan")
        return terms

    monkeypatch.setattr(losses_module, "group_losses", poisoned)
    with pytest.raises(TrainingError, match="loss is not finite at step 3.*last good checkpoint"):
        train(tiny(steps=6), tmp_path, device="cpu", resume=True, progress=False)
    _, meta = load_model(tmp_path)
    assert meta["step"] == 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_distributed_run(tmp_path):
    """torchrun --nproc_per_node=2 with gloo on the CPU: both ranks train, rank 0 writes the run."""
    recipe = tmp_path / "tiny.yaml"
    data = json.loads(json.dumps(TINY))
    data["train"].update(steps=4, groups_per_step=2, checkpoint_every=4, sample_every=4)
    recipe.write_text(yaml.safe_dump(data))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={free_port()}",
        "-m",
        "deae_aug.cli",
        "train",
        "--recipe",
        str(recipe),
        "--out",
        str(tmp_path / "run"),
        "--quiet",
        "--device",
        "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    _, meta = load_model(tmp_path / "run")
    assert meta["step"] == 4
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 4  # one writer


def test_recipe_loss_keys_reach_the_loss(tmp_path):
    recipe = tiny(loss={"foreground": 1.5, "reg": 0.3, "reg_attributes": ["size"]})
    cfg = loss_config(recipe, training_split(recipe))
    assert (cfg.foreground, cfg.reg, list(cfg.reg_attributes)) == (1.5, 0.3, [1])
    recipe = tiny(loss={"blend": 0.5, "blend_attributes": ["bg_color", "font_color"]})
    cfg = loss_config(recipe, training_split(recipe))
    assert (cfg.blend, list(cfg.blend_attributes)) == (0.5, [3, 2])
    recipe = tiny(loss={"blend": 0.5, "blend_attributes": ["colour"]})
    with pytest.raises(UserError, match=r"train\.loss\.blend_attributes.*'colour'"):
        loss_config(recipe, training_split(recipe))
    recipe = tiny(loss={"counterfactual": 0.1})
    with pytest.raises(UserError, match=r"train\.loss\.counterfactual.*needs train\.loss\.classify"):
        loss_config(recipe, training_split(recipe))


def test_cosine_schedule_falls_from_lr_to_five_percent_and_constant_stays():
    t = TrainSection(steps=100, lr=0.01, lr_schedule="cosine")
    rates = [learning_rate(t, s) for s in range(101)]
    assert rates[0] == pytest.approx(0.01) and rates[100] == pytest.approx(0.0005)
    assert rates[50] == pytest.approx(0.01 * (0.05 + 0.95 * 0.5))
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))
    assert learning_rate(TrainSection(steps=100, lr=0.01), 70) == 0.01


@pytest.mark.parametrize("style_mode", ["adain", "layers"])
def test_style_decoder_trains_resumes_and_reloads(tmp_path, style_mode):
    data = json.loads(json.dumps(TINY))
    data["model"]["style"] = ["font_color", "bg_color"]
    data["model"]["style_mode"] = style_mode
    recipe = recipe_from_dict(data)
    model = train(recipe, tmp_path, device="cpu", progress=False)
    assert model.cfg.style == [2, 3]
    reloaded, meta = load_model(tmp_path)
    assert meta["model"]["style"] == [2, 3] and meta["model"]["style_mode"] == style_mode
    z = torch.randn(2, reloaded.cfg.latent_dim)
    assert torch.equal(model.eval().decode(z), reloaded.decode(z))
    data["model"]["style"] = ["colour"]
    with pytest.raises(UserError, match=r"'model\.style'.*unknown attributes \['colour'\]"):
        train(recipe_from_dict(data), tmp_path / "bad", device="cpu", progress=False)


def test_layered_colours_train_on_shapes_and_recolour_without_moving_the_shape(tmp_path):
    """The layered pathway is not Fonts-specific: on shapes (one colour on black) the colour block
    paints one layer and the black background comes from the free layer."""
    recipe = recipe_from_dict(
        {
            "name": "shapes",
            "data": {"dataset": "shapes", "resolution": 16, "block_size": 3,
                     "values": {"shape": 2, "scale": 2, "orientation": 2, "x": 2, "y": 2, "color": 3}},
            "model": {"variant": "deae", "widths": [8, 16], "fc": 32,
                      "style": ["color"], "style_mode": "layers"},
            "train": {"steps": 4, "groups_per_step": 2, "sampler": "relaxed", "sample_every": 100},
        }
    )  # fmt: skip
    model = train(recipe, tmp_path, device="cpu", progress=False).eval()
    z = torch.randn(2, model.cfg.latent_dim)
    recoloured = z[:1].clone()
    recoloured[:, model.blocks[5]] = z[1:, model.blocks[5]]
    before, after = model.decoder.structure(z[:1]), model.decoder.structure(recoloured)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_damaged_weights_name_the_file_and_the_previous_checkpoint(tmp_path, damage):
    train(tiny(steps=6), tmp_path, device="cpu", progress=False)
    latest = tmp_path / "checkpoints" / (tmp_path / "checkpoints" / "latest").read_text().strip()
    weights_file = latest / "model.safetensors"
    data = weights_file.read_bytes()
    weights_file.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    with pytest.raises(UserError) as e:
        load_model(tmp_path)
    assert "\n" not in str(e.value)
    assert str(weights_file) in str(e.value) and "step_0000003 (the previous checkpoint)" in str(e.value)


def test_optimizer_state_that_would_run_code_is_refused_on_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train(tiny(steps=3), tmp_path / "run", device="cpu", progress=False)
    hostile = next((tmp_path / "run" / "checkpoints").glob("step_*")) / "optimizer.pt"
    torch.save({"state": _Payload()}, hostile)
    with pytest.raises(UserError, match="not a plain tensor checkpoint and was not loaded") as e:
        train(tiny(steps=6), tmp_path / "run", device="cpu", resume=True, progress=False)
    assert "\n" not in str(e.value) and "weights_only" not in str(e.value)
    assert not (tmp_path / "pwned.txt").exists()


def test_a_raw_pickle_optimizer_state_is_refused_without_torch_warning_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train(tiny(steps=3), tmp_path / "run", device="cpu", progress=False)
    hostile = next((tmp_path / "run" / "checkpoints").glob("step_*")) / "optimizer.pt"
    hostile.write_bytes(pickle.dumps({"state": _Payload()}, protocol=4))  # not torch.save's protocol 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning printed before the one-line error fails the test
        with pytest.raises(UserError, match="not a plain tensor checkpoint and was not loaded"):
            train(tiny(steps=6), tmp_path / "run", device="cpu", resume=True, progress=False)
    assert not (tmp_path / "pwned.txt").exists()


def test_resume_trims_the_rows_logged_after_the_last_checkpoint(tmp_path):
    train(tiny(steps=3), tmp_path, device="cpu", progress=False)
    log = tmp_path / "metrics.jsonl"
    with log.open("a") as f:  # what a run killed at step 5, after checkpoint 3, leaves behind
        f.write(json.dumps({"step": 4, "total": 1.0}) + "\n" + json.dumps({"step": 5, "total": 1.0}) + "\n")
        f.write('{"step": 6, "tot')
    train(tiny(steps=6), tmp_path, device="cpu", resume=True, progress=False)
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_beta_warmup_raises_the_kl_weight_from_zero(tmp_path):
    recipe = tiny(steps=4, loss={"beta": 2.0, "beta_warmup": 1.0})
    recipe.model.variant = "betavae"
    train(recipe, tmp_path, device="cpu", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    for row, weight in zip(rows, [0.0, 0.5, 1.0, 1.5], strict=True):  # beta * step / 4 at steps 0-3
        assert row["kl"] > 0
        assert row["total"] == pytest.approx(row["recon"] + weight * row["kl"], abs=2e-6)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("meta_list", r"meta.json is damaged \(no valid step, model, schema, recipe\)"),
        ("meta_without_model", r"meta.json is damaged \(no valid model\)"),
        ("wrong_shape", r"model.safetensors does not fit the model its meta.json describes"),
        ("missing_tensor", r"model.safetensors does not fit the model its meta.json describes"),
    ],
)
def test_checkpoints_that_do_not_describe_their_weights_are_one_line(tmp_path, damage, message):
    train(tiny(steps=6), tmp_path, device="cpu", progress=False)
    latest = tmp_path / "checkpoints" / (tmp_path / "checkpoints" / "latest").read_text().strip()
    meta, weights_file = latest / "meta.json", latest / "model.safetensors"
    if damage == "meta_list":
        meta.write_text("[1, 2]")
    elif damage == "meta_without_model":
        meta.write_text(json.dumps({k: v for k, v in json.loads(meta.read_text()).items() if k != "model"}))
    else:
        tensors = load_file(weights_file)
        first = next(iter(tensors))
        if damage == "wrong_shape":
            tensors[first] = torch.zeros(3, 3)
        else:
            del tensors[first]
        save_file(tensors, weights_file)
    with pytest.raises(UserError, match=message) as e:
        load_model(tmp_path)
    assert "\n" not in str(e.value) and "step_0000003 (the previous checkpoint)" in str(e.value)
    with pytest.raises(UserError, match=message):  # resuming reads the same files
        train(tiny(steps=9), tmp_path, device="cpu", resume=True, progress=False)


@pytest.mark.parametrize("name", ["bogus", "cuda:99" if torch.cuda.is_available() else "cuda", "meta"])
def test_devices_that_do_not_exist_here_are_one_line(name):
    with pytest.raises(UserError, match=f"device '{name}'"):
        resolve_device(name)


def test_a_just_trained_model_draws_what_the_reloaded_run_draws(tmp_path):
    """augment right after training and augment reusing the run must write the same images (at
    16 px and widths 8-16 the two memory layouts happen to round alike, so 32 px and 16-32-64)."""
    recipe = tiny(steps=3)
    recipe.data.resolution, recipe.model.widths = 32, [16, 32, 64]
    trained = train(recipe, tmp_path, device="cpu", progress=False)
    loaded, _ = load_model(tmp_path)
    z = torch.randn(16, trained.cfg.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(trained.decoder(z), loaded.decoder(z))
