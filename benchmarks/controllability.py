"""Measured controllability (paper 3.2-3.3): GAE, beta-VAE, GSL-AE and DEAE side by side.

Per seed, on fonts_small's D_L at 32 px: GAE and beta-VAE train --steps; GSL-AE trains --steps
and DEAE fine-tunes it for --deae-steps (the reference's warm start). Runs are shared with
benchmarks/train_quality.py (same folders, same overrides), so either script reuses the other's.

Metrics (deae_aug/evaluate/controllability.py, deae_aug/explore/novel.py):
- preservation: interpolate block k between two D_L images that differ in k; the oracle must
  read every other attribute unchanged (mean over attributes and interior steps): as the base
  image's labels, and as the base's plain reconstruction (what the interpolation changed);
  controlled: the path also ends on the partner's value of k;
- colour monotonic: share of background / font-colour paths whose measured region colour moves
  steadily from one end to the other;
- unseen-colour MSE: pairs identical but for font and background colours never seen in training
  (random sRGB, Delta E >= 10 from every palette colour); MSE of the letter, size and font
  blocks in units of each dimension's training spread;
- block disentanglement: logistic probes of every block for every attribute, DCI-style score;
- novel colours: distinct decoded background colours >= 10 Delta E from every training colour,
  and how many of them keep the letter the oracle reads.

``--split small`` measures the models ``deae-aug augment`` actually trains: every variant on the
540-image D_S with the recipe's own schedule (DEAE includes its GSL-AE phase), evaluated on D_S.
On D_L, 3,000 steps leave the slim models unable to draw most letters (the oracle reads the
letter of a plain reconstruction in about 25% of images), so preservation there mostly measures
reconstruction failure; on D_S it reads 0.9. Runs are shared with ``train_quality --split small``.

Usage: python -m benchmarks.controllability [--split large|small] [--seeds 3] [--steps 3000]
       [--deae-steps 1200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.common import RESULTS, environment, summary, train_on_large, train_on_small, write_results
from deae_aug.data.build import build_dataset, build_splits
from deae_aug.data.dataset import load_images
from deae_aug.data.fonts import COLORS, FontsRenderer, format_color
from deae_aug.evaluate.controllability import (
    block_disentanglement,
    block_pair_mse,
    colour_monotonic,
    preservation_rate,
    probe_matrix,
    region_colour,
)
from deae_aug.evaluate.oracle import oracle_for
from deae_aug.evaluate.quality import swap_pairs
from deae_aug.explore.directions import value_centres
from deae_aug.explore.figures import explore
from deae_aug.explore.latent import decode, encode, interpolation_path
from deae_aug.explore.novel import delta_e, mine_novel_colours
from deae_aug.io import save_png
from deae_aug.recipes import load_recipe
from deae_aug.training.samples import to_uint8

VARIANTS = ("gae", "betavae", "gsl", "deae")


def unseen_colours(n: int, rng: np.random.Generator, min_delta_e: float = 10.0) -> np.ndarray:
    """(n, 3) random sRGB colours at least ``min_delta_e`` from every named palette colour."""
    palette = np.array(list(COLORS.values()))
    out: list[np.ndarray] = []
    while len(out) < n:
        c = rng.integers(0, 256, size=(4 * n, 3))
        out += list(c[delta_e(c, palette).min(1) >= min_delta_e])
    return np.stack(out[:n])


def unseen_colour_pairs(large, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two uint8 batches: the same letter, size and font, each with its own unseen colours."""
    rng = np.random.default_rng(seed)
    renderer = FontsRenderer(large.resolution)
    rows = rng.choice(len(large), size=n)
    fg, bg = unseen_colours(2 * n, rng).reshape(2, n, 3), unseen_colours(2 * n, rng).reshape(2, n, 3)
    batches = []
    for side in range(2):
        images = []
        for i, r in enumerate(rows):
            d = large.describe(int(r))
            fg_hex, bg_hex = format_color(fg[side, i]), format_color(bg[side, i])
            images.append(renderer.render(d["letter"], d["size"], fg_hex, bg_hex, d["font"]))
        batches.append(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous())
    return batches[0], batches[1]


def monotonic_share(model, large, k: int, region: str, pairs: int, seed: int) -> float:
    """Share of block-k interpolation paths whose background (or glyph) colour moves steadily."""
    rng = np.random.default_rng(seed)
    rows = swap_pairs(large.factors, k, pairs, rng)
    images = load_images(large.select(rows.reshape(-1))).view(len(rows), 2, 3, large.resolution, -1)
    codes = encode(model, images.flatten(0, 1)).view(len(rows), 2, -1)
    hits = []
    for (a, _), (za, zb) in zip(rows, codes, strict=True):
        glyph = large.mask(int(a)) > 0.5
        mask = glyph if region == "glyph" else ~glyph
        path = to_uint8(decode(model, interpolation_path(za, zb, model.blocks[k], 7)))
        hits.append(colour_monotonic(region_colour(path, mask)))
    return float(np.mean(hits))


def evaluate(model, args, large, full, oracle, seed: int) -> dict:
    schema = large.schema
    names = schema.names
    codes = encode(model, load_images(large))
    rates = {
        n: preservation_rate(model, oracle, large, k, args.pairs, seed=seed) for k, n in enumerate(names)
    }
    preservation = {n: r["preserved"] for n, r in rates.items()}
    vs_recon = {n: r["preserved_vs_reconstruction"] for n, r in rates.items()}
    controlled = {n: r["controlled"] for n, r in rates.items()}
    a, b = unseen_colour_pairs(large, args.pairs, seed)
    content = [model.blocks[schema.position(n)] for n in ("letter", "size", "font")]
    accuracy = probe_matrix(codes.numpy(), large.factors, model.blocks, seed)
    chance = np.array([1 / len(schema[n].values) for n in names])
    bg = schema.position("bg_color")
    centres = value_centres(
        codes[:, model.blocks[bg]].numpy(), large.factors[:, bg], len(schema["bg_color"].values)
    )
    base_rows = np.random.default_rng(seed).choice(len(large), size=args.pairs)
    region = np.stack([large.mask(int(r)) < 0.5 for r in base_rows])  # background pixels
    known = np.array([COLORS[v] for v in full.schema["bg_color"].values])
    found = mine_novel_colours(
        model, codes[base_rows], model.blocks[bg], centres, region, known, n=args.pairs, seed=seed,
        oracle=oracle, factors=large.factors[base_rows], protect=[schema.position("letter")],
    )  # fmt: skip
    return {
        "preservation": preservation,
        "preservation_mean": float(np.mean(list(preservation.values()))),
        "preservation_vs_reconstruction": vs_recon,
        "preservation_vs_reconstruction_mean": float(np.mean(list(vs_recon.values()))),
        "moved": {n: r["moved"] for n, r in rates.items()},
        "kept_by_attribute": {
            n: {names[j]: v for j, v in r["kept_by_attribute"].items()} for n, r in rates.items()
        },
        "controlled": controlled,
        "controlled_mean": float(np.mean(list(controlled.values()))),
        "monotonic_bg": monotonic_share(model, large, bg, "background", args.paths, seed),
        "monotonic_font_color": monotonic_share(
            model, large, schema.position("font_color"), "glyph", args.paths, seed
        ),
        "unseen_colour_mse": block_pair_mse(encode(model, a), encode(model, b), content, codes),
        "probe_accuracy": accuracy.tolist(),
        "disentanglement": block_disentanglement(accuracy, chance),
        "novel_colours": len(found.novel),
        "novel_colours_valid": len(found.novel_valid),
        "novel_valid_share": float(found.valid.mean()),
    }


def _cell(stats: dict) -> str:
    return "n/a (collapsed)" if stats["mean"] is None else f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/fonts_small.yaml")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000, help="GAE, beta-VAE and GSL-AE steps")
    parser.add_argument("--deae-steps", type=int, default=1200, help="DEAE fine-tuning steps from GSL-AE")
    parser.add_argument("--set", action="append", default=[], help="recipe override, e.g. train.lr=1e-3")
    parser.add_argument("--split", choices=("large", "small"), default="large", help="train and evaluate on")
    parser.add_argument("--runs", help="default: runs/benchmarks/train_quality[_small]")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--paths", type=int, default=60, help="interpolation paths per colour attribute")
    args = parser.parse_args()
    start = time.perf_counter()
    base = load_recipe(args.recipe)
    large = build_splits(base)[args.split]
    suffix = "_small" if args.split == "small" else ""  # shared with train_quality's run folders
    runs, name = args.runs or f"runs/benchmarks/train_quality{suffix}", f"controllability{suffix}"
    split_name = "D_S" if args.split == "small" else "D_L"
    full = build_dataset(base.data, base.source)
    oracle, oracle_accuracy = oracle_for(full)
    rows: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for seed in range(args.seeds):
        for variant in VARIANTS:
            if args.split == "small":
                model, seconds = train_on_small(args.recipe, runs, variant, seed, args.set)
            else:
                steps = args.deae_steps if variant == "deae" else args.steps
                model, seconds = train_on_large(args.recipe, runs, variant, seed, steps, args.set)
            row = evaluate(model, args, large, full, oracle, seed) | {"train_seconds": seconds}
            rows[variant].append(row)
            print(variant, seed, {k: v for k, v in row.items() if k != "probe_accuracy"}, flush=True)
            if seed == 0:
                grid, _ = explore("interpolate", model, large.schema, load_images(large), large.factors,
                                  attribute="bg_color", n=4, steps=8)  # fmt: skip
                save_png(RESULTS / f"{name}_{variant}.png", grid)

    keys = ("preservation_mean", "preservation_vs_reconstruction_mean", "controlled_mean", "monotonic_bg",
            "monotonic_font_color", "unseen_colour_mse", "novel_colours", "novel_colours_valid")  # fmt: skip
    summaries = {
        v: {k: summary([float(r[k]) for r in rs]) for k in keys}
        | {"disentanglement": summary([r["disentanglement"]["disentanglement"] for r in rs])}
        for v, rs in rows.items()
    }
    payload = {
        "benchmark": "controllability",
        "recipe": args.recipe,
        "overrides": args.set,
        "seeds": list(range(args.seeds)),
        "split": args.split,
        "runs_folder": runs,
        **(
            {
                "steps": args.steps,
                "deae_steps": args.deae_steps,
                "deae_warm_start": "from the same seed's GSL-AE",
            }
            if args.split == "large"
            else {
                "steps": load_recipe(args.recipe, args.set).train.steps,
                "deae_warm_start": "the recipe's GSL-AE phase",
            }
        ),
        "oracle_held_out_accuracy": oracle_accuracy,
        "summary": summaries,
        "runs": rows,
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    header = ("preservation", "preservation vs reconstruction", "controlled", "bg monotonic",
              "font colour monotonic", "unseen-colour MSE", "novel colours", "valid novel colours",
              "disentanglement")  # fmt: skip
    lines = [
        f"# Controllability on {base.name} {split_name} (32 px, {args.seeds} seeds)",
        "",
        "Mean ± std over seeds. Preservation: the oracle reads every other attribute of the "
        "interpolated images as the base's labels, or as the base's plain reconstruction. "
        "Controlled: the path also reaches the partner's value at t = 1 (a model that ignores the "
        "block preserves everything and controls nothing). Unseen-colour MSE: letter, size and font "
        "blocks, in units of each dimension's training spread (2 = as far apart as two random images).",
        "",
        "| model | " + " | ".join(header) + " |",
        "|---|" + "---|" * len(header),
    ]
    for v, s in summaries.items():
        cells = [s[k] for k in keys] + [s["disentanglement"]]
        lines.append(f"| {v} | " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", f"Wall time: {payload['wall_seconds'] / 60:.1f} min."]
    write_results(name, payload, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
