"""Measured controllability (paper 3.1-3.3): GAE, beta-VAE, GSL-AE and DEAE side by side.

Per seed, every variant trains with the same recipe, so only the objective differs (the
recipe's colour pathway, zoom and heads included). ``--split small`` (the main job's models):
every variant on the 540-image D_S with the recipe's own schedule, DEAE including its GSL-AE
phase, seeds by ``train.seed`` on the same D_S, measured on D_S (or, ``--eval val``, on D_val, for
choosing settings such as the beta-VAE's beta). ``--split large``: on D_L; GAE and beta-VAE train
--steps, GSL-AE --steps and DEAE fine-tunes it for --deae-steps (the reference's warm start).
Runs are shared with benchmarks/train_quality.py (same folders, same overrides).

Metrics (deae_aug/evaluate/controllability.py, deae_aug/explore/novel.py):
- reconstruction L1 of the measured images (0-1 units);
- preservation: interpolate block k between two images that differ in k; the oracle must read
  every other attribute unchanged (mean over attributes and interior steps): as the base
  image's labels, and as the base's plain reconstruction (what the interpolation changed), also
  per step of the path; controlled: the path also ends on the partner's value of k;
- colour paths: share of background / font-colour paths whose region colour moves steadily, and
  the CIE Delta E of each step from the RGB blend of the path's ends (midway: t = 0.5);
- unseen colours (paper 3.2): pairs identical but for font and background colours never seen in
  training (random sRGB, Delta E >= 10 from every palette colour); MSE of the letter, size and
  font blocks in units of each dimension's training spread, and the share of their
  reconstructions whose letter, size and font the oracle reads as rendered;
- block disentanglement: logistic probes of every block for every attribute, DCI-style score;
- novel colours: distinct decoded background colours >= 10 Delta E from every training colour
  with the letter still read, from mixes of value centres and from walks along single and
  combined unit direction vectors (paper Fig. 7 b);
- a Fig. 5-style figure: the same sources' background, letter and font paths, one row per model.

Usage: python -m benchmarks.controllability [--split large|small] [--eval train|val] [--seeds 3]
       [--variants ...] [--runs DIR] [--name NAME] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import (
    RESULTS,
    environment,
    summary,
    train_on_large,
    train_on_small,
    validation_split,
    write_results,
)
from deae_aug.data.build import build_dataset, build_splits
from deae_aug.data.dataset import load_images, to_float
from deae_aug.data.fonts import COLORS, FontsRenderer, format_color
from deae_aug.evaluate.controllability import (
    blend_error,
    block_disentanglement,
    block_pair_mse,
    colour_monotonic,
    preservation_rate,
    probe_matrix,
    region_colour,
)
from deae_aug.evaluate.oracle import oracle_for
from deae_aug.evaluate.quality import swap_pairs
from deae_aug.explore.directions import block_scale, combine, unit_directions, value_centres
from deae_aug.explore.latent import decode, encode, interpolation_path
from deae_aug.explore.novel import delta_e, mine_novel_colours, novel_colours, walk_blocks
from deae_aug.io import save_png
from deae_aug.recipes import load_recipe
from deae_aug.training.run import Run
from deae_aug.training.samples import to_uint8
from deae_aug.viz import image_grid

VARIANTS = ("gae", "betavae", "gsl", "deae")


def unseen_colours(n: int, rng: np.random.Generator, min_delta_e: float = 10.0) -> np.ndarray:
    """(n, 3) random sRGB colours at least ``min_delta_e`` from every named palette colour."""
    palette = np.array(list(COLORS.values()))
    out: list[np.ndarray] = []
    while len(out) < n:
        c = rng.integers(0, 256, size=(4 * n, 3))
        out += list(c[delta_e(c, palette).min(1) >= min_delta_e])
    return np.stack(out[:n])


def unseen_colour_pairs(data, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Two uint8 batches: the same letter, size and font, each with its own unseen colours, and
    the rows of ``data`` whose letter, size and font they show."""
    rng = np.random.default_rng(seed)
    renderer = FontsRenderer(data.resolution)
    rows = rng.choice(len(data), size=n)
    fg, bg = unseen_colours(2 * n, rng).reshape(2, n, 3), unseen_colours(2 * n, rng).reshape(2, n, 3)
    batches = []
    for side in range(2):
        images = []
        for i, r in enumerate(rows):
            d = data.describe(int(r))
            fg_hex, bg_hex = format_color(fg[side, i]), format_color(bg[side, i])
            images.append(renderer.render(d["letter"], d["size"], fg_hex, bg_hex, d["font"]))
        batches.append(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous())
    return batches[0], batches[1], rows


def unseen_colour_preservation(model, oracle, data, images: torch.Tensor, rows: np.ndarray) -> dict:
    """Share of unseen-colour images whose reconstruction the oracle reads with the rendered
    letter, size and font (each, and all three)."""
    read = oracle.predict(decode(model, encode(model, images))).numpy()
    kept = {}
    for name in ("letter", "size", "font"):
        k = data.schema.position(name)
        kept[name] = read[:, k] == data.factors[rows, k]
    return {n: float(v.mean()) for n, v in kept.items()} | {
        "all": float(np.logical_and.reduce(list(kept.values())).mean())
    }


def colour_paths(model, data, k: int, region: str, pairs: int, seed: int) -> dict:
    """Block-k interpolation paths (7 steps) between images that differ in k: the share whose
    background (or glyph) colour moves steadily, and each step's Delta E from the RGB blend of
    the path's ends (paper Fig. 5: a midway code should be the midway colour)."""
    rng = np.random.default_rng(seed)
    rows = swap_pairs(data.factors, k, pairs, rng)
    images = load_images(data.select(rows.reshape(-1))).view(len(rows), 2, 3, data.resolution, -1)
    codes = encode(model, images.flatten(0, 1)).view(len(rows), 2, -1)
    colours = []
    for (a, _), (za, zb) in zip(rows, codes, strict=True):
        glyph = data.mask(int(a)) > 0.5
        path = to_uint8(decode(model, interpolation_path(za, zb, model.blocks[k], 7)))
        colours.append(region_colour(path, glyph if region == "glyph" else ~glyph))
    colours = np.stack(colours)  # (pairs, 7, 3)
    error = blend_error(colours)
    return {
        "monotonic": float(np.mean([colour_monotonic(c) for c in colours])),
        "midway_delta_e": float(error[:, 3].mean()),
        "midway_within_10": float((error[:, 3] <= 10).mean()),
        "delta_e_by_t": {
            f"{t:.2f}": float(e) for t, e in zip(np.linspace(0, 1, 7), error.mean(0), strict=True)
        },
    }


def udv_novel_colours(model, data, codes, full, oracle, n: int, seed: int, steps: int = 12) -> dict:
    """Paper Fig. 7 (b): from each of ``n`` images with background c, walk the background block
    along v_a, along v_b (single UDVs of two other training backgrounds) and along
    v_a + v_b - v_c (their combination, unit length), two inter-value distances far in ``steps``
    steps, and count the distinct new background colours each kind of walk finds with the letter
    still read by the oracle. Each kind decodes as many images."""
    schema = data.schema
    bg, letter = schema.position("bg_color"), schema.position("letter")
    block = model.blocks[bg]
    block_codes, values = codes[:, block].numpy(), data.factors[:, bg]
    udv = unit_directions(block_codes, values, len(schema["bg_color"].values), seed)
    present = np.unique(values)
    if len(present) < 3:
        raise SystemExit("UDV combinations need at least 3 background values in the evaluated split")
    reach = 2 * block_scale(block_codes, values)
    rng = np.random.default_rng(seed)
    bases = rng.choice(len(data), size=n)
    directions: dict[str, list[np.ndarray]] = {"single_a": [], "single_b": [], "combined": []}
    for r in bases:
        c = values[r]
        a, b = rng.choice(present[present != c], size=2, replace=False)
        directions["single_a"].append(udv[a])
        directions["single_b"].append(udv[b])
        directions["combined"].append(combine(udv, {int(a): 1.0, int(b): 1.0, int(c): -1.0}))
    region = np.stack([data.mask(int(r)) < 0.5 for r in bases])
    known = np.array([COLORS[v] for v in full.schema["bg_color"].values])
    found = {
        kind: novel_colours(
            model,
            codes[bases],
            block,
            walk_blocks(block_codes[bases], np.stack(d), reach, steps),
            np.repeat(np.arange(n), steps),
            region,
            known,
            oracle=oracle,
            factors=data.factors[bases],
            protect=[letter],
        )  # fmt: skip
        for kind, d in directions.items()
    }
    return {
        "single": float(np.mean([len(found[k].novel_valid) for k in ("single_a", "single_b")])),
        "combined": len(found["combined"].novel_valid),
        "letter_kept_single": float(np.mean([found[k].valid.mean() for k in ("single_a", "single_b")])),
        "letter_kept_combined": float(found["combined"].valid.mean()),
    }


def evaluate(model, args, data, full, oracle, seed: int) -> dict:
    schema = data.schema
    names = schema.names
    images = load_images(data)
    codes = encode(model, images)
    recon_l1 = float((decode(model, codes) - to_float(images)).abs().mean() / 2)  # in [0, 1] units
    rates = {n: preservation_rate(model, oracle, data, k, args.pairs, seed=seed) for k, n in enumerate(names)}
    preservation = {n: r["preserved"] for n, r in rates.items()}
    vs_recon = {n: r["preserved_vs_reconstruction"] for n, r in rates.items()}
    controlled = {n: r["controlled"] for n, r in rates.items()}
    a, b, unseen_rows = unseen_colour_pairs(data, args.pairs, seed)
    content = [model.blocks[schema.position(n)] for n in ("letter", "size", "font")]
    accuracy = probe_matrix(codes.numpy(), data.factors, model.blocks, seed)
    chance = np.array([1 / len(schema[n].values) for n in names])
    bg = schema.position("bg_color")
    centres = value_centres(
        codes[:, model.blocks[bg]].numpy(), data.factors[:, bg], len(schema["bg_color"].values)
    )
    base_rows = np.random.default_rng(seed).choice(len(data), size=args.pairs)
    region = np.stack([data.mask(int(r)) < 0.5 for r in base_rows])  # background pixels
    known = np.array([COLORS[v] for v in full.schema["bg_color"].values])
    found = mine_novel_colours(
        model, codes[base_rows], model.blocks[bg], centres, region, known, n=args.pairs, seed=seed,
        oracle=oracle, factors=data.factors[base_rows], protect=[schema.position("letter")],
    )  # fmt: skip
    paths = {
        "bg_color": colour_paths(model, data, bg, "background", args.paths, seed),
        "font_color": colour_paths(model, data, schema.position("font_color"), "glyph", args.paths, seed),
    }
    return {
        "reconstruction_l1": recon_l1,
        "preservation": preservation,
        "preservation_mean": float(np.mean(list(preservation.values()))),
        "preservation_vs_reconstruction": vs_recon,
        "preservation_vs_reconstruction_mean": float(np.mean(list(vs_recon.values()))),
        "moved": {n: r["moved"] for n, r in rates.items()},
        "kept_by_attribute": {
            n: {names[j]: v for j, v in r["kept_by_attribute"].items()} for n, r in rates.items()
        },
        "kept_by_t": {n: r["kept_by_t"] for n, r in rates.items()},
        "controlled": controlled,
        "controlled_mean": float(np.mean(list(controlled.values()))),
        "colour_paths": paths,
        "monotonic_bg": paths["bg_color"]["monotonic"],
        "monotonic_font_color": paths["font_color"]["monotonic"],
        "midway_delta_e_bg": paths["bg_color"]["midway_delta_e"],
        "midway_delta_e_font_color": paths["font_color"]["midway_delta_e"],
        "unseen_colour_mse": block_pair_mse(encode(model, a), encode(model, b), content, codes),
        "unseen_colour_preservation": unseen_colour_preservation(model, oracle, data, a, unseen_rows),
        "probe_accuracy": accuracy.tolist(),
        "disentanglement": block_disentanglement(accuracy, chance),
        "novel_colours": len(found.novel),
        "novel_colours_valid": len(found.novel_valid),
        "novel_valid_share": float(found.valid.mean()),
        "udv_novel": udv_novel_colours(model, data, codes, full, oracle, args.paths, seed),
    }


def finished(args, runs: str, variant: str, seed: int) -> bool:
    """Whether ``runs/seed<seed>/<variant>`` holds a run of all the recipe's steps."""
    run = Run(Path(runs) / f"seed{seed}" / variant)
    if args.split == "small":
        steps = load_recipe(args.recipe, args.set).train.steps
    else:
        steps = args.deae_steps if variant == "deae" else args.steps
    return run.trained and run.meta()["step"] >= steps


def _cell(stats: dict) -> str:
    return "n/a (collapsed)" if stats["mean"] is None else f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def path_figure(models: dict, data, seed: int, steps: int = 8):
    """Paper Fig. 5: the same source interpolated towards the same partner, one row per model;
    its background, letter and font paths. Each row: source, path, partner."""
    rng = np.random.default_rng(seed)
    images = load_images(data)
    tiles, labels = [], []
    for name in ("bg_color", "letter", "font"):
        k = data.schema.position(name)
        (a, b), = swap_pairs(data.factors, k, 1, rng)  # fmt: skip
        for variant, model in models.items():
            za, zb = encode(model, images[[a, b]])
            path = to_uint8(decode(model, interpolation_path(za, zb, model.blocks[k], steps)))
            tiles += [images[a].permute(1, 2, 0).numpy(), *path, images[b].permute(1, 2, 0).numpy()]
            labels.append(f"{variant}: {name}")
    return image_grid(tiles, steps + 2, row_labels=labels, scale=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/fonts_small.yaml")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000, help="GAE, beta-VAE and GSL-AE steps")
    parser.add_argument("--deae-steps", type=int, default=1200, help="DEAE fine-tuning steps from GSL-AE")
    parser.add_argument("--set", action="append", default=[], help="recipe override, e.g. train.lr=1e-3")
    parser.add_argument("--split", choices=("large", "small"), default="large", help="train and evaluate on")
    parser.add_argument(
        "--eval", choices=("train", "val"), default="train",
        help="measure on the training split, or (with --split small) on D_val: for choosing settings",
    )  # fmt: skip
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--runs", help="default: runs/benchmarks/train_quality[_small]")
    parser.add_argument("--name", help="results file name (default: controllability[_small])")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--paths", type=int, default=60, help="interpolation paths per colour attribute")
    parser.add_argument(
        "--no-train", action="store_true",
        help="measure finished runs only, skipping seeds a variant has not trained (the table counts them)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.eval == "val" and args.split != "small":
        raise SystemExit("--eval val needs --split small: D_val is D_L images with backgrounds D_S lacks")
    start = time.perf_counter()
    base = load_recipe(args.recipe, args.set)
    splits = build_splits(base)
    data = splits[args.split]
    if args.eval == "val":
        data = validation_split(splits["small"], splits["large"], set(base.split.augmentation.held_out))
    suffix = "_small" if args.split == "small" else ""  # shared with train_quality's run folders
    runs = args.runs or f"runs/benchmarks/train_quality{suffix}"
    name = args.name or f"controllability{suffix}"
    split_name = {"large": "D_L", "small": "D_S"}[args.split] + (
        ", measured on D_val" if args.eval == "val" else ""
    )
    full = build_dataset(base.data, base.source)
    oracle, oracle_accuracy = oracle_for(full)
    rows: dict[str, list[dict]] = {v: [] for v in args.variants}
    first: dict = {}
    for seed in range(args.seeds):
        for variant in args.variants:
            if args.no_train and not finished(args, runs, variant, seed):
                print(f"{variant} seed {seed}: no finished run, skipped (--no-train)", flush=True)
                continue
            if args.split == "small":
                model, seconds = train_on_small(args.recipe, runs, variant, seed, args.set)
            else:
                steps = args.deae_steps if variant == "deae" else args.steps
                model, seconds = train_on_large(args.recipe, runs, variant, seed, steps, args.set)
            row = evaluate(model, args, data, full, oracle, seed) | {"train_seconds": seconds}
            rows[variant].append(row)
            print(variant, seed, {k: row[k] for k in KEYS}, flush=True)
            if seed == 0:
                first[variant] = model
    save_png(RESULTS / f"{name}_paths.png", path_figure(first, data, seed=0))

    summaries = {
        v: {k: summary([float(r[k]) for r in rs]) for k in KEYS}
        | {
            "disentanglement": summary([r["disentanglement"]["disentanglement"] for r in rs]),
            "unseen_colour_preservation": summary([r["unseen_colour_preservation"]["all"] for r in rs]),
            "udv_single": summary([r["udv_novel"]["single"] for r in rs]),
            "udv_combined": summary([float(r["udv_novel"]["combined"]) for r in rs]),
            "midway_within_10_bg": summary([r["colour_paths"]["bg_color"]["midway_within_10"] for r in rs]),
        }
        for v, rs in rows.items()
    }
    payload = {
        "benchmark": "controllability",
        "recipe": args.recipe,
        "overrides": args.set,
        "seeds": list(range(args.seeds)),
        "seeds_per_model": {v: len(rs) for v, rs in rows.items()},
        "split": args.split,
        "evaluated_on": split_name,
        "runs_folder": runs,
        **(
            {
                "steps": args.steps,
                "deae_steps": args.deae_steps,
                "deae_warm_start": "from the same seed's GSL-AE",
            }
            if args.split == "large"
            else {
                "steps": base.train.steps,
                "deae_warm_start": "the recipe's GSL-AE phase",
                "seeding": "train.seed: every seed trains on the recipe's own D_S",
            }
        ),
        "oracle_held_out_accuracy": oracle_accuracy,
        "summary": summaries,
        "runs": rows,
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    columns = {
        "reconstruction L1": "reconstruction_l1",
        "preservation": "preservation_mean",
        "preservation vs reconstruction": "preservation_vs_reconstruction_mean",
        "controlled": "controlled_mean",
        "bg monotonic": "monotonic_bg",
        "midway bg ΔE to the RGB blend": "midway_delta_e_bg",
        "midway font colour ΔE": "midway_delta_e_font_color",
        "unseen-colour MSE": "unseen_colour_mse",
        "unseen-colour letter, size and font kept": "unseen_colour_preservation",
        "valid novel colours (centre mixes)": "novel_colours_valid",
        "valid novel colours, single UDV walk": "udv_single",
        "valid novel colours, combined UDV walk": "udv_combined",
        "disentanglement": "disentanglement",
    }
    lines = [
        f"# Controllability on {base.name} {split_name} (32 px, {args.seeds} seeds)",
        "",
        "Mean ± std over seeds. Preservation: the oracle reads every other attribute of the "
        "interpolated images as the base's labels, or as the base's plain reconstruction. "
        "Controlled: the path also reaches the partner's value at t = 1 (a model that ignores the "
        "block preserves everything and controls nothing). Midway ΔE: CIE76 distance of the t = 0.5 "
        "decode's colour from the RGB blend of the path's ends. Unseen-colour MSE: letter, size and "
        "font blocks, in units of each dimension's training spread (2 = as far apart as two random "
        "images). UDV walks (paper Fig. 7 b): distinct new background colours with the letter kept, "
        f"from {args.paths} images per kind of walk. Paths figure: `{name}_paths.png`.",
        "",
        "| model | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for v, s in summaries.items():
        lines.append(f"| {v} | " + " | ".join(_cell(s[key]) for key in columns.values()) + " |")
    seeds = {v: len(rs) for v, rs in rows.items()}
    if len(set(seeds.values())) > 1:
        lines += ["", "Seeds per model: " + ", ".join(f"{v} {n}" for v, n in seeds.items()) + "."]
    lines += ["", f"Wall time: {payload['wall_seconds'] / 60:.1f} min."]
    write_results(name, payload, "\n".join(lines) + "\n")


KEYS = ("reconstruction_l1", "preservation_mean", "preservation_vs_reconstruction_mean", "controlled_mean",
        "monotonic_bg", "monotonic_font_color", "midway_delta_e_bg", "midway_delta_e_font_color",
        "unseen_colour_mse", "novel_colours", "novel_colours_valid")  # fmt: skip


if __name__ == "__main__":
    main()
