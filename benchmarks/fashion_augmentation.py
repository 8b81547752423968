"""Augmentation on Colored Fashion-MNIST (paper Table 1's shape, on real garment photographs).

recipes/fashion_small.yaml: D_S is 500 garments in 3 garment colours on 2 backgrounds; D_test
(2,000) has 3 other garment colours on 2 other backgrounds. Validation: up to 2,000 D_L images
whose garment and background colours D_S lacks, none of D_test's (`validation_split`). Every row
trains the same small CNN (`small_cnn`, --steps at batch 128) on D_S plus its augmentation:
- colour randomisation: per image, a random hue rotation, channel permutation and/or inversion;
  which of them is chosen on validation;
- TrivialAugment, RandAugment, AugMix: torchvision's v2 transforms, per image, default settings;
- DEAE: `deae-aug augment`'s images (augment.count, novel garment and background colours), made
  by repainting the source's pixels or by the decoder's drawing (decode); or `DEAEAugment` in the
  classifier's loop (online: fresh novel colours every batch, repainted), the colours uniform in
  RGB or (seen brightness) of any hue and saturation at a brightness each colour layer shows in
  D_S (DEAEAugment(brightness="seen")); chosen on validation;
- the chosen DEAE with the classic augmentation of best validation accuracy on top;
- DEAE to the named colours: garment and background repainted with colours of the attributes'
  value lists, which name D_test's colours too (a user who can name the colours to expect);
- a diagnostic ceiling, not a method: D_S plus its photographs drawn exactly (the dataset's own
  rendering) in random colours of the whole palette, D_test's included; and the same in colours
  uniform in RGB, as DEAE's novel colours are (DEAE's edits drawn exactly).
Seed i trains its own DEAE (train.seed=i) and classifiers, so a row's spread includes the
autoencoder's. Choices use the mean validation accuracy over seeds; D_test is read once per row.

Each seed's rows are saved under --runs as they finish and reused by a rerun of the same settings;
``--only-seed K`` runs seed K's rows alone and writes no results (a second process on a second
core), the run without it gathers them.

Usage: python -m benchmarks.fashion_augmentation [--seeds 3] [--steps 1500] [--only-seed K]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.classic_augment import COLOUR_ROWS, POLICIES, per_image
from benchmarks.common import environment, percent, summary, validation_split, write_results
from deae_aug.augment.synthesis import synthesize
from deae_aug.augment.transform import DEAEAugment, colour_layers
from deae_aug.data.build import build_splits
from deae_aug.data.dataset import from_float, load_images, to_float
from deae_aug.data.fonts import MIN_CONTRAST, parse_color
from deae_aug.evaluate.classifier import accuracy, train_classifier
from deae_aug.io import atomic_write_text
from deae_aug.models.autoencoder import recolour
from deae_aug.recipes import load_recipe
from deae_aug.training.trainer import ensure_trained

BATCH = 128
AUGMENTERS = {**COLOUR_ROWS, **POLICIES}  # the shift is colour alone: no geometric rows
DEAE_OUTPUTS = ("repaint", "decode")
SEEN = "DEAE online (repaint, seen brightness)"
NAMED = "DEAE to the named colours (repaint; uses D_test's colour names)"
CEILING = "D_S recoloured exactly"
UNIFORM_CEILING = "D_S recoloured exactly, uniform RGB"


def deae_images(recipe, small, folder: Path, output: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``augment.count`` images synthesised from D_S as ``deae-aug augment`` does, and their labels."""
    model = ensure_trained(recipe, folder, device="cpu", progress=True).cpu()
    a, label = recipe.augment, recipe.split.label
    attributes = a.attributes or [n for n in small.schema.names if n != label]
    paint = colour_layers(model, small.schema.names, attributes) if a.mode == "novel" else []
    s = synthesize(
        model, small, attributes, a.count, tuple(a.t_range), seed, progress=False, paint=paint,
        edits=tuple(a.edits), repaint=output == "repaint", residual=output == "residual",
    )  # fmt: skip
    col = small.schema.position(label)
    labels = torch.from_numpy(small.factors[s.records["source_index"].to_numpy(), col].copy())
    return s.images, labels


class Seed:
    """One seed's splits, images and classifier recipe; trains and scores rows."""

    def __init__(self, args: argparse.Namespace, seed: int) -> None:
        self.args, self.seed = args, seed
        self.recipe = load_recipe(args.recipe, [*args.set, f"train.seed={seed}"])
        splits = build_splits(self.recipe)
        self.small = splits["small"]
        val = validation_split(self.small, splits["large"], {"garment_color", "bg_color"})
        col = self.small.schema.position(self.recipe.split.label)
        self.n = len(self.small.schema[self.recipe.split.label].values)
        self.data = {
            name: (load_images(d), torch.from_numpy(d.factors[:, col].copy()))
            for name, d in (("small", self.small), ("val", val), ("test", splits["test"]))
        }
        self.synthetic: dict[str, tuple] = {}

    def fit(self, x: torch.Tensor, y: torch.Tensor, augment=None, extra_seconds: float = 0.0) -> dict:
        start = time.perf_counter()
        torch.manual_seed(self.seed)
        model = train_classifier(
            x, y, self.n, self.args.steps, BATCH, seed=self.seed, augment=augment, network="cnn"
        )
        out = {name: accuracy(model, *self.data[name]) for name in ("val", "test")}
        print(f"seed {self.seed}: val {out['val']:.3f}", flush=True)
        return out | {"seconds": time.perf_counter() - start + extra_seconds}

    def classic(self, transforms: list | None) -> dict:
        return self.fit(*self.data["small"], None if transforms is None else per_image(transforms))

    def deae(self, output: str, transforms: list | None = None) -> dict:
        if output not in self.synthetic:
            start = time.perf_counter()
            folder = self.args.runs / f"seed{self.seed}" / "deae"
            images, labels = deae_images(self.recipe, self.small, folder, output, self.seed)
            x, y = self.data["small"]
            self.synthetic[output] = (
                torch.cat([x, images]),
                torch.cat([y, labels]),
                time.perf_counter() - start,
            )
        x, y, seconds = self.synthetic[output]
        return self.fit(x, y, None if transforms is None else per_image(transforms), seconds)

    def deae_online(self, transforms: list | None = None, brightness: str = "any") -> dict:
        """DEAEAugment in the classifier's loop: every batch gets fresh novel colours, repainted on
        the images' own pixels (D_S only; no images written); ``brightness`` as DEAEAugment's."""
        start = time.perf_counter()
        model = ensure_trained(self.recipe, self.args.runs / f"seed{self.seed}" / "deae", device="cpu").cpu()
        x, y = self.data["small"]
        a, names = self.recipe.augment, self.small.schema.names
        attributes = a.attributes or [n for n in names if n != self.recipe.split.label]
        deae = DEAEAugment(
            model, attributes=attributes, mode="novel", edits=tuple(a.edits), bank=x, repaint=True,
            bank_factors=torch.from_numpy(self.small.factors), schema_names=names, seed=self.seed,
            brightness=brightness,
        )  # fmt: skip
        classic = None if transforms is None else per_image(transforms)

        def augment(batch: torch.Tensor) -> torch.Tensor:  # a fresh draw per image
            out = deae.augment_batch(batch)[0]
            return out if classic is None else classic(out)

        return self.fit(x, y, augment, time.perf_counter() - start)

    def ceiling(self) -> dict:
        """D_S plus augment.count of its photographs drawn exactly in random garment and background
        colours of the whole palette, D_test's included: what colour augmentation could reach."""
        rng = np.random.default_rng(self.seed)
        drawn = self.small.select(rng.integers(len(self.small), size=self.recipe.augment.count))
        drawn.factors = drawn.factors.copy()
        for name in ("garment_color", "bg_color"):
            col = drawn.schema.position(name)
            drawn.factors[:, col] = rng.integers(len(drawn.schema[name].values), size=len(drawn))
        x, y = self.data["small"]
        label = torch.from_numpy(drawn.factors[:, drawn.schema.position(self.recipe.split.label)].copy())
        return self.fit(torch.cat([x, load_images(drawn)]), torch.cat([y, label]))

    def uniform_ceiling(self) -> dict:
        """As `ceiling`, with garment and background colours uniform in RGB (at least MIN_CONTRAST
        apart), as DEAE's novel colours are, instead of the palette's: DEAE's edits drawn exactly."""
        rng = np.random.default_rng(self.seed)
        rows = rng.integers(len(self.small), size=self.recipe.augment.count)
        x, y = self.data["small"]
        names = ("garment_color", "bg_color")
        before = torch.stack([
            torch.tensor([parse_color(v) for v in self.small.schema[n].values]).float()[
                self.small.factors[rows, self.small.schema.position(n)]] for n in names
        ], 1)  # fmt: skip
        after = torch.from_numpy(rng.uniform(0, 255, size=(len(rows), 2, 3))).float()
        close = (after[:, 0] - after[:, 1]).norm(dim=1) < MIN_CONTRAST
        while close.any():
            after[close] = torch.from_numpy(rng.uniform(0, 255, size=(int(close.sum()), 2, 3))).float()
            close = (after[:, 0] - after[:, 1]).norm(dim=1) < MIN_CONTRAST
        drawn = recolour(to_float(x[rows]), before / 127.5 - 1, after / 127.5 - 1)
        return self.fit(torch.cat([x, from_float(drawn)]), torch.cat([y, y[rows]]))

    def deae_named(self, transforms: list | None = None) -> dict:
        """DEAE's repaint to named colours: each D_S photograph drawn again with garment and
        background colours taken from the attributes' value lists (the names the schema declares,
        D_test's among them), the source's colours read by the encoder."""
        model = ensure_trained(self.recipe, self.args.runs / f"seed{self.seed}" / "deae", device="cpu").cpu()
        start, rng = time.perf_counter(), np.random.default_rng(self.seed)
        rows = rng.integers(len(self.small), size=self.recipe.augment.count)
        x, y = self.data["small"]
        after = []
        for name in ("garment_color", "bg_color"):
            table = torch.tensor([parse_color(v) for v in self.small.schema[name].values]).float() / 127.5 - 1
            after.append(table[rng.integers(len(table), size=len(rows))])
        source = to_float(x[rows])
        with torch.no_grad():
            before = model.decoder.paint.palette(model.encode(source))
        drawn = from_float(recolour(source, before, torch.stack(after, 1)))
        augment = None if transforms is None else per_image(transforms)
        seconds = time.perf_counter() - start
        return self.fit(torch.cat([x, drawn]), torch.cat([y, y[rows]]), augment, extra_seconds=seconds)


def chosen(per_seed: list[dict], names: list[str]) -> str:
    """The name of highest mean validation accuracy over seeds."""
    return max(names, key=lambda k: np.mean([s[k]["val"] for s in per_seed]))


def combine(seed: Seed, output: str, transforms: list) -> dict:
    """DEAE variant ``output`` with the classic augmentation ``transforms`` on top."""
    if output.startswith("DEAE online"):
        return seed.deae_online(transforms, "seen" if output == SEEN else "any")
    return seed.deae(output.removeprefix("DEAE (").rstrip(")"), transforms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=Path("recipes/fashion_small.yaml"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1500, help="classifier steps at batch 128, every row")
    parser.add_argument("--set", action="append", default=[], help="recipe override KEY=VALUE")
    parser.add_argument("--runs", type=Path, default=Path("runs/benchmarks/fashion_augmentation"))
    parser.add_argument("--only-seed", type=int, help="run this seed's rows alone; no results written")
    args = parser.parse_args()
    start = time.perf_counter()
    seeds = [
        Seed(args, seed) for seed in ([args.only_seed] if args.only_seed is not None else range(args.seeds))
    ]
    settings = {"recipe": str(args.recipe), "set": args.set, "steps": args.steps}
    caches = [args.runs / f"seed{s.seed}" / f"rows_steps{args.steps}.json" for s in seeds]
    per_seed = []
    for cache in caches:
        saved = json.loads(cache.read_text()) if cache.exists() else {}
        per_seed.append(saved["rows"] if saved.get("settings") == settings else {})

    def each_seed(key: str, make) -> None:
        """Row ``key`` on every seed (``make(seed)``), unless saved by an earlier run; saved as done."""
        for s, rows, cache in zip(seeds, per_seed, caches, strict=True):
            if key not in rows:
                rows[key] = make(s)
                cache.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(cache, json.dumps({"settings": settings, "rows": rows}, indent=2) + "\n")

    each_seed("D_S", lambda s: s.classic(None))
    for key, transforms in AUGMENTERS.items():
        each_seed(key, lambda s, t=transforms: s.classic(t))
    colour = chosen(per_seed, list(COLOUR_ROWS))
    classic = chosen(per_seed, list(AUGMENTERS))
    for output in DEAE_OUTPUTS:
        each_seed(f"DEAE ({output})", lambda s, o=output: s.deae(o))
    each_seed("DEAE online (repaint)", lambda s: s.deae_online())
    each_seed(SEEN, lambda s: s.deae_online(brightness="seen"))
    each_seed(CEILING, lambda s: s.ceiling())
    each_seed(UNIFORM_CEILING, lambda s: s.uniform_ceiling())
    each_seed(NAMED, lambda s: s.deae_named())
    each_seed(f"{NAMED} + {classic}", lambda s: s.deae_named(AUGMENTERS[classic]))
    variants = [*(f"DEAE ({o})" for o in DEAE_OUTPUTS), "DEAE online (repaint)", SEEN]
    output = chosen(per_seed, variants)
    combined = f"{output} + {classic}"
    each_seed(combined, lambda s: combine(s, output, AUGMENTERS[classic]))
    if args.only_seed is not None:  # choices made on this seed alone; the gathering run adds any others
        return
    rows = {
        "D_S": "D_S",
        f"D_S + colour randomisation ({colour.removeprefix('colour: ')})": colour,
        **{f"D_S + {k}": k for k in POLICIES},
        **{f"D_S + {v}": v for v in variants},
        f"D_S + {output} + {classic.removeprefix('colour: ')}": combined,
        f"D_S + {NAMED}": NAMED,
        f"D_S + {NAMED} + {classic.removeprefix('colour: ')}": f"{NAMED} + {classic}",
        f"{CEILING} (diagnostic)": CEILING,
        f"{UNIFORM_CEILING} (diagnostic)": UNIFORM_CEILING,
    }
    results = {
        row: {m: summary([s[key][m] for s in per_seed]) for m in ("test", "val", "seconds")}
        for row, key in rows.items()
    }
    wall = time.perf_counter() - start
    trained = sum(row["seconds"] for s in per_seed for row in s.values()) / 60
    lines = [f"# Colored Fashion-MNIST augmentation (D_test accuracy, {args.seeds} seeds, %)", ""]
    lines += ["| training set | D_test | validation | s |", "|---|---|---|---|"]
    for row, stats in results.items():
        lines.append(
            f"| {row} | {percent(stats['test'])} | {percent(stats['val'])} | {stats['seconds']['mean']:.0f} |"
        )
    lines += [
        "",
        f"Small CNN, {args.steps} steps at batch {BATCH}; choices by mean validation accuracy (every "
        f"candidate in the JSON). The rows took {trained:.0f} min of training in all (a DEAE trained "
        "by this run is counted in the first DEAE row of its seed; one reused from --runs is not: about "
        "9 min each on one core); docs/experiments/colored_fashion.md.",
    ]
    payload = {
        "benchmark": "fashion_augmentation",
        "recipe": str(args.recipe),
        "overrides": args.set,
        "seeds": list(range(args.seeds)),
        "classifier": {"network": "cnn", "steps": args.steps, "batch": BATCH},
        "chosen": {"colour randomisation": colour, "classic": classic, "deae_output": output},
        "results": results,
        "per_seed": per_seed,
        "wall_seconds": wall,
        "training_minutes": trained,
        "environment": environment(),
    }
    print(write_results("fashion_augmentation", payload, "\n".join(lines) + "\n"))


if __name__ == "__main__":
    main()
