"""Why training on the CPU uses channels-last convolutions: seconds per step of a recipe's model.

Times full optimizer steps (forward, backward, fused Adam) of the recipe's model and losses on
real groups of its training split, in PyTorch's default (NCHW) and channels-last layouts, in
both phases of a run (GSL-AE first, then with L_reg), after warm-up steps.

Usage: python -m benchmarks.diagnostics.memory_format [--recipe R] [--steps 60] [--seeds 3]
Writes benchmarks/results/memory_format.{json,md}.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from benchmarks.common import environment, summary, write_results
from deae_aug.data.sampler import GroupSampler
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.recipes import load_recipe
from deae_aug.training.losses import GroupLoss
from deae_aug.training.run import model_config, training_split
from deae_aug.training.trainer import loss_config

LAYOUTS = {"NCHW (default)": torch.contiguous_format, "channels-last": torch.channels_last}


def seconds_per_step(recipe, layout: torch.memory_format, reg: bool, steps: int, seed: int) -> float:
    dataset = training_split(recipe)
    losses = loss_config(recipe, dataset)
    losses = losses if reg else replace(losses, reg=0.0, counterfactual=0.0)
    torch.manual_seed(seed)
    model = Autoencoder(model_config(recipe, dataset)).to(memory_format=layout)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    loss = GroupLoss(model, losses)
    t = recipe.train
    sampler = GroupSampler(dataset.factors, dataset.schema, t.groups_per_step, t.sampler, seed)
    group = len(dataset.schema) + 1
    batches = []
    for b in range(8):
        items = [dataset[int(i)] for i in sampler.batch(b).reshape(-1)]
        x = torch.stack([image for image, _ in items])
        y = torch.stack([torch.as_tensor(f) for _, f in items])
        batches.append((x.view(-1, group, *x.shape[1:]), y.view(-1, group, y.shape[1])))

    def step(s: int) -> None:
        x, y = batches[s % len(batches)]
        terms = loss(x, torch.Generator().manual_seed(s), y)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()

    for s in range(5):  # warm-up
        step(s)
    start = time.perf_counter()
    for s in range(steps):
        step(s)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/fonts_small.yaml")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    start = time.perf_counter()
    recipe = load_recipe(args.recipe)
    rows = {}
    for phase, reg in (("GSL-AE phase", False), ("L_reg phase", True)):
        for name, layout in LAYOUTS.items():
            values = [seconds_per_step(recipe, layout, reg, args.steps, s) for s in range(args.seeds)]
            rows[f"{phase}, {name}"] = summary(values)
            print(f"{phase}, {name}: {rows[f'{phase}, {name}']['mean']:.4f} s/step", flush=True)
    payload = {
        "benchmark": "memory_format",
        "recipe": args.recipe,
        "steps": args.steps,
        "seeds": list(range(args.seeds)),
        "seconds_per_step": rows,
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    lines = [
        f"# Seconds per training step of {args.recipe}'s model ({args.steps} steps after 5 warm-up, "
        f"{args.seeds} seeds, {torch.get_num_threads()} threads)\n",
        "| phase, layout | s/step (mean ± std) |",
        "|---|---|",
        *(f"| {row} | {r['mean']:.4f} ± {r['std']:.4f} |" for row, r in rows.items()),
        "",
        f"Wall time {payload['wall_seconds'] / 60:.1f} min; torch {torch.__version__}.",
    ]
    write_results("memory_format", payload, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
