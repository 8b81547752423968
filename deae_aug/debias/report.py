"""``deae-aug debias``: train or reuse DEAE on D_B, debias, evaluate on D_T, write the report.

D_B / D_T are either drawn from complete data (``split.debias``) or the user's own train and
test split (``split.given``). A given validation split chooses the latent debiaser's classifier
and counterfactuals by worst-group accuracy; a test split may lack groups or bias labels, and
the report says so instead of failing."""

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
from deae_aug.evaluate.classifier import enlarge, predict_proba, train_classifier
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


VAL_CANDIDATES = tuple({"classifier": c, "counterfactuals": n} for c in ("logistic", "mlp") for n in (0, 4))


def bias_attribute(recipe: Recipe) -> str:
    """The attribute `debias` removes: split.debias.bias or split.given.bias."""
    split = recipe.split
    if split.label is not None and split.debias is not None:
        return split.debias.bias
    if split.label is not None and split.given is not None and split.given.bias is not None:
        return split.given.bias
    raise RecipeError(
        f"Recipe {recipe.source} needs split.label and, for `debias`, either split.debias (a biased "
        "split drawn from complete data) or split.given with split.given.bias (your own split)"
    )


def unseen_pairs(train_factors: np.ndarray, factors: np.ndarray, y_col: int, b_col: int) -> np.ndarray:
    """Rows whose (label, bias value) pair the training split never shows (unlabelled bias: False)."""
    seen = set(zip(train_factors[:, y_col].tolist(), train_factors[:, b_col].tolist(), strict=True))
    pairs = zip(factors[:, y_col].tolist(), factors[:, b_col].tolist(), strict=True)
    return np.array([b >= 0 and (y, b) not in seen for y, b in pairs], dtype=bool)


def scored(
    predicted: np.ndarray, factors: np.ndarray, y_col: int, b_col: int, conflicting: np.ndarray
) -> dict:
    """Accuracy, and the group metrics over the rows whose bias value is labelled (none: null)."""
    y, b = factors[:, y_col], factors[:, b_col]
    hit = predicted == y
    labelled = b >= 0
    out = {"accuracy": float(hit.mean()), "bias_labelled": int(labelled.sum())}
    if not labelled.any():
        return out | {
            "unbiased": float(hit.mean()),
            "worst_group": None,
            "bias_conflicting": None,
            "by_group": {},
        }
    report = group_report(predicted[labelled], y[labelled], b[labelled], conflicting[labelled])
    report["group_mean"] = float(np.mean(list(report["by_group"].values())))
    if not conflicting[labelled].any():
        report["bias_conflicting"] = None
    return out | report


def run_debias(recipe: Recipe, run: Path, out: Path, device: str = "auto", progress: bool = True) -> dict:
    bias_attribute(recipe)
    splits = build_splits(recipe)
    if "test" not in splits:
        raise RecipeError(
            f"Recipe {recipe.source}: `debias` reports on a test split; give split.given.test or "
            "manifest rows whose split is 'test'"
        )
    start = time.perf_counter()
    model = ensure_trained(recipe, run, device=device, progress=progress).cpu()
    with atomic_folder(out, last="report.json") as tmp:  # a killed run leaves no half report
        report = _fit_and_report(recipe, model, splits, run, tmp, device, progress, start)
    return report


def _fit_and_report(
    recipe: Recipe, model, splits: dict, run: Path, out: Path, device: str, progress: bool, start: float
) -> dict:
    """Fit the recipe's debiaser(s) on D_B, score D_T, write classifiers and report into ``out``."""
    label, bias, mode = recipe.split.label, bias_attribute(recipe), recipe.debias.mode
    biased, test, val = splits.get("biased", splits.get("train")), splits["test"], splits.get("val")
    schema = biased.schema
    y_col, b_col = schema.position(label), schema.position(bias)
    test_images, test_factors = load_images(test), test.factors
    if recipe.split.debias is not None:
        conflicting = conflicting_mask(recipe, test_factors, schema)
    else:
        conflicting = unseen_pairs(biased.factors, test_factors, y_col, b_col)
    fits = {"latent": _fit_latent, "rebalance": _fit_rebalance}
    parts = [mode] if mode != "both" else list(fits)
    probabilities, extra = [], {}
    for part in parts:
        name = "classifier.safetensors" if mode != "both" else f"classifier_{part}.safetensors"
        proba, details = fits[part](recipe, model, biased, val, test_images, out / name, device, progress)
        probabilities.append(proba)
        extra |= details if mode != "both" else {part: details}
    predicted = np.mean(probabilities, axis=0).argmax(1)
    report = scored(predicted, test_factors, y_col, b_col, conflicting)
    label_values, bias_values = schema[label].values, schema[bias].values
    report["group_accuracy"] = {}
    for (y, b), acc in sorted(report.pop("by_group").items()):
        report["group_accuracy"].setdefault(label_values[y], {})[bias_values[b]] = acc
    if report["worst_group"] is not None:
        y, b = report["worst_group_at"]
        report["worst_group_at"] = [label_values[y], bias_values[b]]
    hit = predicted == test_factors[:, y_col]
    others = [n for n in schema.names if n != label]
    report["accuracy_by_value"] = accuracy_by_value(hit, test_factors, schema, others)
    report["notes"] = test_notes(test_factors, y_col, b_col, label_values, bias_values, report)
    report |= {
        "mode": mode,
        "run": str(run),
        "test_images": len(test),
        "seconds": time.perf_counter() - start,
    }
    report |= extra
    atomic_write_text(out / "report.json", json.dumps(report, indent=2))
    atomic_write_text(out / "report.md", report_markdown(recipe.name, report, label, bias))
    return report


def test_notes(factors, y_col: int, b_col: int, label_values, bias_values, report: dict) -> list[str]:
    """What the test split lacks, in words: unlabelled bias values, absent groups, no conflicts."""
    notes = []
    unlabelled = int((factors[:, b_col] < 0).sum())
    if unlabelled == len(factors):
        notes.append(
            "the test split has no bias labels: only accuracy is reported; worst-group and "
            "bias-conflicting accuracy need them"
        )
    elif unlabelled:
        notes.append(
            f"{unlabelled} test images have no bias label: "
            f"group metrics use the other {len(factors) - unlabelled}"
        )
    if report["worst_group"] is not None:
        present = {(int(y), int(b)) for y, b in factors[factors[:, b_col] >= 0][:, [y_col, b_col]]}
        missing = [f"{label_values[y]} on {bias_values[b]}" for y in range(len(label_values))
                   for b in range(len(bias_values)) if (y, b) not in present]  # fmt: skip
        if missing:
            shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
            notes.append(
                f"the test split holds {len(present)} of {len(label_values) * len(bias_values)} groups; "
                f"worst-group accuracy is over those (absent: {shown})"
            )
        if report["bias_conflicting"] is None:
            notes.append("no test image is bias-conflicting (every pair appears in training)")
    return notes


def report_markdown(name: str, report: dict, label: str, bias: str) -> str:
    def value(key: str) -> str:
        return "n/a" if report.get(key) is None else f"{report[key]:.4f}"

    rows = [("accuracy", value("accuracy"))]
    if report["worst_group"] is not None:
        at = " on ".join(report["worst_group_at"])
        rows += [
            ("unbiased accuracy (mean over groups)", value("group_mean")),
            ("worst-group accuracy", f"{value('worst_group')} ({at}: "
                                     f"{report['worst_group_correct']} of {report['worst_group_size']})"),
            ("bias-conflicting accuracy", value("bias_conflicting")),
        ]  # fmt: skip
    lines = [f"# Debiasing report ({name}, mode {report['mode']})", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    chosen = report.get("chosen_on_val") or report.get("latent", {}).get("chosen_on_val")
    if chosen:
        lines += ["", f"Chosen on the validation split: {chosen}."]
    lines += [""] + [f"- Note: {n}" for n in report["notes"]] + ([""] if report["notes"] else [])
    if report["group_accuracy"]:
        lines += [group_table(report["group_accuracy"], label, bias)]
    lines += [lowest_values(report["accuracy_by_value"])]
    return "\n".join(lines)


def _fit_latent(
    recipe: Recipe, model, biased, val, test_images, path: Path, device: str, progress: bool
) -> tuple[np.ndarray, dict]:
    """The latent debiaser fitted on D_B (with a validation split: the best of VAL_CANDIDATES by
    worst-group accuracy there) and saved to ``path``: test probabilities and details."""
    label, bias = recipe.split.label, bias_attribute(recipe)
    y_col, b_col = biased.schema.position(label), biased.schema.position(bias)
    train_images, train_labels = load_images(biased), biased.factors[:, y_col]

    def fitted(classifier: str, counterfactuals: int) -> Debiaser:
        return Debiaser(
            model, biased.schema.names, label, [bias], classifier, recipe.seed, counterfactuals,
            recipe.debias.test_counterfactuals,
        ).fit(train_images, train_labels)  # fmt: skip

    d = recipe.debias
    details: dict = {"classifier": d.classifier, "counterfactuals": d.counterfactuals}
    if val is None:
        debiaser = fitted(d.classifier, d.counterfactuals)
    else:
        val_images, conflicting = load_images(val), unseen_pairs(biased.factors, val.factors, y_col, b_col)
        trials = []
        for candidate in VAL_CANDIDATES:
            candidate_model = fitted(**candidate)
            result = scored(candidate_model.predict(val_images), val.factors, y_col, b_col, conflicting)
            key = result["worst_group"] if result["worst_group"] is not None else result["accuracy"]
            trials.append((key, result["accuracy"], candidate, candidate_model))
        best = max(trials, key=lambda t: (t[0], t[1]))
        debiaser, details = best[3], dict(best[2])
        criterion = "worst-group accuracy" if val.factors[:, b_col].max() >= 0 else "accuracy"
        details["chosen_on_val"] = f"{best[2]} by {criterion} ({best[0]:.4f})"
        details["validation"] = [{**c, "score": k, "accuracy": a} for k, a, c, _ in trials]
    debiaser.save(path)
    details["test_counterfactuals"] = d.test_counterfactuals
    proba = np.zeros((len(test_images), len(biased.schema[label].values)))  # a column per label value,
    proba[:, debiaser.classes_] = debiaser.predict_proba(test_images)  # as the ResNet's
    return proba, details


def _fit_rebalance(
    recipe: Recipe, model, biased, val, test_images, path: Path, device: str, progress: bool
) -> tuple[np.ndarray, dict]:
    """The recipe's classifier (debias.network) on D_B rebalanced with DEAE swaps, saved to ``path``:
    test probabilities and details (nothing is chosen on a validation split: the recipe's steps and
    scale are used)."""
    label, residual, scale = recipe.split.label, recipe.debias.residual, recipe.debias.classifier_scale
    bias, repaint = bias_attribute(recipe), recipe.debias.repaint
    images, labels, synthetic = rebalance(model, biased, label, bias, recipe.seed, residual, repaint)
    classifier = train_classifier(
        enlarge(images, scale), labels, len(biased.schema[label].values), recipe.debias.classifier_steps,
        recipe.debias.classifier_batch,
        seed=recipe.seed, device=resolve_device(device), progress=progress, network=recipe.debias.network,
    )  # fmt: skip
    state = {k: v.detach().contiguous().cpu() for k, v in classifier.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, tmp, metadata={"input_scale": str(scale), "network": recipe.debias.network})
    details = {
        "classifier": recipe.debias.network,
        "classifier_scale": scale,
        "residual": residual,
        "repaint": repaint,
        "synthetic_images": synthetic,
        "training_images": len(images),
    }
    return predict_proba(classifier, enlarge(test_images, scale)).numpy(), details
