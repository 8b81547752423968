"""Shared helpers for benchmark scripts: environment record and result writing."""

from __future__ import annotations

import json
import math
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

import deae_aug
from deae_aug.data.dataset import AttributeDataset
from deae_aug.io import atomic_write_text
from deae_aug.recipes import load_recipe
from deae_aug.training.trainer import ensure_trained

RESULTS = Path(__file__).resolve().parent / "results"


def environment() -> dict:
    import numpy
    import PIL

    return {
        "deae_aug": deae_aug.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
    }


def summary(values: list[float]) -> dict:
    """Mean, std and the values; undefined values (NaN) become null and are left out of both."""
    values = [None if v is None or math.isnan(v) else v for v in values]
    finite = [v for v in values if v is not None]
    return {
        "mean": statistics.fmean(finite) if finite else None,
        "std": statistics.stdev(finite) if len(finite) > 1 else (0.0 if finite else None),
        "values": values,
    }


def train_on_large(
    recipe: str, runs: str | Path, variant: str, seed: int, steps: int, extra: Sequence[str] = ()
) -> tuple:
    """(model, logged training seconds) of one variant and seed trained on the recipe's D_L:
    trained, resumed or reused from ``runs/seed<seed>/<variant>``, refused if trained with other
    settings. DEAE fine-tunes the same seed's GSL-AE (the reference's warm start), so train that
    first. ``extra``: more recipe overrides."""
    run = Path(runs) / f"seed{seed}" / variant
    overrides = [f"seed={seed}", f"model.variant={variant}", f"train.steps={steps}", "train.split=large",
                 "train.sample_every=100000", *extra]  # fmt: skip
    if variant == "deae":
        overrides += [f"train.init_from={Path(runs) / f'seed{seed}' / 'gsl'}", "train.loss.reg_start=0"]
    model = ensure_trained(load_recipe(recipe, overrides), run, device="cpu")
    return model.eval(), training_seconds(run)


def train_on_small(
    recipe: str, runs: str | Path, variant: str, seed: int, extra: Sequence[str] = ()
) -> tuple:
    """(model, logged training seconds) of one variant and seed trained exactly as ``deae-aug
    augment`` trains it: the recipe's own split (D_S) and schedule; DEAE includes its GSL-AE phase.
    Every seed trains on the recipe's own D_S (``train.seed``), as Table 1's second autoencoder
    seed does. Trained, resumed or reused from ``runs/seed<seed>/<variant>``."""
    run = Path(runs) / f"seed{seed}" / variant
    overrides = [*extra, f"train.seed={seed}", f"model.variant={variant}"]
    model = ensure_trained(load_recipe(recipe, overrides), run, device="cpu")
    return model.eval(), training_seconds(run)


def percent(stats: dict) -> str:
    """A `summary` in %: '83.6 ± 6.6', or the mean alone for one value (no spread to show)."""
    spread = f" ± {stats['std'] * 100:.1f}" if len(stats["values"]) > 1 else ""
    return f"{stats['mean'] * 100:.1f}{spread}"


def metric_table(first_column: str, results: dict, metrics: Sequence[str]) -> list[str]:
    """Markdown table lines: one row per result, its ``metrics`` in % and its mean seconds."""
    lines = [f"| {first_column} | " + " | ".join(m.replace("_", " ") for m in metrics) + " | s |"]
    lines.append("|---" * (len(metrics) + 2) + "|")
    for name, stats in results.items():
        cells = " | ".join(percent(stats[m]) for m in metrics)
        lines.append(f"| {name} | {cells} | {stats['seconds']['mean']:.0f} |")
    return lines


def training_seconds(run: Path) -> float:
    """Training time the run logged (reused or resumed runs included), from its metrics.jsonl."""
    last = (run / "metrics.jsonl").read_text(encoding="utf-8").strip().splitlines()[-1]
    return float(json.loads(last)["seconds"])


def write_results(name: str, payload: dict, table: str) -> Path:
    """Write results/<name>.json and results/<name>.md atomically."""
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / f"{name}.json", json.dumps(payload, indent=2) + "\n")
    atomic_write_text(RESULTS / f"{name}.md", table)
    return RESULTS / f"{name}.json"


def validation_split(small: AttributeDataset, large: AttributeDataset, shifted: set[str], size: int = 2000):
    """D_L images whose values of the ``shifted`` attributes D_S never has, at most ``size`` of them."""
    keep = np.ones(len(large), dtype=bool)
    for name in shifted:
        col = small.schema.position(name)
        keep &= ~np.isin(large.factors[:, col], small.factors[:, col])
    rows = np.flatnonzero(keep)
    return large.select(np.sort(np.random.default_rng(0).permutation(rows)[:size]))
