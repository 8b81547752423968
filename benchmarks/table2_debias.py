"""Paper Table 2 plus a bias sweep: does DEAE debias a letter classifier trained on D_B?

Splits of recipes/fonts_bias.yaml (design.md 5): in D_B, G1 letters (A-C) appear on 1
background, G2 (D-F) on 3, G3 (G-J) on all 6; D_UB has every letter on every background; D_T
is unbiased and disjoint from both. The sweep adds a share of bias-conflicting images to every
G1/G2 letter: 5%, 1% and 0% (the paper's setting: G1 letters never leave their background).

Rows (every ResNet-18 row trains with the same recipe, `train_classifier`, --steps at batch 64;
by default the recipe's debias.classifier_steps, as `deae-aug debias` trains):
- ERM: ResNet-18 on D_B.
- Oracle: ResNet-18 on D_UB (does not depend on the setting).
- Reweighting: D_B, batches drawn with probability 1 / |(label, background) group|.
- GroupDRO: D_B, online group weights (Sagawa et al. 2020), eta 0.01.
- DEAE latent: logistic regression on DEAE codes without the background block (`Debiaser`).
- DEAE latent + counterfactuals: the same, fitted also on `debias.counterfactuals` copies of
  each code with a random image's background block swapped in, decoded and re-encoded.
- DEAE rebalance: absent (letter, background) pairs synthesised by swapping in the background
  block, then ResNet-18 (the authors' way: the synthetic images are decodes).
- DEAE rebalance, residual: the same, each synthetic image its source plus the decoder's change
  (recipe key debias.residual; chosen on D_UB by benchmarks/diagnostics/rebalance_validation.py).
- Averaged (`debias.mode: both`): the class probabilities of latent + counterfactuals and of
  one rebalance row, averaged (chosen on D_UB by benchmarks/diagnostics/rebalance_validation.py).
DEAE is trained per setting and seed with the recipe's schedule (as `deae-aug debias` does).
The ResNet-18 rows see the images enlarged --scale times (default 2: 64 px). The standard stem
shrinks 32 px to 8x8 before its first block: at 150 steps that costs the oracle 9 points on
held-out D_UB (benchmarks/diagnostics/resnet_budget.py), so 64 px is the budget's best use.
Classifiers are saved under --runs (runs/benchmarks/table2/) for benchmarks/gradcam.py.

Usage: python -m benchmarks.table2_debias [--seeds 3] [--steps N] [--scale 2] [--settings 0.0 0.01 0.05]
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks.common import environment, percent, summary, training_seconds, write_results
from deae_aug.data.build import build_splits
from deae_aug.data.dataset import load_images
from deae_aug.debias.latent import Debiaser
from deae_aug.debias.rebalance import rebalance
from deae_aug.debias.report import conflicting_mask
from deae_aug.evaluate.classifier import enlarge, predict_proba, resnet18_classifier, train_classifier
from deae_aug.evaluate.fairness import group_report
from deae_aug.io import atomic_path
from deae_aug.recipes import Recipe, load_recipe
from deae_aug.training.trainer import ensure_trained

ROWS = (
    "ERM", "Oracle (D_UB)", "Reweighting", "GroupDRO",
    "DEAE latent", "DEAE latent + counterfactuals", "DEAE rebalance", "DEAE rebalance, residual",
    "DEAE latent + counterfactuals and rebalance, averaged",
    "DEAE latent + counterfactuals and rebalance, residual, averaged",
)  # fmt: skip
REBALANCE = {"rebalance": "DEAE rebalance", "rebalance_residual": "DEAE rebalance, residual"}
BASELINES = {"ERM": "erm", "Reweighting": "reweighting", "GroupDRO": "groupdro"}  # D_B ResNet-18 rows
AVERAGED = dict(zip(REBALANCE, ROWS[-2:], strict=True))  # debias.mode both, with either rebalance
METRICS = ("unbiased", "worst_group", "bias_conflicting")
CEILING = "5-fold logistic regression on D_UB codes without the bias block (D_UB, not D_T)"


def setting_name(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def seed_setting(args: argparse.Namespace, seed: int, fraction: float) -> tuple[Recipe, Path]:
    """The recipe for one seed and bias setting, and the folder its runs go to."""
    overrides = [*args.set, f"seed={seed}", f"split.debias.conflict_fraction={fraction}"]
    folder = args.runs / setting_name(fraction).replace("%", "pct") / f"seed{seed}"
    return load_recipe(args.recipe, overrides), folder


def fingerprint(steps: int, seed: int, *tensors: torch.Tensor | None, dilated: bool = False) -> str:
    """What a ResNet-18 row was trained on: the same images, labels, weights, steps, seed and
    architecture give the same classifier, so a rerun (one more row, another table) reuses it."""
    digest = hashlib.sha256(f"{steps} {seed}{' dilated' if dilated else ''}".encode())
    for tensor in tensors:
        digest.update(b"-" if tensor is None else tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_classifier(model: torch.nn.Module, path: Path, key: str, seconds: float) -> None:
    """Weights as safetensors (benchmarks/gradcam.py loads them without executing code)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, tmp, metadata={"fingerprint": key, "seconds": f"{seconds:.3f}"})


def load_classifier(
    path: Path, key: str, n_classes: int, dilated: bool = False
) -> tuple[torch.nn.Module, float] | None:
    """The classifier saved at ``path`` and its training seconds, if it was trained on ``key``."""
    if not path.exists():
        return None
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    if meta.get("fingerprint") != key:
        return None
    model = resnet18_classifier(n_classes, dilated)
    model.load_state_dict(load_file(path))
    return model.eval(), float(meta["seconds"])


def training_set(
    name: str, recipe: Recipe, splits: dict, folder: Path, seed: int
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Images, labels and `train_classifier` keyword arguments of the ResNet-18 row ``name``:
    erm, reweighting, groupdro (D_B), oracle (D_UB), rebalance (D_B plus decoded DEAE swaps) or
    rebalance_residual (D_B plus the swaps' decoded change added to their source images)."""
    label, bias = recipe.split.label, recipe.split.debias.bias
    if name in ("rebalance", "rebalance_residual"):
        deae = ensure_trained(recipe, folder / "deae", device="cpu", progress=True)
        residual = name == "rebalance_residual"
        images, labels, _ = rebalance(deae, splits["biased"], label, bias, seed, residual)
        return images, labels, {}
    data = splits["unbiased" if name == "oracle" else "biased"]
    schema = data.schema
    y_col, b_col = schema.position(label), schema.position(bias)
    images, labels = load_images(data), torch.from_numpy(data.factors[:, y_col].copy())
    groups = torch.from_numpy(data.factors[:, y_col] * len(schema[bias].values) + data.factors[:, b_col])
    extra = {
        "reweighting": {"sample_weights": 1.0 / torch.bincount(groups)[groups]},
        "groupdro": {"groups": groups},
    }
    return images, labels, extra.get(name, {})


def classifier_file(name: str, scale: int, dilated: bool = False) -> str:
    return f"{name}{'' if scale == 1 else f'_x{scale}'}{'_dilated' if dilated else ''}.safetensors"


def trained_resnet(
    name: str,
    recipe: Recipe,
    splits: dict,
    folder: Path,
    steps: int,
    seed: int,
    scale: int = 1,
    data: tuple[torch.Tensor, torch.Tensor, dict] | None = None,
    dilated: bool = False,
) -> tuple[torch.nn.Module, float]:
    """The ResNet-18 row ``name`` and its training seconds, loaded from ``folder`` when it was
    trained on the same data before. ``scale`` > 1 trains on images enlarged that many times.
    ``data``: the row's `training_set`, when the caller has built it already. ``dilated``: see
    `resnet18_classifier`."""
    images, labels, kwargs = data or training_set(name, recipe, splits, folder, seed)
    images = enlarge(images, scale)
    path = folder / classifier_file(name, scale, dilated)
    key = fingerprint(steps, seed, images, labels, *kwargs.values(), dilated=dilated)
    n_classes = len(splits["biased"].schema[recipe.split.label].values)
    saved = load_classifier(path, key, n_classes, dilated)
    if saved is None:
        tick = time.perf_counter()
        model = train_classifier(
            images, labels, n_classes, steps, seed=seed, dilated=dilated, progress=True, **kwargs
        )
        saved = model, time.perf_counter() - tick
        save_classifier(model, path, key, saved[1])
    return saved


def one_setting(args: argparse.Namespace, seed: int, fraction: float, oracle: dict) -> dict[str, tuple]:
    """Every row for one bias setting and seed: {row: (report, seconds)}.

    ``oracle`` carries the D_UB classifier between settings of one seed (D_UB does not change).
    """
    recipe, folder = seed_setting(args, seed, fraction)
    label, bias = recipe.split.label, recipe.split.debias.bias
    splits = build_splits(recipe)
    biased, test = splits["biased"], splits["test"]
    schema = biased.schema
    y_col, b_col = schema.position(label), schema.position(bias)
    x_b, y_b = load_images(biased), torch.from_numpy(biased.factors[:, y_col].copy())
    x_t, f_t = load_images(test), test.factors
    x_t_resnet = enlarge(x_t, args.scale)  # what the ResNet-18 rows see
    conflicting = conflicting_mask(recipe, f_t, schema)

    def evaluate(predicted: np.ndarray) -> dict:
        report = group_report(predicted, f_t[:, y_col], f_t[:, b_col], conflicting)
        y, b = report["worst_group_at"]
        report["worst_group_in"] = (
            f"{schema[label].values[y]} on {schema[bias].values[b]}: "
            f"{report['worst_group_correct']} of {report['worst_group_size']}"
        )
        return report

    probabilities: dict[str, np.ndarray] = {}  # of the rows the averaged row combines

    def resnet(name: str) -> tuple[dict, float]:
        model, seconds = trained_resnet(name, recipe, splits, folder, args.steps, seed, args.scale)
        probabilities[name] = predict_proba(model, x_t_resnet).numpy()
        return evaluate(probabilities[name].argmax(1)), seconds

    wanted = set(args.rows)
    out = {row: resnet(name) for row, name in BASELINES.items() if row in wanted}
    if "Oracle (D_UB)" in wanted:
        if not oracle:  # D_UB is the same in every setting: train once per seed, copy the weights
            oracle["result"] = resnet("oracle")
            oracle["path"] = folder / classifier_file("oracle", args.scale)
        else:
            (folder / oracle["path"].name).write_bytes(oracle["path"].read_bytes())
        out["Oracle (D_UB)"] = oracle["result"]

    deae = ensure_trained(recipe, folder / "deae", device="cpu", progress=True)
    deae_seconds = training_seconds(folder / "deae")  # logged, so a reused run still counts
    tick = time.perf_counter()
    if "DEAE latent" in wanted:
        debiaser = Debiaser(deae, schema.names, label, [bias], recipe.debias.classifier, seed)
        debiaser.fit(x_b, y_b.numpy())
        out["DEAE latent"] = (evaluate(debiaser.predict(x_t)), deae_seconds + time.perf_counter() - tick)
    if recipe.debias.counterfactuals and wanted & {"DEAE latent + counterfactuals", *AVERAGED.values()}:
        tick = time.perf_counter()
        debiaser = Debiaser(
            deae, schema.names, label, [bias], recipe.debias.classifier, seed, recipe.debias.counterfactuals
        ).fit(x_b, y_b.numpy())
        seconds = deae_seconds + time.perf_counter() - tick
        probabilities["latent"] = debiaser.predict_proba(x_t)
        assert list(debiaser.classes_) == list(range(probabilities["latent"].shape[1]))  # as ResNet's
        out["DEAE latent + counterfactuals"] = (
            evaluate(probabilities["latent"].argmax(1)),
            seconds,
        )
    for name, row in REBALANCE.items():
        if wanted & {row, AVERAGED[name]}:
            report, elapsed = resnet(name)
            out[row] = (report, deae_seconds + elapsed)
    if "latent" in probabilities:
        for name, row in AVERAGED.items():
            if row not in wanted or name not in probabilities:
                continue
            averaged = (probabilities["latent"] + probabilities[name]) / 2
            seconds = out["DEAE latent + counterfactuals"][1] + out[REBALANCE[name]][1] - deae_seconds
            out[row] = (evaluate(averaged.argmax(1)), seconds)
    return out


def encoder_ceiling(args: argparse.Namespace, seed: int, fraction: float) -> float:
    """5-fold accuracy of the latent debiaser's logistic regression fitted on the *unbiased* D_UB's
    codes (bias block dropped): what the encoder allows at best, measured without touching D_T."""
    recipe, folder = seed_setting(args, seed, fraction)
    deae = ensure_trained(recipe, folder / "deae", device="cpu", progress=False)
    unbiased = build_splits(recipe)["unbiased"]
    label, bias = recipe.split.label, recipe.split.debias.bias
    codes = Debiaser(deae, unbiased.schema.names, label, [bias]).features(load_images(unbiased))
    head = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    labels = unbiased.factors[:, unbiased.schema.position(label)]
    return float(cross_val_score(head, codes, labels, cv=folds).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/fonts_bias.yaml")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--steps", type=int, help="ResNet-18 steps (batch 64), every row (default: debias.classifier_steps)"
    )
    parser.add_argument(
        "--scale", type=int, default=2, help="ResNet-18 rows see the images enlarged this much"
    )
    parser.add_argument(
        "--rows", nargs="+", choices=ROWS, default=list(ROWS), metavar="ROW", help="subset of rows"
    )
    parser.add_argument("--settings", type=float, nargs="+", default=[0.0, 0.01, 0.05])
    parser.add_argument("--name", default="table2_debias", help="results file name")
    parser.add_argument("--set", action="append", default=[], help="recipe override, e.g. train.steps=20")
    parser.add_argument("--runs", type=Path, default=Path("runs/benchmarks/table2"), help="where runs go")
    args = parser.parse_args()
    args.steps = args.steps or load_recipe(args.recipe, args.set).debias.classifier_steps
    start = time.perf_counter()
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    seconds: dict[str, list[float]] = {}
    ceiling: dict[str, list[float]] = {}
    worst: dict[str, dict[str, list[str]]] = {}  # per setting and row, each seed's worst group
    for seed in range(args.seeds):
        oracle: dict = {}
        for fraction in args.settings:
            setting = setting_name(fraction)
            for row, (report, elapsed) in one_setting(args, seed, fraction, oracle).items():
                cell = results.setdefault(setting, {}).setdefault(row, {m: [] for m in METRICS})
                for m in METRICS:
                    cell[m].append(report[m])
                seconds.setdefault(row, []).append(elapsed)
                worst.setdefault(setting, {}).setdefault(row, []).append(report["worst_group_in"])
                print(f"seed {seed} {setting} {row}: " + ", ".join(f"{m} {report[m]:.3f}" for m in METRICS))
            ceiling.setdefault(setting, []).append(encoder_ceiling(args, seed, fraction))
            print(f"seed {seed} {setting} encoder ceiling on D_UB: {ceiling[setting][-1]:.3f}", flush=True)

    payload = {
        "benchmark": "table2_debias",
        "recipe": args.recipe,
        "recipe_overrides": args.set,
        "seeds": list(range(args.seeds)),
        "resnet_steps": args.steps,
        "resnet_scale": args.scale,
        "resnet_input_px": load_recipe(args.recipe, args.set).data.render_resolution * args.scale,
        "batch_size": 64,
        "groupdro_eta": 0.01,
        "settings": "share of bias-conflicting images per G1/G2 letter in D_B",
        "results": {
            s: {row: {m: summary(v) for m, v in rows[row].items()} for row in ROWS if row in rows}
            for s, rows in results.items()
        },
        "row_seconds": {row: summary(v) for row, v in seconds.items()},
        "worst_groups": {
            "what": "per seed, the (label, bias value) group of lowest accuracy: right of its D_T images",
            **{s: {row: rows[row] for row in ROWS if row in rows} for s, rows in worst.items()},
        },
        "encoder_ceiling": {
            "what": CEILING,
            **{s: summary(v) for s, v in ceiling.items()},
        },
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    write_results(args.name, payload, markdown(payload))


def markdown(payload: dict) -> str:
    def cell(stats: dict) -> str:
        return "n/a" if stats["mean"] is None else f"{stats['mean'] * 100:.1f} ± {stats['std'] * 100:.1f}"

    lines = [
        f"# Table 2: debiasing ({Path(payload['recipe']).stem}, 32 px, {len(payload['seeds'])} seeds, "
        f"ResNet-18 {payload['resnet_steps']} steps on {payload['resnet_input_px']}-px input)",
        "",
        "Accuracy on D_T in %, mean ± std over seeds. Setting = share of bias-conflicting images "
        "per G1/G2 letter in D_B (0%: G1 letters never leave their background).",
        "",
        "| setting | row | unbiased | worst group | bias-conflicting | training min |",
        "|---|---|---|---|---|---|",
    ]
    for setting, rows in payload["results"].items():
        for row, stats in rows.items():
            minutes = payload["row_seconds"][row]["mean"] / 60
            cells = " | ".join(cell(stats[m]) for m in METRICS)
            lines.append(f"| {setting} | {row} | {cells} | {minutes:.1f} |")
    lines += [
        "",
        "Training min: CPU minutes per seed to train the row (DEAE included), read from the saved "
        "runs when a rerun reuses them.",
        "",
        "Encoder ceiling: the latent debiaser's logistic regression fitted and scored (5-fold) on the "
        "codes of the unbiased D_UB, bias block dropped; what the DEAE encoder allows at best, "
        "measured without D_T: "
        + ", ".join(f"{s} {percent(v)}" for s, v in payload["encoder_ceiling"].items() if s != "what")
        + ".",
        "",
    ]
    worst = {s: rows for s, rows in payload.get("worst_groups", {}).items() if s != "what"}
    if worst:
        per_group = load_recipe(payload["recipe"], payload["recipe_overrides"]).split.debias.test_per_group
        how = (
            f"D_T holds {per_group} images in every group"
            if per_group
            else "D_T draws its images at random from what D_B and D_UB leave, so some groups hold only a few"
        )
        lines += [
            f"Worst group per seed (images right of the group's D_T images; {how}):",
            "",
            "| setting | row | " + " | ".join(f"seed {seed}" for seed in payload["seeds"]) + " |",
            "|---|---|" + "---|" * len(payload["seeds"]),
        ]
        lines += [f"| {s} | {row} | " + " | ".join(cells) + " |" for s, rows in worst.items()
                  for row, cells in rows.items()]  # fmt: skip
        lines.append("")
    lines += [
        f"Recipe overrides: {' '.join(payload['recipe_overrides']) or 'none'}. "
        f"Wall time of this run: {payload['wall_seconds'] / 60:.1f} min.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
