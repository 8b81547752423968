"""Is Table 2's ResNet-18 undertrained? The oracle's accuracy against its step budget, on held-out D_UB.

Table 2 trains every ResNet-18 row for 150 steps of 64 images (about 5 epochs of D_B) so that
three seeds fit in an hour here. This trains the oracle's recipe (`train_resnet18`) on 80% of
the unbiased D_UB for each step count and scores it on the other 20%: how much accuracy the
budget costs, measured without D_T.

Usage: python -m benchmarks.resnet_budget [--seeds 1] [--steps 150 300 600]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from benchmarks.common import environment, summary, write_results
from deae_aug.data.build import build_splits
from deae_aug.data.dataset import load_images
from deae_aug.evaluate.classifier import accuracy, train_resnet18
from deae_aug.recipes import load_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/fonts_bias.yaml")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--steps", type=int, nargs="+", default=[150, 300, 600])
    args = parser.parse_args()
    start = time.perf_counter()
    scores: dict[int, list[float]] = {steps: [] for steps in args.steps}
    seconds: dict[int, list[float]] = {steps: [] for steps in args.steps}
    for seed in range(args.seeds):
        recipe = load_recipe(args.recipe, [f"seed={seed}"])
        unbiased = build_splits(recipe)["unbiased"]
        labels = unbiased.factors[:, unbiased.schema.position(recipe.split.label)]
        n_classes = len(unbiased.schema[recipe.split.label].values)
        fit, held = train_test_split(
            np.arange(len(unbiased)), test_size=0.2, stratify=labels, random_state=seed
        )
        images, y = load_images(unbiased), torch.from_numpy(labels.copy())
        for steps in args.steps:
            tick = time.perf_counter()
            model = train_resnet18(images[fit], y[fit], n_classes, steps, seed=seed, progress=True)
            seconds[steps].append(time.perf_counter() - tick)
            scores[steps].append(accuracy(model, images[held], y[held]))
            print(f"seed {seed}, {steps} steps: held-out D_UB accuracy {scores[steps][-1]:.3f}", flush=True)
    payload = {
        "benchmark": "resnet_budget",
        "recipe": args.recipe,
        "seeds": list(range(args.seeds)),
        "what": "ResNet-18 (train_resnet18, batch 64) fitted on 80% of D_UB, scored on the other 20%",
        "accuracy": {str(s): summary(v) for s, v in scores.items()},
        "train_seconds": {str(s): summary(v) for s, v in seconds.items()},
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    lines = [
        f"# ResNet-18 budget: oracle accuracy on held-out D_UB ({args.seeds} seeds, 32 px, batch 64)",
        "",
        "Fitted on 80% of D_UB, scored on the other 20% (never D_T). Table 2 uses 150 steps.",
        "",
        "| steps | held-out accuracy | training min |",
        "|---|---|---|",
    ]
    for steps in args.steps:
        acc, sec = payload["accuracy"][str(steps)], payload["train_seconds"][str(steps)]
        cells = f"{acc['mean'] * 100:.1f} ± {acc['std'] * 100:.1f} | {sec['mean'] / 60:.1f}"
        lines.append(f"| {steps} | {cells} |")
    lines += ["", f"Wall time: {payload['wall_seconds'] / 60:.1f} min."]
    write_results("resnet_budget", payload, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
