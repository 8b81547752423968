"""Where do Table 2's remaining misses fall? Accuracy on D_T by the value of every attribute.

A worst-group goal over (label, bias value) groups fails when misses pile up in one group. This
asks whether they pile up along the bias (a debiasing failure) or along other attributes (glyph
size, font: images that are hard for any classifier, the oracle included). It loads the
classifiers benchmarks/table2_debias.py saved for one setting (ERM, oracle and both rebalance
ResNet-18 rows; trained here if missing), refits the counterfactual latent debiaser from the
saved DEAE (as gradcam.py does; same seed, same fit) and scores `debias.mode: both` as their
average. Nothing is chosen on D_T: it only describes the misses of fixed classifiers.

Usage: python -m benchmarks.diagnostics.table2_misses [--recipe recipes/fonts_bias_wide.yaml]
    [--runs runs/benchmarks/table2_wide600] [--setting 0pct] [--seeds 3] [--steps N]
    [--name table2_misses_wide_600]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.common import environment, summary, write_results
from benchmarks.table2_debias import trained_resnet
from deae_aug.data.build import build_splits
from deae_aug.data.dataset import AttributeDataset, load_images
from deae_aug.debias.latent import Debiaser
from deae_aug.evaluate.classifier import enlarge, predict_proba
from deae_aug.evaluate.fairness import accuracy_by_value
from deae_aug.recipes import load_recipe
from deae_aug.training.run import load_model

RESNETS = {
    "erm": "ERM",
    "oracle": "Oracle (D_UB)",
    "rebalance": "DEAE rebalance",
    "rebalance_residual": "DEAE rebalance, residual",
}
LATENT, BOTH = "DEAE latent + counterfactuals", "DEAE both (latent + counterfactuals and rebalance, averaged)"


def seed_probabilities(args: argparse.Namespace, seed: int) -> tuple[dict[str, np.ndarray], AttributeDataset]:
    """Each row's class probabilities on D_T for one seed, and D_T itself."""
    fraction = float(args.setting.removesuffix("pct")) / 100
    recipe = load_recipe(args.recipe, [f"seed={seed}", f"split.debias.conflict_fraction={fraction}"])
    folder = args.runs / args.setting / f"seed{seed}"
    splits = build_splits(recipe)
    biased, test = splits["biased"], splits["test"]
    label, bias = recipe.split.label, recipe.split.debias.bias
    images = load_images(test)
    enlarged = enlarge(images, args.scale)  # what the ResNet-18 rows see
    proba = {}
    for name, row in RESNETS.items():
        model = trained_resnet(name, recipe, splits, folder, args.steps, seed, args.scale)[0]
        proba[row] = predict_proba(model, enlarged).numpy()
    deae = load_model(folder / "deae")[0].eval()
    debiaser = Debiaser(deae, test.schema.names, label, [bias], recipe.debias.classifier, seed,
                        recipe.debias.counterfactuals)  # fmt: skip
    debiaser.fit(load_images(biased), biased.factors[:, biased.schema.position(label)])
    proba[LATENT] = debiaser.predict_proba(images)  # every label is in D_B: columns = classes
    proba[BOTH] = (proba[LATENT] + proba[RESNETS["rebalance"]]) / 2
    return proba, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/fonts_bias_wide.yaml")
    parser.add_argument("--runs", type=Path, default=Path("runs/benchmarks/table2_wide600"))
    parser.add_argument("--setting", default="0pct", help="folder under --runs: 0pct, 1pct or 5pct")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, help="ResNet-18 steps (default: debias.classifier_steps)")
    parser.add_argument("--scale", type=int, default=2, help="classifiers see the images enlarged this much")
    parser.add_argument("--name", default="table2_misses_wide_600", help="results file name")
    args = parser.parse_args()
    base = load_recipe(args.recipe)  # the recipe before per-seed overrides
    args.steps = args.steps or base.debias.classifier_steps
    start = time.perf_counter()
    by_value: dict[str, dict[str, dict[str, list[float]]]] = {}
    overall: dict[str, list[float]] = {}
    label = base.split.label
    for seed in range(args.seeds):
        proba, test = seed_probabilities(args, seed)
        schema, factors = test.schema, test.factors
        names = [n for n in schema.names if n != label]
        labels = factors[:, schema.position(label)]
        for row, p in proba.items():
            hit = p.argmax(1) == labels
            overall.setdefault(row, []).append(float(hit.mean()))
            for name, values in accuracy_by_value(hit, factors, schema, names).items():
                for value, acc in values.items():
                    by_value.setdefault(row, {}).setdefault(name, {}).setdefault(value, []).append(acc)
            print(f"seed {seed} {row}: {hit.mean():.4f}", flush=True)
    payload = {
        "benchmark": "table2_misses",
        "recipe": args.recipe,
        "setting": args.setting,
        "seeds": list(range(args.seeds)),
        "resnet_steps": args.steps,
        "resnet_scale": args.scale,
        "unbiased": {row: summary(v) for row, v in overall.items()},
        "accuracy_by_value": {
            row: {name: {value: summary(v) for value, v in values.items()} for name, values in attrs.items()}
            for row, attrs in by_value.items()
        },
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    write_results(args.name, payload, markdown(payload))


def markdown(payload: dict, lowest: int = 3) -> str:
    rows = payload["accuracy_by_value"]
    first = next(iter(rows.values()))
    lines = [
        f"# Where Table 2's misses fall ({Path(payload['recipe']).stem}, setting {payload['setting']}, "
        f"{len(payload['seeds'])} seeds)",
        "",
        "D_T accuracy in %, mean ± std over seeds, by the value of one attribute (all other attributes "
        "mixed). If the bias were the problem, the bias attribute's values would differ most.",
        "",
    ]
    for name, values in first.items():
        lines += [f"| {name} | " + " | ".join(values) + " |", "|---" * (len(values) + 1) + "|"]
        for row, attrs in rows.items():
            cells = (f"{s['mean'] * 100:.1f} ± {s['std'] * 100:.1f}" for s in attrs[name].values())
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"Lowest {lowest} values of any attribute per row:", ""]
    for row, attrs in rows.items():
        ranked = sorted(
            (s["mean"], f"{name}={value}") for name, vals in attrs.items() for value, s in vals.items()
        )
        overall = payload["unbiased"][row]["mean"] * 100
        lines.append(
            f"- {row} ({overall:.1f} overall): " + ", ".join(f"{v} {m * 100:.1f}" for m, v in ranked[:lowest])
        )
    lines += ["", f"Wall time: {payload['wall_seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
