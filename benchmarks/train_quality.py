"""Reconstruction and swap quality of GSL-AE and DEAE on fonts_small (32 px), read by the oracle.

``--split large`` (default): per seed, GSL-AE trains on D_L; DEAE fine-tunes that GSL-AE
checkpoint (the reference's warm start), so DEAE's CPU time is GSL's plus its own. Evaluated on
*held-out combinations*: images of D_L's attribute values that the sampled D_L does not contain.

``--split small``: the recipe exactly as ``deae-aug augment`` trains it (D_S; DEAE from scratch
with its GSL-AE phase), GSL-AE with the same schedule; swaps are evaluated on D_S, which holds
every combination of its values, so there is nothing held out to swap into.

Both report D_test (unseen backgrounds) reconstruction and how often the oracle reads each
attribute from a plain reconstruction (the ceiling for its swap).

Usage: python -m benchmarks.train_quality [--split large|small] [--seeds 3] [--gsl-steps 3000]
       [--deae-steps 1200] [--set key=value] [--variants gsl deae] [--name train_quality_x]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, environment, summary, train_on_large, train_on_small, write_results
from deae_aug.data.build import build_dataset, build_splits
from deae_aug.data.dataset import load_images
from deae_aug.evaluate.oracle import oracle_for
from deae_aug.evaluate.quality import reconstruction_accuracy, reconstruction_l1, swap_accuracy, swap_pairs
from deae_aug.explore.figures import explore
from deae_aug.io import save_png
from deae_aug.recipes import load_recipe

COLOUR_GOAL = ("letter", "size", "font_color", "bg_color")


def held_out_combinations(recipe) -> tuple:
    """(full dataset, its rows with D_L's values but not in the sampled D_L, the recipe's splits)."""
    splits = build_splits(recipe)
    full = build_dataset(recipe.data, recipe.source)
    large = splits["large"]
    seen = {tuple(r) for r in large.factors}
    values = {a: set(large.factors[:, i]) for i, a in enumerate(full.schema.names)}
    keep = [
        i
        for i, r in enumerate(full.factors)
        if tuple(r) not in seen and all(r[j] in values[a] for j, a in enumerate(full.schema.names))
    ]
    return full, full.select(np.array(keep)), splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/fonts_small.yaml")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--gsl-steps", type=int, default=3000)
    parser.add_argument("--deae-steps", type=int, default=1200)
    parser.add_argument("--set", action="append", default=[], help="recipe override, e.g. train.lr=1e-3")
    parser.add_argument("--split", choices=("large", "small"), default="large")
    parser.add_argument("--runs", help="default: runs/benchmarks/train_quality[_small]")
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--variants", nargs="+", choices=("gsl", "deae"), default=["gsl", "deae"])
    parser.add_argument("--name", help="results file name [train_quality_large or train_quality_small]")
    args = parser.parse_args()
    start = time.perf_counter()
    name = args.name or "train_quality_" + args.split
    seeds = list(range(args.seeds))
    base = load_recipe(args.recipe)
    full, held_out, splits = held_out_combinations(base)
    large, test = splits["large"], splits["test"]
    if args.split == "small":
        large = held_out = splits["small"]
    runs = Path(args.runs or f"runs/benchmarks/train_quality{'_small' if args.split == 'small' else ''}")
    oracle, oracle_accuracy = oracle_for(full)
    results: dict[str, list] = {variant: [] for variant in args.variants}
    for seed in seeds:
        if args.split == "large":  # DEAE warm-starts from the same seed's GSL-AE: train it once
            gsl, gsl_seconds = train_on_large(args.recipe, runs, "gsl", seed, args.gsl_steps, args.set)
        for variant in args.variants:
            if args.split == "large":
                model, seconds = (
                    (gsl, gsl_seconds)
                    if variant == "gsl"
                    else train_on_large(args.recipe, runs, "deae", seed, args.deae_steps, args.set)
                )
                cpu = seconds + (gsl_seconds if variant == "deae" else 0.0)
                steps = args.gsl_steps if variant == "gsl" else args.deae_steps
            else:  # the recipe's own schedule (train.steps); DEAE includes its GSL-AE phase
                model, seconds = train_on_small(args.recipe, runs, variant, seed, args.set)
                cpu, steps = seconds, load_recipe(args.recipe, args.set).train.steps
            row = {
                "seed": seed,
                "steps": steps,
                "train_seconds": seconds,
                "cpu_seconds_including_warm_start": cpu,
                "recon_l1_train": reconstruction_l1(model, large, seed=seed),
                "recon_l1_held_out": reconstruction_l1(model, held_out, seed=seed),
                "recon_l1_test_unseen_bg": reconstruction_l1(model, test, seed=seed),
                "recon_read": reconstruction_accuracy(model, oracle, held_out, seed=seed),
                "swap": swap_accuracy(model, oracle, held_out, args.pairs, seed=seed),
            }
            results[variant].append(row)
            print(variant, seed, {k: v for k, v in row.items() if k != "swap"}, flush=True)
            if seed == 0:
                rng = np.random.default_rng(0)
                pairs = swap_pairs(held_out.factors, 0, 3, rng)
                sub = held_out.select(pairs.reshape(-1))
                grid, _ = explore(
                    "interpolate", model, sub.schema, load_images(sub), sub.factors, n=3, steps=6
                )
                save_png(RESULTS / f"{name}_{variant}.png", grid)

    names = full.schema.names
    summaries = {}
    for variant, rows in results.items():
        summaries[variant] = {
            "recon_l1_held_out": summary([r["recon_l1_held_out"] for r in rows]),
            "recon_l1_test_unseen_bg": summary([r["recon_l1_test_unseen_bg"] for r in rows]),
            "cpu_seconds": summary([r["cpu_seconds_including_warm_start"] for r in rows]),
            "swap_accuracy": {n: summary([r["swap"][n]["swapped"] for r in rows]) for n in names},
            "swap_preserved": {n: summary([r["swap"][n]["preserved"] for r in rows]) for n in names},
            "recon_read": {n: summary([r["recon_read"][n] for r in rows]) for n in names},
        }
    large_split = args.split == "large"
    payload = {
        "benchmark": name,
        "split": args.split,
        "recipe": args.recipe,
        "overrides": args.set,
        "seeds": seeds,
        "steps": {v: rows[0]["steps"] for v, rows in results.items()},
        "deae_warm_start": "from the same seed's GSL-AE" if large_split else "none (recipe schedule)",
        "evaluated_on": "held-out combinations of D_L" if large_split else "D_S (the training split)",
        "evaluated_images": len(held_out),
        "oracle_held_out_accuracy": oracle_accuracy,
        "goal": "swap accuracy >= 0.90 for " + ", ".join(COLOUR_GOAL),
        "summary": summaries,
        "runs": results,
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    lines = [
        f"# Swap quality on {base.name} (32 px, {len(seeds)} seeds, {payload['evaluated_on']})\n",
        "Swap accuracy: the oracle reads the donor's value of the swapped attribute from the decoded "
        "image. Preserved: it reads the base's value for every other attribute.\n",
        "| model | CPU min | recon L1 evaluated | recon L1 unseen bg | " + " | ".join(names) + " |",
        "|---|---|---|---|---|" + "---|" * (len(names) - 1),
    ]
    for variant, s in summaries.items():
        accs = " | ".join(
            f"{s['swap_accuracy'][n]['mean']:.3f} ± {s['swap_accuracy'][n]['std']:.3f} "
            f"(kept {s['swap_preserved'][n]['mean']:.2f})"
            for n in names
        )
        lines.append(
            f"| {variant} | {s['cpu_seconds']['mean'] / 60:.1f} | {s['recon_l1_held_out']['mean']:.4f} ± "
            f"{s['recon_l1_held_out']['std']:.4f} | {s['recon_l1_test_unseen_bg']['mean']:.4f} | {accs} |"
        )
    lines += ["\nRead from a plain reconstruction (the ceiling for each swap):\n",
              "| model | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]  # fmt: skip
    for variant, s in summaries.items():
        lines.append(
            f"| {variant} | " + " | ".join(f"{s['recon_read'][n]['mean']:.3f}" for n in names) + " |"
        )
    lines.append(
        f"\nOracle held-out accuracy: {oracle_accuracy}. Wall time {payload['wall_seconds'] / 60:.1f} min.\n"
    )
    write_results(name, payload, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
