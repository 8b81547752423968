"""``deae-aug debias``: train or reuse DEAE on D_B, debias, evaluate on D_T, write the report."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from safetensors.torch import save_file

from deae_aug.data.build import build_splits
from deae_aug.data.dataset import load_images
from deae_aug.data.splits import BiasGroup, allowed_bias_values
from deae_aug.debias.latent import Debiaser
from deae_aug.debias.rebalance import rebalance
from deae_aug.errors import RecipeError
from deae_aug.evaluate.classifier import enlarge, predict_proba, train_resnet18
from deae_aug.evaluate.fairness import accuracy_by_value, group_report
from deae_aug.io import atomic_folder, atomic_path, atomic_write_text
from deae_aug.recipes import Recipe
from deae_aug.training.trainer import ensure_trained, resolve_device


def conflicting_mask(recipe: Recipe, factors: np.ndarray, schema) -> np.ndarray:
    """Test rows whose (label, bias value) pair lies outside the biased split's allowed pairs."""
    d, label = recipe.split.debias, recipe.split.label
    groups = [BiasGroup(tuple(g.labels), g.n_bias_values) for g in d.groups]
    allowed = allowed_bias_values(groups, len(schema[d.bias].values))
    y, b = factors[:, schema.position(label)], factors[:, schema.position(d.bias)]
    return np.array(
        [bi not in allowed.get(schema[label].values[yi], ()) for yi, bi in zip(y, b, strict=True)], dtype=bool
    )


def group_table(accuracy: dict[str, dict[str, float]], label: str, bias: str) -> str:
    """Accuracy per (label, bias value) group as a Markdown table: where the worst group is."""
    columns = list(dict.fromkeys(b for row in accuracy.values() for b in row))
    lines = [f"Accuracy per group ({label} by {bias}):", "", f"| {label} | " + " | ".join(columns) + " |"]
    lines.append("|---" * (len(columns) + 1) + "|")
    for value, row in accuracy.items():
        cells = (f"{row[b]:.2f}" if b in row else "" for b in columns)
        lines.append(f"| {value} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def lowest_values(accuracy: dict[str, dict[str, float]], n: int = 5) -> str:
    """The attribute values of lowest accuracy: where the misses fall, bias or not."""
    ranked = sorted(
        (acc, f"{name}={value}") for name, values in accuracy.items() for value, acc in values.items()
    )
    lines = ["Lowest accuracy by attribute value (other attributes mixed; all values in report.json):", ""]
    lines += [f"- {what}: {acc:.4f}" for acc, what in ranked[:n]]
    return "\n".join(lines) + "\n"


def run_debias(recipe: Recipe, run: Path, out: Path, device: str = "auto", progress: bool = True) -> dict:
    if recipe.split.debias is None or recipe.split.label is None:
        raise RecipeError(f"Recipe {recipe.source} needs split.label and split.debias for `debias`")
    start = time.perf_counter()
    model = ensure_trained(recipe, run, device=device, progress=progress).cpu()
    splits = build_splits(recipe)
    with atomic_folder(out, last="report.json") as tmp:  # a killed run leaves no half report
        report = _fit_and_report(recipe, model, splits, run, tmp, device, progress, start)
    return report


def _fit_and_report(
    recipe: Recipe, model, splits: dict, run: Path, out: Path, device: str, progress: bool, start: float
) -> dict:
    """Fit the recipe's debiaser(s) on D_B, score D_T, write classifiers and report into ``out``."""
    label, bias, mode = recipe.split.label, recipe.split.debias.bias, recipe.debias.mode
    biased, test = splits["biased"], splits["test"]
    y_col = biased.schema.position(label)
    test_images, test_factors = load_images(test), test.factors
    fits = {"latent": _fit_latent, "rebalance": _fit_rebalance}
    parts = [mode] if mode != "both" else list(fits)
    probabilities, extra = [], {}
    for part in parts:
        name = "classifier.safetensors" if mode != "both" else f"classifier_{part}.safetensors"
        proba, details = fits[part](recipe, model, biased, test_images, out / name, device, progress)
        probabilities.append(proba)
        extra |= details if mode != "both" else {part: details}
    predicted = np.mean(probabilities, axis=0).argmax(1)
    report = group_report(
        predicted,
        test_factors[:, y_col],
        test_factors[:, test.schema.position(bias)],
        conflicting_mask(recipe, test_factors, test.schema),
    )
    label_values, bias_values = test.schema[label].values, test.schema[bias].values
    report["group_accuracy"] = {}
    for (y, b), acc in sorted(report.pop("by_group").items()):
        report["group_accuracy"].setdefault(label_values[y], {})[bias_values[b]] = acc
    y, b = report["worst_group_at"]
    report["worst_group_at"] = [label_values[y], bias_values[b]]
    hit = predicted == test_factors[:, y_col]
    others = [n for n in test.schema.names if n != label]
    report["accuracy_by_value"] = accuracy_by_value(hit, test_factors, test.schema, others)
    report |= {
        "mode": mode,
        "run": str(run),
        "test_images": len(test),
        "seconds": time.perf_counter() - start,
    }
    report |= extra
    atomic_write_text(out / "report.json", json.dumps(report, indent=2))
    atomic_write_text(
        out / "report.md",
        f"# Debiasing report ({recipe.name}, mode {mode})\n\n| metric | value |\n|---|---|\n"
        f"| unbiased accuracy | {report['unbiased']:.4f} |\n"
        f"| worst-group accuracy | {report['worst_group']:.4f} ({' on '.join(report['worst_group_at'])}: "
        f"{report['worst_group_correct']} of {report['worst_group_size']}) |\n"
        f"| bias-conflicting accuracy | {report['bias_conflicting']:.4f} |\n\n"
        + group_table(report["group_accuracy"], label, bias)
        + "\n"
        + lowest_values(report["accuracy_by_value"]),
    )
    return report


def _fit_latent(
    recipe: Recipe, model, biased, test_images, path: Path, device: str, progress: bool
) -> tuple[np.ndarray, dict]:
    """The latent debiaser fitted on D_B and saved to ``path``: test probabilities and details."""
    label = recipe.split.label
    debiaser = Debiaser(
        model, biased.schema.names, label, [recipe.split.debias.bias], recipe.debias.classifier,
        recipe.seed, recipe.debias.counterfactuals, recipe.debias.test_counterfactuals,
    )  # fmt: skip
    debiaser.fit(load_images(biased), biased.factors[:, biased.schema.position(label)])
    debiaser.save(path)
    details = {
        "classifier": recipe.debias.classifier,
        "counterfactuals": recipe.debias.counterfactuals,
        "test_counterfactuals": recipe.debias.test_counterfactuals,
    }
    proba = np.zeros((len(test_images), len(biased.schema[label].values)))  # a column per label value,
    proba[:, debiaser.classes_] = debiaser.predict_proba(test_images)  # as the ResNet's
    return proba, details


def _fit_rebalance(
    recipe: Recipe, model, biased, test_images, path: Path, device: str, progress: bool
) -> tuple[np.ndarray, dict]:
    """ResNet-18 on D_B rebalanced with DEAE swaps, saved to ``path``: test probabilities and details."""
    label, residual, scale = recipe.split.label, recipe.debias.residual, recipe.debias.classifier_scale
    images, labels, synthetic = rebalance(
        model, biased, label, recipe.split.debias.bias, recipe.seed, residual
    )
    classifier = train_resnet18(
        enlarge(images, scale), labels, len(biased.schema[label].values), recipe.debias.classifier_steps,
        seed=recipe.seed, device=resolve_device(device), progress=progress,
    )  # fmt: skip
    state = {k: v.detach().contiguous().cpu() for k, v in classifier.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, tmp, metadata={"input_scale": str(scale)})
    details = {
        "classifier": "resnet18",
        "classifier_scale": scale,
        "residual": residual,
        "synthetic_images": synthetic,
        "training_images": len(images),
    }
    return predict_proba(classifier, enlarge(test_images, scale)).numpy(), details
