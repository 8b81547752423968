"""What limits Table 2's worst group: the 32-px render or the classifier's budget? Asked of the oracle.

table2_misses.py finds the misses of every row, the oracle's included, on small glyphs and thin
fonts, not on any background. This trains the oracle (ResNet-18 on D_UB, table2_debias's recipe)
per seed on the same labels and splits three ways: as Table 2's rows (rendered at 32 px, enlarged
2x, --steps), rendered at 64 px (same input size and steps: only the render's detail differs),
and at 32 px with 4 times the steps. No DEAE is trained (at 64 px it costs about 4 times as much),
so this bounds what each lever could give a classifier; it does not measure a debiaser.

Usage: python -m benchmarks.diagnostics.oracle_budget [--recipe recipes/fonts_bias_wide.yaml] [--seeds 3]
Writes benchmarks/results/oracle_budget.{json,md}.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import environment, percent, summary, write_results
from benchmarks.table2_debias import trained_resnet
from deae_aug.data.build import build_splits
from deae_aug.data.dataset import load_images
from deae_aug.debias.report import conflicting_mask
from deae_aug.evaluate.classifier import enlarge, predict_proba
from deae_aug.evaluate.fairness import accuracy_by_value, group_report
from deae_aug.recipes import load_recipe

# name: (data.resolution, enlargement, multiple of --steps); every input is 64 px
CONFIGS = {"32 px, enlarged 2x": (32, 2, 1), "64 px": (64, 1, 1), "32 px, enlarged 2x, 4x steps": (32, 2, 4)}
METRICS = ("unbiased", "worst_group", "bias_conflicting")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/fonts_bias_wide.yaml")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150, help="ResNet-18 steps, as in table2_debias")
    parser.add_argument("--runs", type=Path, default=Path("runs/benchmarks/oracle_budget"))
    args = parser.parse_args()
    start = time.perf_counter()
    results: dict[str, dict[str, list]] = {name: {} for name in CONFIGS}
    for seed in range(args.seeds):
        for name, (resolution, scale, more) in CONFIGS.items():
            recipe = load_recipe(args.recipe, [f"seed={seed}", f"data.resolution={resolution}"])
            splits = build_splits(recipe)
            test = splits["test"]
            label, bias = recipe.split.label, recipe.split.debias.bias
            folder = args.runs / f"{resolution}px_steps{args.steps * more}" / f"seed{seed}"
            model, seconds = trained_resnet("oracle", recipe, splits, folder, args.steps * more, seed, scale)
            predicted = predict_proba(model, enlarge(load_images(test), scale)).numpy().argmax(1)
            f, schema = test.factors, test.schema
            labels = f[:, schema.position(label)]
            report = group_report(
                predicted, labels, f[:, schema.position(bias)], conflicting_mask(recipe, f, schema)
            )
            by_value = accuracy_by_value(predicted == labels, f, schema, ["size", "font"])
            row = results[name]
            for m in METRICS:
                row.setdefault(m, []).append(report[m])
            row.setdefault("small glyphs", []).append(by_value["size"]["small"])
            row.setdefault("lowest font", []).append(min(by_value["font"].values()))
            row.setdefault("seconds", []).append(seconds)
            print(f"seed {seed} {name}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in row.items()), flush=True)
    payload = {
        "benchmark": "oracle_budget",
        "recipe": args.recipe,
        "seeds": list(range(args.seeds)),
        "resnet_steps": args.steps,
        "resnet_input_px": 64,
        "results": {name: {k: summary(v) for k, v in row.items()} for name, row in results.items()},
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    write_results("oracle_budget", payload, markdown(payload))


def markdown(payload: dict) -> str:
    columns = ("unbiased", "worst_group", "bias_conflicting", "small glyphs", "lowest font")
    lines = [
        f"# The oracle's worst group: render or budget? ({Path(payload['recipe']).stem}, "
        f"{len(payload['seeds'])} seeds)",
        "",
        f"ResNet-18 on D_UB, {payload['resnet_steps']} steps (unless 4x) on 64-px input, scored on D_T; "
        "accuracy in %, mean ± std over seeds. Lowest font: the font of lowest accuracy, per seed.",
        "",
        "| oracle | " + " | ".join(c.replace("_", " ") for c in columns) + " | training s |",
        "|---|" + "---|" * (len(columns) + 1),
    ]
    for name, row in payload["results"].items():
        cells = " | ".join(percent(row[c]) for c in columns)
        lines.append(f"| {name} | {cells} | {row['seconds']['mean']:.0f} |")
    lines += ["", f"Wall time: {payload['wall_seconds'] / 60:.1f} min."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
