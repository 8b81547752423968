"""Choose the latent debiaser's settings on the validation split D_UB, never on the test split D_T.

For each seed, the DEAE of recipes/fonts_bias.yaml is trained on D_B (or reused from the folder
table2_debias.py uses), then `Debiaser` is fitted on D_B with every combination of classifier
and number of counterfactual training copies, and scored on D_UB with every number of test-time
copies: unbiased accuracy, worst group and bias-conflicting images. D_UB is disjoint from D_B
and D_T and has every letter on every background, so it answers "which setting generalises off
the bias" without looking at D_T.

Usage: python -m benchmarks.diagnostics.debias_validation [--seeds 1] [--counterfactuals 0 5 10 20]
       [--test-counterfactuals 0 6]
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from benchmarks.common import environment, metric_table, percent, summary, write_results
from benchmarks.table2_debias import CEILING, METRICS, encoder_ceiling, seed_setting, setting_name
from deae_aug.data.build import build_splits
from deae_aug.data.dataset import load_images
from deae_aug.debias.latent import CLASSIFIERS, Debiaser
from deae_aug.debias.report import conflicting_mask
from deae_aug.evaluate.fairness import group_report
from deae_aug.training.trainer import ensure_trained


def one_seed(args: argparse.Namespace, seed: int) -> dict[tuple[str, int, int], tuple[dict, float]]:
    """{(classifier, counterfactuals, test counterfactuals): (D_UB report, seconds)} for one seed."""
    recipe, folder = seed_setting(args, seed, args.setting)
    label, bias = recipe.split.label, recipe.split.debias.bias
    splits = build_splits(recipe)
    biased, unbiased = splits["biased"], splits["unbiased"]
    schema = biased.schema
    deae = ensure_trained(recipe, folder / "deae", device="cpu", progress=True)
    x_b, y_b = load_images(biased), biased.factors[:, schema.position(label)]
    x_ub, f_ub = load_images(unbiased), unbiased.factors
    y_ub, b_ub = f_ub[:, schema.position(label)], f_ub[:, schema.position(bias)]
    conflicting = conflicting_mask(recipe, f_ub, schema)
    out = {}
    for classifier, copies in itertools.product(args.classifiers, args.counterfactuals):
        tick = time.perf_counter()
        debiaser = Debiaser(deae, schema.names, label, [bias], classifier, seed, copies).fit(x_b, y_b)
        fitted = time.perf_counter() - tick
        for test_copies in args.test_counterfactuals:
            tick = time.perf_counter()
            debiaser.test_counterfactuals = test_copies
            report = group_report(debiaser.predict(x_ub), y_ub, b_ub, conflicting)
            out[classifier, copies, test_copies] = report, fitted + time.perf_counter() - tick
            print(f"seed {seed} {classifier}, {copies} counterfactuals, {test_copies} at test: "
                  + ", ".join(f"{m} {report[m]:.3f}" for m in METRICS), flush=True)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/fonts_bias.yaml")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--setting", type=float, default=0.0, help="share of bias-conflicting images in D_B")
    parser.add_argument("--classifiers", nargs="+", default=list(CLASSIFIERS), choices=CLASSIFIERS)
    parser.add_argument("--counterfactuals", type=int, nargs="+", default=[0, 5, 10, 20])
    parser.add_argument("--test-counterfactuals", type=int, nargs="+", default=[0, 6])
    parser.add_argument("--name", default="debias_validation", help="results file name")
    parser.add_argument("--set", action="append", default=[], help="recipe override, e.g. train.steps=20")
    parser.add_argument("--runs", type=Path, default=Path("runs/benchmarks/table2"), help="where runs go")
    args = parser.parse_args()
    start = time.perf_counter()
    cells: dict[str, dict[str, list[float]]] = {}
    ceiling: list[float] = []
    for seed in range(args.seeds):
        for (classifier, copies, test_copies), (report, seconds) in one_seed(args, seed).items():
            name = f"{classifier}, {copies}, {test_copies}"
            cell = cells.setdefault(name, {m: [] for m in (*METRICS, "seconds")})
            for m in METRICS:
                cell[m].append(report[m])
            cell["seconds"].append(seconds)
        ceiling.append(encoder_ceiling(args, seed, args.setting))
        print(f"seed {seed} encoder ceiling on D_UB: {ceiling[-1]:.3f}", flush=True)
    payload = {
        "benchmark": "debias_validation",
        "recipe": args.recipe,
        "recipe_overrides": args.set,
        "setting": setting_name(args.setting),
        "scored_on": "D_UB (validation: disjoint from D_B and D_T, every letter on every background)",
        "seeds": list(range(args.seeds)),
        "results": {name: {m: summary(v) for m, v in cell.items()} for name, cell in cells.items()},
        "encoder_ceiling": {
            "what": CEILING,
            **summary(ceiling),
        },
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    write_results(args.name, payload, markdown(payload))


def markdown(payload: dict) -> str:
    lines = [
        f"# Latent debiaser settings on D_UB (fonts_bias, {payload['setting']} conflicting, "
        f"{len(payload['seeds'])} seed(s))",
        "",
        "Fitted on D_B, scored on the validation split D_UB (never D_T). Accuracy in %, "
        "mean ± std over seeds (the mean alone for one seed).",
        "",
    ]
    lines += metric_table("classifier, training copies, test copies", payload["results"], METRICS)
    lines += [
        "",
        "Copies: codes with a random D_B image's background block swapped in, decoded and re-encoded; "
        "at training they are added to the fit, at test the probabilities are averaged over them. "
        "s: seconds to fit and predict D_UB.",
        "",
        "Encoder ceiling: logistic regression fitted and scored (5-fold) on the unbiased D_UB's codes "
        f"without the background block: {percent(payload['encoder_ceiling'])}.",
        "",
        f"Recipe overrides: {' '.join(payload['recipe_overrides']) or 'none'}. "
        f"Wall time of this run: {payload['wall_seconds'] / 60:.1f} min.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
