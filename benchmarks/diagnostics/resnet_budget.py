"""Is Table 2's ResNet-18 undertrained? The oracle's accuracy against its step budget, on held-out D_UB.

Table 2 trains every ResNet-18 row for 150 steps of 64 images (about 5 epochs of D_B) so that
three seeds fit in an hour here. This trains the oracle's recipe (`train_classifier`) on 80% of
the unbiased D_UB for each step count and input scale (32-px images enlarged 1x, 2x: the
standard stem shrinks 32 px to an 8x8 map before the first block) and scores it on the other
20%: what the budget and the input size cost, measured without D_T.

Usage: python -m benchmarks.diagnostics.resnet_budget [--seeds 1] [--runs 1x150 1x600 2x150]
       [--name resnet_budget]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from benchmarks.common import environment, summary, write_results
from deae_aug.data.build import build_splits
from deae_aug.data.dataset import load_images
from deae_aug.evaluate.classifier import accuracy, enlarge, train_classifier
from deae_aug.recipes import load_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/fonts_bias.yaml")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--runs", nargs="+", default=["1x150", "1x600", "2x150"],
                        help="SCALExSTEPS: input enlargement and ResNet-18 steps")  # fmt: skip
    parser.add_argument("--name", default="resnet_budget", help="results file name")
    args = parser.parse_args()
    start = time.perf_counter()
    runs = [tuple(int(v) for v in run.split("x")) for run in args.runs]
    scores: dict[tuple, list[float]] = {run: [] for run in runs}
    seconds: dict[tuple, list[float]] = {run: [] for run in runs}
    for seed in range(args.seeds):
        recipe = load_recipe(args.recipe, [f"seed={seed}"])
        unbiased = build_splits(recipe)["unbiased"]
        labels = unbiased.factors[:, unbiased.schema.position(recipe.split.label)]
        n_classes = len(unbiased.schema[recipe.split.label].values)
        fit, held = train_test_split(
            np.arange(len(unbiased)), test_size=0.2, stratify=labels, random_state=seed
        )
        images, y = load_images(unbiased), torch.from_numpy(labels.copy())
        for scale, steps in runs:
            tick = time.perf_counter()
            x = enlarge(images, scale)
            model = train_classifier(x[fit], y[fit], n_classes, steps, seed=seed, progress=True)
            seconds[scale, steps].append(time.perf_counter() - tick)
            scores[scale, steps].append(accuracy(model, x[held], y[held]))
            score = scores[scale, steps][-1]
            print(f"seed {seed}, {scale}x, {steps} steps: held-out D_UB accuracy {score:.3f}", flush=True)
    payload = {
        "benchmark": "resnet_budget",
        "recipe": args.recipe,
        "seeds": list(range(args.seeds)),
        "what": "ResNet-18 (train_classifier, batch 64) fitted on 80% of D_UB, scored on the other 20%",
        "accuracy": {f"{scale}x{steps}": summary(v) for (scale, steps), v in scores.items()},
        "train_seconds": {f"{scale}x{steps}": summary(v) for (scale, steps), v in seconds.items()},
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    lines = [
        f"# ResNet-18 budget: oracle accuracy on held-out D_UB ({Path(args.recipe).stem}, "
        f"{args.seeds} seeds, batch 64)",
        "",
        "Fitted on 80% of D_UB, scored on the other 20% (never D_T); input: the 32-px images enlarged "
        "bilinearly.",
        "",
        "| input | steps | held-out accuracy | training min |",
        "|---|---|---|---|",
    ]
    for scale, steps in runs:
        acc, sec = payload["accuracy"][f"{scale}x{steps}"], payload["train_seconds"][f"{scale}x{steps}"]
        cells = f"{acc['mean'] * 100:.1f} ± {acc['std'] * 100:.1f} | {sec['mean'] / 60:.1f}"
        lines.append(f"| {32 * scale} px ({scale}x) | {steps} | {cells} |")
    lines += ["", f"Wall time: {payload['wall_seconds'] / 60:.1f} min."]
    write_results(args.name, payload, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
