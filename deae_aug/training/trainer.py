"""One training loop for GAE, beta-VAE, GSL-AE and DEAE.

Reads top to bottom: data and model from the recipe, resume or warm start, then the loop.
Every random draw of step s comes from (seed, s): the group sampler and a per-step torch
generator, so a run resumed from step s continues exactly as the uninterrupted run would.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

import deae_aug
from deae_aug.data.dataset import AttributeDataset
from deae_aug.data.fonts import parse_color
from deae_aug.data.sampler import GroupSampler
from deae_aug.errors import UserError
from deae_aug.io import atomic_write_text, remove_stale, save_png
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.recipes import Recipe, TrainSection
from deae_aug.training.checkpoint import (
    latest_checkpoint,
    load_meta,
    load_optimizer_state,
    restore_weights,
    save_checkpoint,
)
from deae_aug.training.losses import GroupLoss, LossConfig
from deae_aug.training.run import (
    Run,
    attribute_positions,
    check_attribute_keys,
    check_compatible,
    load_model,
    model_config,
    training_split,
)
from deae_aug.training.samples import sample_grid


class TrainingError(UserError):
    """Training cannot go on (e.g. a non-finite loss); the last good checkpoint is kept."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available; use --device auto or cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"device {name!r} is not a device; use --device auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UserError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA devices")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"device {name!r} is not supported; use --device auto, cpu or cuda[:N]")
    return device


def init_distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, device) under torchrun (gloo on CPU, nccl on GPU); (0, 1, device) otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def loss_config(recipe: Recipe, dataset: AttributeDataset) -> LossConfig:
    loss = recipe.train.loss

    def positions(key: str, names: list[str]) -> list[int]:
        return attribute_positions(recipe, dataset, f"train.loss.{key}", names)

    reg_attributes = None if loss.reg_attributes is None else positions("reg_attributes", loss.reg_attributes)
    if loss.counterfactual and not loss.classify:
        raise UserError(
            f"Recipe key 'train.loss.counterfactual' in {recipe.source} needs train.loss.classify > 0: "
            "the classify heads judge the counterfactual decodes"
        )
    return LossConfig(
        swap=loss.swap,
        cycle=loss.cycle,
        reg=loss.reg,
        beta=loss.beta,
        reg_attributes=reg_attributes,
        reg_t=loss.reg_t,
        reg_draws=loss.reg_draws,
        reg_decoder_only=loss.reg_decoder_only,
        reg_novel=loss.reg_novel,
        reg_t_max=loss.reg_t_max,
        reg_moved=loss.reg_moved,
        foreground=loss.foreground,
        latent=loss.latent,
        blend=loss.blend,
        blend_attributes=positions("blend_attributes", loss.blend_attributes),
        classify=loss.classify,
        counterfactual=loss.counterfactual,
        zoom=loss.zoom,
        palette=loss.palette,
        palette_rgb=palette_tables(recipe, dataset) if loss.palette or loss.recolour else (),
        recolour=loss.recolour,
    )


def palette_tables(recipe: Recipe, dataset: AttributeDataset) -> list[torch.Tensor]:
    """(values, 3) RGB in [-1, 1] of each model.style attribute, from its colour-named values."""
    if recipe.model.style_mode != "layers" or not recipe.model.style:
        raise UserError(
            f"Recipe keys 'train.loss.palette' and 'recolour' in {recipe.source} need model.style with "
            "model.style_mode: layers"
        )
    tables = []
    for name in recipe.model.style:
        try:
            rgb = [parse_color(v) for v in dataset.schema[name].values]
        except UserError as e:
            raise UserError(
                f"Recipe keys 'train.loss.palette' and 'recolour' in {recipe.source}: attribute {name!r} has "
                f"a value that is not a colour ({e}); set both to 0"
            ) from None
        tables.append(torch.tensor(rgb, dtype=torch.float32) / 127.5 - 1)
    return tables


def learning_rate(t: TrainSection, step: int) -> float:
    """The lr of ``step``: constant, or cosine from ``t.lr`` down to 5% of it at ``t.steps``."""
    if t.lr_schedule == "constant":
        return t.lr
    progress = min(step / max(t.steps, 1), 1.0)
    return t.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def trim_log(path: Path, step: int) -> None:
    """Drop the rows a killed run logged after its last checkpoint, so a resumed run's log has
    every step once and in order (rewritten atomically)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a line cut off by the kill
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))


def train(
    recipe: Recipe, run: str | Path, device: str = "auto", resume: bool = False, progress: bool = True
) -> Autoencoder:
    """Train the recipe's model into ``run``; returns the trained model (in eval mode)."""
    run = Path(run)
    rank, world, dev = init_distributed(resolve_device(device))
    lead = rank == 0  # only rank 0 writes
    dataset = training_split(recipe)
    check_attribute_keys(recipe, dataset)
    schema = dataset.schema.to_dict()
    cfg = model_config(recipe, dataset)
    losses_cfg = loss_config(recipe, dataset)
    t = recipe.train

    checkpoint = latest_checkpoint(run)
    if checkpoint is not None and not resume:
        raise UserError(
            f"run folder {run} already has checkpoints; pass --resume to continue it or pick another --out"
        )
    if lead:
        run.mkdir(parents=True, exist_ok=True)
        for folder in (run, run / "checkpoints", run / "samples"):
            remove_stale(folder)  # what a killed run of this folder left
        atomic_write_text(run / "recipe.yaml", yaml.safe_dump(recipe.to_dict(), sort_keys=False))

    seed = t.seed if t.seed is not None else recipe.seed
    torch.manual_seed(seed)
    model = Autoencoder(cfg).to(dev)
    if dev.type == "cpu":  # channels-last convolutions: a CPU step ~5% faster (docs/experiments/speed.md)
        model = model.to(memory_format=torch.channels_last)
    # fused: one kernel for all parameters (the FC weights dominate the count), ~7% of a CPU step
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, betas=tuple(t.betas), fused=True)
    step = 0
    if checkpoint is not None:
        meta = load_meta(checkpoint)
        check_compatible(meta, cfg, schema, f"checkpoint {checkpoint}")
        restore_weights(model, checkpoint, dev)
        optimizer.load_state_dict(load_optimizer_state(checkpoint))
        step = meta["step"]
        if lead:
            trim_log(run / "metrics.jsonl", step)
    elif t.init_from:
        model_init, meta = load_model(t.init_from)
        check_compatible(meta, cfg, schema, f"warm start {t.init_from}", ignore_variant=True)
        weights = model_init.state_dict()
        if not cfg.head_classes:  # heads are only trained, never used downstream: leave them behind
            weights = {k: v for k, v in weights.items() if not k.startswith("heads.")}
        model.load_state_dict(weights, strict=not cfg.head_classes)  # new heads start fresh

    group_loss = GroupLoss(model, losses_cfg)
    loss_fn: torch.nn.Module = group_loss
    reg_start = t.loss.reg_start if t.loss.reg_start is not None else (0.0 if t.init_from else 0.5)
    reg_from_step = int(reg_start * t.steps)
    warmup_steps = int(t.loss.beta_warmup * t.steps)
    if world > 1:
        loss_fn = DistributedDataParallel(loss_fn, device_ids=[dev.index] if dev.type == "cuda" else None)
    groups = max(1, t.groups_per_step // world)  # the global batch stays groups_per_step
    sampler = GroupSampler(dataset.factors, dataset.schema, groups, t.sampler, seed, step, rank=rank)
    loader = DataLoader(
        dataset, batch_sampler=sampler, num_workers=t.workers, persistent_workers=t.workers > 0
    )
    preview = torch.stack([dataset[int(i)][0] for i in sampler.batch(0)[0]]).to(dev)
    group_size = len(dataset.schema) + 1

    def checkpoint_now() -> None:
        meta = {
            "step": step,
            "model": cfg.to_dict(),
            "schema": schema,
            "recipe": recipe.to_dict(),
            "deae_aug": deae_aug.__version__,
        }
        save_checkpoint(run, model, optimizer, meta)

    if lead:
        (run / "samples").mkdir(exist_ok=True)
    model.train()
    start = time.perf_counter()
    bar = tqdm(
        total=t.steps, initial=step, desc=f"train {cfg.variant}", unit="step", disable=not (progress and lead)
    )
    with open(run / "metrics.jsonl" if lead else os.devnull, "a", encoding="utf-8") as log:
        for images, factors in loader:
            if step >= t.steps:
                break
            x = images.to(dev).view(-1, group_size, *images.shape[1:])  # (G, K+1, 3, H, W)
            generator = torch.Generator().manual_seed(seed * 1_000_003 + step + 7_919_000 * rank)
            step_cfg = (
                losses_cfg if step >= reg_from_step else replace(losses_cfg, reg=0.0, counterfactual=0.0)
            )
            if step < warmup_steps:
                step_cfg = replace(step_cfg, beta=losses_cfg.beta * step / warmup_steps)
            group_loss.cfg = step_cfg
            labels = factors.to(dev).view(-1, group_size, factors.shape[1])  # (G, K+1, K)
            terms = loss_fn(x, generator, labels)
            total = terms["total"]
            finite = torch.tensor([float(math.isfinite(total.item()))], device=dev)
            if world > 1:
                dist.all_reduce(finite, op=dist.ReduceOp.MIN)  # every rank stops together
            if not finite.item():
                bad = {k: round(v.item(), 4) for k, v in terms.items()}
                raise TrainingError(
                    f"loss is not finite at step {step} ({bad}); the last good checkpoint is kept in "
                    f"{run / 'checkpoints'}; lower train.lr and resume with --resume"
                )
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(t, step)
            optimizer.step()
            step += 1
            bar.update()
            if step % t.log_every == 0 or step == t.steps:
                row = {
                    "step": step,
                    **{k: round(v.item(), 6) for k, v in terms.items()},
                    "seconds": round(time.perf_counter() - start, 2),
                }
                log.write(json.dumps(row) + "\n")
                log.flush()
                bar.set_postfix({k: f"{v.item():.4f}" for k, v in terms.items()})
            if not lead:
                continue
            if step % t.sample_every == 0 or step == t.steps:
                save_png(
                    run / "samples" / f"step_{step:07d}.png",
                    sample_grid(model, preview, dataset.schema.names),
                )
            if step % t.checkpoint_every == 0 or step == t.steps:
                checkpoint_now()
    bar.close()
    # back to the layout a loaded checkpoint has: channels-last kernels round differently (1e-4),
    # and a just-trained model must draw the very images a reloaded one draws
    return model.to(memory_format=torch.contiguous_format).eval()


# Train keys that change neither the data nor the optimisation, so a run may differ in them and
# still be reused; train.steps is among them because a shorter run is resumed, a longer reused.
def ensure_trained(
    recipe: Recipe, run: str | Path, device: str = "auto", progress: bool = True
) -> Autoencoder:
    """The recipe's trained model from ``run``: reused when finished, resumed when cut short,
    trained when absent. A run trained on other data or settings (say another train.lr) is
    refused, never overwritten or silently reused."""
    folder = Run(run)
    if folder.trained:
        folder.check(recipe)
        if folder.finished(recipe):
            return folder.load(resolve_device(device))[0]
    return train(recipe, run, device=device, resume=folder.trained, progress=progress)
