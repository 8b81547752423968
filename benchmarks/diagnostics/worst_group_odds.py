"""What a 95% worst-group goal asks of Table 2's test set D_T: the odds of meeting it by accuracy.

In fonts_bias.yaml, D_T draws 100 images per letter at random from what D_B and D_UB leave, so
its (letter, background) groups hold 1 to about 30 images, most under 20, and at 95% a group of under 20
allows no miss at all. For each seed's actual D_T group sizes this computes the chance that
every group reaches the threshold when a classifier of a given per-image accuracy errs
independently at random (`worst_group_odds`), for a grid of accuracies and for each Table 2 row's
measured accuracy on that seed (read from --tables, by default benchmarks/results/table2_debias.json
and table2_sweep.json), and the accuracy at which the odds reach one half. It trains nothing: it
asks what the goal means on this test set. Real errors cluster in hard groups (low-contrast
pairs), which makes the goal harder than these odds for those groups and easier for the rest.

Usage: python -m benchmarks.diagnostics.worst_group_odds [--seeds 3] [--threshold 0.95]
Writes benchmarks/results/worst_group_odds.{json,md}. The group-balanced test set of
recipes/fonts_bias_wide.yaml: --recipe recipes/fonts_bias_wide.yaml --settings 0 --tables table2_wide
--name worst_group_odds_wide.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks.common import RESULTS, environment, summary, write_results
from benchmarks.table2_debias import setting_name
from deae_aug.data.build import build_splits
from deae_aug.evaluate.fairness import worst_group_odds
from deae_aug.recipes import load_recipe

GRID = (0.98, 0.99, 0.995, 0.998, 0.999)
ROWS = (
    "Oracle (D_UB)",
    "DEAE latent + counterfactuals",
    "DEAE latent + counterfactuals and rebalance, averaged",
)


def group_sizes(recipe_path: str, seed: int, fraction: float) -> np.ndarray:
    """Sizes of the (label, bias value) groups present in D_T."""
    recipe = load_recipe(recipe_path, [f"seed={seed}", f"split.debias.conflict_fraction={fraction}"])
    test = build_splits(recipe)["test"]
    schema, label, bias = test.schema, recipe.split.label, recipe.split.debias.bias
    groups = (
        test.factors[:, schema.position(label)] * len(schema[bias].values)
        + test.factors[:, schema.position(bias)]
    )
    sizes = np.bincount(groups)
    return sizes[sizes > 0]


def even_odds_accuracy(sizes: np.ndarray, threshold: float) -> float:
    """Per-image accuracy at which every group reaches ``threshold`` with probability one half."""
    low, high = 0.9, 1.0
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if worst_group_odds(sizes, mid, threshold) < 0.5 else (low, mid)
    return high


def seed_odds(sizes: list[np.ndarray], accuracies: list[float], threshold: float) -> dict:
    """`summary` of each seed's odds: that seed's D_T group sizes at that seed's accuracy."""
    return summary([worst_group_odds(s, a, threshold) for s, a in zip(sizes, accuracies, strict=True)])


def measured_rows(tables: list[str]) -> dict[str, dict[str, list[float]]]:
    """{setting: {row: per-seed unbiased accuracy}} from the Table 2 results on disk."""
    rows: dict[str, dict[str, list[float]]] = {}
    for name in tables:
        path = RESULTS / f"{name}.json"
        if path.exists():
            for setting, table in json.loads(path.read_text())["results"].items():
                rows.setdefault(setting, {}).update(
                    {r: table[r]["unbiased"]["values"] for r in ROWS if r in table}
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/fonts_bias.yaml")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--settings", type=float, nargs="+", default=[0.0, 0.01, 0.05])
    parser.add_argument("--threshold", type=float, default=0.95)
    tables = ["table2_debias", "table2_sweep"]
    parser.add_argument("--tables", nargs="+", default=tables, help="results read for measured rows")
    parser.add_argument("--name", default="worst_group_odds", help="results file name")
    args = parser.parse_args()
    start = time.perf_counter()
    measured = measured_rows(args.tables)
    results = {}
    no_miss = 1 / (1 - args.threshold)  # groups smaller than this must be all right
    for fraction in args.settings:
        sizes = [group_sizes(args.recipe, seed, fraction) for seed in range(args.seeds)]
        rows = measured.get(setting_name(fraction), {})
        results[setting_name(fraction)] = {
            "groups": summary([len(s) for s in sizes]),
            "smallest_group": summary([int(s.min()) for s in sizes]),
            "share_of_images_in_groups_allowing_no_miss": summary(
                [float(s[s < no_miss].sum() / s.sum()) for s in sizes]
            ),
            "odds_at_accuracy": {str(p): seed_odds(sizes, [p] * len(sizes), args.threshold) for p in GRID},
            "accuracy_for_even_odds": summary([even_odds_accuracy(s, args.threshold) for s in sizes]),
            "odds_of_measured_rows": {
                row: {"accuracy": summary(a), "odds": seed_odds(sizes, a, args.threshold)}
                for row, a in rows.items()
            },
        }
    payload = {
        "benchmark": "worst_group_odds",
        "recipe": args.recipe,
        "tables": args.tables,
        "seeds": list(range(args.seeds)),
        "threshold": args.threshold,
        "assumption": "errors independent and spread evenly over D_T at the given per-image accuracy",
        "results": results,
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    write_results(args.name, payload, markdown(payload))


def markdown(payload: dict) -> str:
    threshold = payload["threshold"]
    lines = [
        f"# What a {threshold:.0%} worst-group goal asks of D_T ({len(payload['seeds'])} seeds)",
        "",
        f"Chance that every (letter, background) group of D_T reaches {threshold:.0%}, for a classifier "
        "whose errors fall independently at random at the given per-image accuracy; mean over the "
        "seeds' D_T group sizes. Measured rows: their per-seed unbiased accuracy from Table 2.",
        "",
        "| setting | groups | smallest | images in groups that allow no miss | "
        + " | ".join(f"odds at {p:.1%}" for p in GRID)
        + " | accuracy for even odds |",
        "|---|---|---|---|" + "---|" * len(GRID) + "---|",
    ]
    for setting, r in payload["results"].items():
        odds = " | ".join(f"{r['odds_at_accuracy'][str(p)]['mean']:.3f}" for p in GRID)
        lines.append(
            f"| {setting} | {r['groups']['mean']:.0f} | {r['smallest_group']['mean']:.1f} | "
            f"{r['share_of_images_in_groups_allowing_no_miss']['mean']:.0%} | {odds} | "
            f"{r['accuracy_for_even_odds']['mean']:.2%} |"
        )
    lines += [
        "",
        "| setting | row | accuracy | odds of meeting the goal by chance alone |",
        "|---|---|---|---|",
    ]
    for setting, r in payload["results"].items():
        for row, m in r["odds_of_measured_rows"].items():
            lines.append(f"| {setting} | {row} | {m['accuracy']['mean']:.1%} | {m['odds']['mean']:.3f} |")
    lines += ["", f"Wall time: {payload['wall_seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
