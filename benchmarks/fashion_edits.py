"""Colour edits on real garments: does an edit paint the requested colour and keep the garment?

The DEAE of recipes/fashion_bias.yaml, trained on D_B (by default at 0% bias-conflicting, where
every class owns one colour: the hardest case), edits the garment colour of every D_T image to a
random other palette colour (`repaint`: the colour block changed by the least amount that paints
it). Three ways to make the image, as `rebalance` makes them:
- decode: the edited code decoded (everything the decoder draws);
- residual: the source plus the decoder's change;
- repaint: the source's own pixels recoloured (coverage solved from its RGB and the palette).
A diagnostic row, exact, is the dataset's own rendering of each photograph in its target colour:
what the judge reads of a perfect edit. The attribute oracle (trained on the whole injected
dataset, 70,000 photographs, and cached)
reads each edit. Reported: colour read as requested, garment class kept (the oracle's class on
the edit equals its class on the source), background kept, and the class against the true label.

Draws docs/figures/fashion-edits.png (seed 0: one test garment per class, each way).

Usage: python -m benchmarks.fashion_edits [--seeds 3] [--share 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.colored_fashion import share_name
from benchmarks.common import environment, percent, summary, write_results
from deae_aug.data.build import build_dataset, build_splits
from deae_aug.data.dataset import from_float, load_images
from deae_aug.data.fonts import parse_color
from deae_aug.evaluate.oracle import oracle_for
from deae_aug.explore.latent import decode_edit, encode, repaint, repaint_edit
from deae_aug.recipes import load_recipe
from deae_aug.training.trainer import ensure_trained
from deae_aug.viz import image_grid

EDITS = ("decode", "residual", "repaint")
ROWS = (*EDITS, "exact")  # exact: a diagnostic, what the judge reads of a perfect edit
METRICS = ("colour_read", "class_kept", "background_kept", "class_correct")


def edited_images(model, images: torch.Tensor, k: int, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """uint8 images with attribute k's colour layer painted ``targets`` ((N, 3) in [-1, 1]), each way."""
    codes = encode(model, images)
    edited = repaint(model, codes, k, targets)
    out = {"repaint": from_float(repaint_edit(model, edited, codes, images))}
    for name, source in (("decode", None), ("residual", images)):
        out[name] = from_float(decode_edit(model, edited, codes, source))
    return out


def figure(images: torch.Tensor, made: dict, test, target: np.ndarray, path: Path, n: int = 10) -> None:
    """One D_T image per class and its edit each way: the picture of what each way keeps."""
    rows = [int(np.flatnonzero(test.factors[:, 0] == c)[0]) for c in range(n)]
    colours = test.schema["garment_color"].values
    tiles = [images[rows], *(made[e][rows] for e in EDITS)]
    grid = torch.cat(tiles).permute(0, 2, 3, 1).numpy()
    labels = ["source", *EDITS]
    columns = [f"to {colours[target[r]]}" for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(grid, n, labels, scale=3, column_labels=columns).save(path)


def run_seed(args: argparse.Namespace, seed: int, oracle) -> dict:
    recipe = load_recipe(
        args.recipe, [*args.set, f"seed={seed}", f"split.debias.conflict_fraction={args.share}"]
    )
    test = build_splits(recipe)["test"]
    folder = args.runs / share_name(args.share).replace("%", "pct") / f"seed{seed}" / "deae"
    model = ensure_trained(recipe, folder, device="cpu", progress=True).cpu().eval()
    schema, k = test.schema, test.schema.position("garment_color")
    palette = torch.tensor([parse_color(v) for v in schema["garment_color"].values]).float() / 127.5 - 1
    rng = np.random.default_rng(seed)
    own = test.factors[:, k]
    target = (own + rng.integers(1, len(palette), size=len(own))) % len(palette)  # any other colour
    images = load_images(test)
    with torch.no_grad():
        before = oracle.predict(images)
        made = edited_images(model, images, k, palette[target])
    exact = test.select(np.arange(len(test)))  # the dataset's own rendering in the target colour
    exact.factors = exact.factors.copy()
    exact.factors[:, k] = target
    made["exact"] = load_images(exact)
    if seed == 0:
        figure(images, made, test, target, args.figure)
    y, b = schema.position("garment"), schema.position("bg_color")
    out = {}
    for name, edits in made.items():
        read = oracle.predict(edits)
        out[name] = {
            "colour_read": float((read[:, k].numpy() == target).mean()),
            "class_kept": float((read[:, y] == before[:, y]).float().mean()),
            "background_kept": float((read[:, b] == before[:, b]).float().mean()),
            "class_correct": float((read[:, y].numpy() == test.factors[:, y]).mean()),
        }
        print(f"seed {seed} {name}: {out[name]}")
    out["source"] = {"class_correct": float((before[:, y].numpy() == test.factors[:, y]).mean())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=Path("recipes/fashion_bias.yaml"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--share", type=float, default=0.0, help="bias-conflicting share of D_B the DEAE saw")
    parser.add_argument("--set", action="append", default=[], help="recipe override KEY=VALUE")
    parser.add_argument("--runs", type=Path, default=Path("runs/benchmarks/colored_fashion"),
                        help="where benchmarks.colored_fashion trained its DEAEs (reused)")  # fmt: skip
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/fashion-edits.png"))
    args = parser.parse_args()
    start = time.perf_counter()
    recipe = load_recipe(args.recipe, args.set)
    oracle, oracle_accuracy = oracle_for(build_dataset(recipe.data, recipe.source))
    per_seed = [run_seed(args, seed, oracle) for seed in range(args.seeds)]
    results = {e: {m: summary([s[e][m] for s in per_seed]) for m in METRICS} for e in ROWS}
    source = summary([s["source"]["class_correct"] for s in per_seed])
    wall = time.perf_counter() - start
    lines = [
        f"# Garment colour edits (D_T, DEAE trained at {args.share * 100:g}% conflicting; "
        f"{args.seeds} seeds, %)",
        "",
    ]
    lines += ["| edit | " + " | ".join(m.replace("_", " ") for m in METRICS) + " |", "|---" * 5 + "|"]
    lines += [f"| {e} | " + " | ".join(percent(results[e][m]) for m in METRICS) + " |" for e in ROWS]
    lines += [
        "",
        f"Oracle held-out accuracy: {oracle_accuracy}; its class accuracy on unedited D_T: "
        f"{percent(source)}. Wall time {wall / 60:.0f} min. docs/experiments/colored_fashion.md.",
    ]
    payload = {
        "benchmark": "fashion_edits",
        "recipe": str(args.recipe),
        "overrides": args.set,
        "share": args.share,
        "seeds": list(range(args.seeds)),
        "oracle_accuracy": oracle_accuracy,
        "source_class_correct": source,
        "results": results,
        "per_seed": per_seed,
        "wall_seconds": wall,
        "environment": environment(),
    }
    print(write_results("fashion_edits", payload, "\n".join(lines) + "\n"))


if __name__ == "__main__":
    main()
