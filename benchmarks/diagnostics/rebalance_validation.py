"""Choose the rebalance mode's synthetic images on the validation split D_UB, never on D_T.

For each seed, the DEAE of --recipe (default recipes/fonts_bias.yaml) trained on D_B (reused
from the folder table2_debias.py uses) fills every missing (letter, background) pair of D_B with background
swaps, either decoded (the authors' way) or as residual edits (the source plus the decoder's
change, `debias.residual`). Table 2's ResNet-18 recipe is trained on each rebalanced set and
scored on D_UB: unbiased accuracy, worst group and bias-conflicting images. A figure shows both
kinds of synthetic image for G1 letters, which D_B has on one background only. A third row
averages the residual classifier's probabilities with the recipe's latent debiaser's.

Classifiers are saved under --runs, where table2_debias.py reuses them.

Usage: python -m benchmarks.diagnostics.rebalance_validation [--seeds 3] [--steps N] [--scale 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import environment, metric_table, percent, summary, write_results
from benchmarks.table2_debias import METRICS, seed_setting, setting_name, trained_resnet, training_set
from deae_aug.data.build import build_splits
from deae_aug.data.dataset import AttributeDataset, load_images
from deae_aug.data.schema import AttributeSchema
from deae_aug.debias.latent import Debiaser
from deae_aug.debias.report import conflicting_mask
from deae_aug.evaluate.classifier import enlarge, predict_proba
from deae_aug.evaluate.fairness import group_report
from deae_aug.explore.latent import decode_edit, encode, swap
from deae_aug.io import save_png
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.recipes import Recipe, load_recipe
from deae_aug.training.samples import to_uint8
from deae_aug.training.trainer import ensure_trained
from deae_aug.viz import image_grid

EDITS = {"rebalance": "decoded swaps", "rebalance_residual": "residual edits"}
LATENT = "latent"
ROWS = {
    **EDITS,
    LATENT: "none: the latent debiaser alone",
    **{f"{edit}+latent": f"{name}, averaged with the latent debiaser" for edit, name in EDITS.items()},
}


def figure(model: Autoencoder, biased: AttributeDataset, label: str, bias: str, letters: int = 3):
    """Rows: a G1 letter's decoded swaps, then its residual edits; columns: the source, then the
    source moved to every background of D_B (donor: D_B's first image on that background)."""
    schema, factors = biased.schema, biased.factors
    y_col, b_col = schema.position(label), schema.position(bias)
    images = load_images(biased)
    codes = encode(model, images)
    donors = [int(np.flatnonzero(factors[:, b_col] == b)[0]) for b in np.unique(factors[:, b_col])]
    tiles, labels = [], []
    for y in np.unique(factors[:, y_col])[:letters]:
        source = int(np.flatnonzero(factors[:, y_col] == y)[0])
        edited = swap(codes[[source] * len(donors)], codes[donors], model.blocks[b_col])
        name = schema[label].values[y]
        for tag, residual in (("decoded", False), ("residual", True)):
            src = images[[source] * len(donors)] if residual else None
            made = to_uint8(decode_edit(model, edited, codes[[source] * len(donors)], src))
            tiles += [images[source].permute(1, 2, 0).numpy(), *made]
            labels.append(f"{name}, {tag}")
    return image_grid(tiles, 1 + len(donors), labels, scale=3)


def one_background_labels(recipe: Recipe, schema: AttributeSchema) -> list[int]:
    """Label indices of the groups that D_B shows on a single background (G1)."""
    values = list(schema[recipe.split.label].values)
    groups = recipe.split.debias.groups
    return [values.index(v) for group in groups if group.n_bias_values == 1 for v in group.labels]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/fonts_bias.yaml")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--setting", type=float, default=0.0, help="share of bias-conflicting images in D_B")
    parser.add_argument(
        "--steps", type=int, help="ResNet-18 steps (batch 64), as Table 2 (default: debias.classifier_steps)"
    )
    parser.add_argument("--scale", type=int, default=2, help="ResNet-18 input enlargement, as Table 2")
    parser.add_argument("--name", default="rebalance_validation", help="results file name")
    parser.add_argument("--set", action="append", default=[], help="recipe override, e.g. train.steps=20")
    parser.add_argument("--runs", type=Path, default=Path("runs/benchmarks/table2"), help="where runs go")
    args = parser.parse_args()
    args.steps = args.steps or load_recipe(args.recipe, args.set).debias.classifier_steps
    start = time.perf_counter()
    cells = {row: {m: [] for m in (*METRICS, "seconds")} for row in ROWS}
    fidelity: dict[str, list[float]] = {edit: [] for edit in EDITS}  # the oracle reads the intended letter
    head_reads: dict[str, list[float]] = {"G1 letters": [], "other letters": []}  # DEAE's letter head
    for seed in range(args.seeds):
        recipe, folder = seed_setting(args, seed, args.setting)
        label, bias = recipe.split.label, recipe.split.debias.bias
        splits = build_splits(recipe)
        unbiased, schema = splits["unbiased"], splits["unbiased"].schema
        f_ub = unbiased.factors
        x_native = load_images(unbiased)  # the latent debiaser reads these, the ResNet-18 enlarged
        x_ub = enlarge(x_native, args.scale)
        conflicting = conflicting_mask(recipe, f_ub, schema)
        deae = ensure_trained(recipe, folder / "deae", device="cpu", progress=True)
        if seed == 0:
            save_png(
                Path("benchmarks/results") / f"{args.name}.png", figure(deae, splits["biased"], label, bias)
            )
        y_ub, b_ub = f_ub[:, schema.position(label)], f_ub[:, schema.position(bias)]
        if deae.heads:  # how well the letter block itself reads letters on every background
            with torch.no_grad():
                read = deae.classify(encode(deae, x_native))[schema.position(label)].argmax(1).numpy()
            g1 = np.isin(y_ub, one_background_labels(recipe, schema))
            head_reads["G1 letters"].append(float((read[g1] == y_ub[g1]).mean()))
            head_reads["other letters"].append(float((read[~g1] == y_ub[~g1]).mean()))
        probabilities, seconds = {}, {}
        oracle = trained_resnet("oracle", recipe, splits, folder, args.steps, seed, args.scale)[0]
        real = len(splits["biased"])  # rebalanced sets hold D_B first, then the synthetic images
        for edit in EDITS:  # trained_resnet saves the classifiers where table2_debias reuses them
            data = training_set(edit, recipe, splits, folder, seed)
            trained = trained_resnet(edit, recipe, splits, folder, args.steps, seed, args.scale, data)
            model, seconds[edit] = trained
            probabilities[edit] = predict_proba(model, x_ub).numpy()
            read = predict_proba(oracle, enlarge(data[0][real:], args.scale)).argmax(1)
            fidelity[edit].append(float((read == data[1][real:]).float().mean()))
        tick = time.perf_counter()  # the recipe's latent debiaser, as `deae-aug debias` fits it
        biased = splits["biased"]
        debias = recipe.debias
        debiaser = Debiaser(
            deae, schema.names, label, [bias], debias.classifier, seed, debias.counterfactuals
        )
        debiaser.fit(load_images(biased), biased.factors[:, schema.position(label)])
        probabilities[LATENT] = debiaser.predict_proba(x_native)
        seconds[LATENT] = time.perf_counter() - tick
        for edit in EDITS:
            probabilities[f"{edit}+latent"] = (probabilities[LATENT] + probabilities[edit]) / 2
            seconds[f"{edit}+latent"] = seconds[edit] + seconds[LATENT]
        for row, proba in probabilities.items():
            report = group_report(proba.argmax(1), y_ub, b_ub, conflicting)
            for m in METRICS:
                cells[row][m].append(report[m])
            cells[row]["seconds"].append(seconds[row])
            print(
                f"seed {seed} {ROWS[row]}: " + ", ".join(f"{m} {report[m]:.3f}" for m in METRICS), flush=True
            )
    payload = {
        "benchmark": "rebalance_validation",
        "recipe": args.recipe,
        "recipe_overrides": args.set,
        "setting": setting_name(args.setting),
        "scored_on": "D_UB (validation: disjoint from D_B and D_T, every letter on every background)",
        "resnet_steps": args.steps,
        "resnet_scale": args.scale,
        "seeds": list(range(args.seeds)),
        "figure": f"{args.name}.png",
        "seconds": "ResNet-18 training (as saved with the classifier when an earlier run trained it) "
        "plus the latent debiaser's fit",
        "results": {ROWS[r]: {m: summary(v) for m, v in cell.items()} for r, cell in cells.items()},
        "synthetic_read_as_intended": {
            "what": "share of synthetic images that Table 2's D_UB oracle classifies as their label",
            **{EDITS[e]: summary(v) for e, v in fidelity.items()},
        },
        "letter_head_on_d_ub": {
            "what": "accuracy of the DEAE's own letter head (train.loss.classify) on D_UB",
            **{group: summary(v) for group, v in head_reads.items() if v},
        },
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    write_results(args.name, payload, markdown(payload))


def markdown(payload: dict) -> str:
    lines = [
        f"# Rebalance mode's synthetic images on D_UB ({Path(payload['recipe']).stem}, "
        f"{payload['setting']} conflicting, {len(payload['seeds'])} seed(s))",
        "",
        f"ResNet-18, {payload['resnet_steps']} steps on images enlarged {payload['resnet_scale']}x, "
        "trained on D_B rebalanced with DEAE background swaps; scored on the validation split D_UB "
        "(never D_T). Accuracy in %, mean ± std over seeds.",
        "",
    ]
    lines += metric_table("synthetic images", payload["results"], METRICS)
    lines += [
        "",
        "Decoded swaps: D(z'), the authors' way. Residual edits: x + D(z') - D(z), the source keeps "
        "its glyph and only the background change comes from the decoder (`debias.residual`). "
        "The latent debiaser: the recipe's (`debias.classifier`, `debias.counterfactuals`), fitted "
        "on D_B's codes; averaged: its class probabilities and the rebalanced ResNet-18's, averaged "
        f"(`debias.mode: both`). s: seconds to train (fit). Figure: `{payload['figure']}`.",
        "",
        "Synthetic images the D_UB oracle (ResNet-18, Table 2's) reads as their intended letter: "
        + ", ".join(
            f"{name} {percent(stats)}%"
            for name, stats in payload["synthetic_read_as_intended"].items()
            if name != "what"
        )
        + ".",
        "",
    ]
    heads = {k: v for k, v in payload.get("letter_head_on_d_ub", {}).items() if k != "what"}
    if heads:
        lines += [
            "The DEAE's own letter head (`train.loss.classify`) on D_UB: "
            + ", ".join(f"{group} {percent(stats)}%" for group, stats in heads.items())
            + ". In D_B a G1 letter's background alone tells it apart, so the head may read it.",
            "",
        ]
    lines += [
        f"Recipe overrides: {' '.join(payload['recipe_overrides']) or 'none'}. "
        f"Wall time of this run: {payload['wall_seconds'] / 60:.1f} min.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
