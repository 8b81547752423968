"""Paper Table 1: does DEAE augmentation of a small training set help a ResNet-18?

Splits of fonts_small (design.md 5): D_S (540 images), D_L (5,000), D_test (2,000, background
colours never seen in training). Every row trains ResNet-18 from scratch with the same recipe
(train_classifier: AdamW, OneCycle, fixed steps and batch), so rows differ only in their images.
DEAE and GSL-AE are trained once on D_S (the recipe's seed and steps) and reused; the seeds vary
the synthesis draws and the classifier. With ``--autoencoder-per-seed``, seed i also trains its own
DEAE and GSL-AE (``train.seed=i``), so a row's spread includes the autoencoder's, as a user who
trains one autoencoder sees it.

The synthetic images vary the recipe's ``augment.attributes`` (default: all but the label), as
``deae-aug augment`` does.

Classic rows (`benchmarks/classic_augment.py`), each "D_S + NAME" and "D_S + DEAE + NAME": colour
randomisation (hue rotation, channel permutation, inversion, combinations), TrivialAugment,
RandAugment, AugMix, RandomAffine, ElasticTransform, a fresh draw per image in the classifier's
loop. Which of them to report is chosen with ``--eval val`` (below), never on D_test.

The recipe names the shift: ``split.augmentation.held_out`` (fonts_small: background colours;
fonts_fontshift: fonts, with every other value D_S's). The table's last accuracy column reads the
test images whose only value D_S lacks is a held-out one.

The row "D_S + rendered edits" is the ceiling, a diagnostic a user cannot run: DEAE's very edits
(same sources, attributes, partners and t) drawn exactly by the Fonts renderer
(``FontsDataset.render_edit``). Each augmenter's "share of ceiling" is its gain over D_S divided
by the ceiling's. Every synthetic set is also read by the attribute oracle (trained on the whole
rendered dataset): how often it reads the source's label, and every attribute that was not edited.

``--scale`` enlarges every image bilinearly before ResNet-18 (its stem shrinks 32 px to 8x8).

The row "D_S + DEAE, oracle-filtered" is a diagnostic, not in the default rows: of 2 x --count
DEAE images it keeps the first --count whose letter the attribute oracle (trained on the whole
rendered dataset, which a user does not have) reads as the source's label. It asks how much of
DEAE's effect is label noise.

``--reuse FILE`` copies, seed by seed, the rows that involve no autoencoder (D_S, the ceiling,
TrivialAugment, D_L) from an earlier results JSON of the very same protocol (seeds, classifier,
split, synthetic count and attributes), instead of training them again: with fixed seeds they
come out identical (checked: D_S and the ceiling reproduced to the last digit). The oracle still
reads the ceiling's images afresh.

``--eval val`` scores every row on a validation split instead of D_test, for choosing synthesis
settings without looking at the test set: the D_L images whose background D_S lacks (green, pink,
chocolate, silver), the same kind of shift as D_test's, with none of its colours. The D_L row
is left out there (D_L contains those images).

Usage: python -m benchmarks.table1_augmentation [--seeds 3] [--steps 300] [--scale 1] [--count N]
       [--eval test|val] [--rows ...]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch

from benchmarks.classic_augment import CLASSIC, per_image
from benchmarks.common import environment, summary, validation_split, write_results
from deae_aug.augment.synthesis import plan_edits, planned_edits, synthesize
from deae_aug.augment.transform import colour_layers
from deae_aug.data.build import build_dataset
from deae_aug.data.dataset import AttributeDataset, load_images, to_float, to_tensor
from deae_aug.evaluate.classifier import accuracy, enlarge, train_classifier
from deae_aug.evaluate.oracle import oracle_for
from deae_aug.recipes import load_recipe
from deae_aug.training.run import training_split
from deae_aug.training.trainer import ensure_trained

CEILING = "D_S + rendered edits"  # diagnostic: the renderer draws every edit exactly, a user has no renderer
FILTERED = "D_S + DEAE, oracle-filtered"  # diagnostic: the oracle knows every rendered image, a user does not
ROWS = ("D_S", CEILING, "D_S + DEAE", "D_S + GSL-AE", *(f"D_S + {k}" for k in CLASSIC),
        *(f"D_S + DEAE + {k}" for k in CLASSIC), "D_L", FILTERED)  # fmt: skip
DEFAULT_ROWS = ("D_S", CEILING, "D_S + DEAE", "D_S + GSL-AE", "D_S + TrivialAugment",
                "D_S + DEAE + TrivialAugment", "D_L")  # fmt: skip
REUSABLE = ("D_S", CEILING, "D_L", *(f"D_S + {k}" for k in CLASSIC))  # rows no autoencoder takes part in
BREAKDOWNS = ("unedited_by_attribute", "misread_when_unedited", "unedited_by_t", "moved_read_as")
SYNTHESIS = ("synthetic_images", "synthetic_attributes", "synthesis")  # only the ceiling's images read these


def seen_but(small: AttributeDataset, test: AttributeDataset, free: set[str]) -> torch.Tensor:
    """Mask of test images whose every attribute outside ``free`` takes a value D_S has: there the
    held-out attribute (the background) is the only thing a D_S classifier has not seen, which is
    the shift that synthesis of in-between values can cover."""
    keep = torch.ones(len(test), dtype=torch.bool)
    for name in small.schema.names:
        if name not in free:
            col = small.schema.position(name)
            seen = torch.from_numpy(small.factors[:, col].copy()).unique()
            keep &= torch.isin(torch.from_numpy(test.factors[:, col].copy()), seen)
    return keep


def synthetic_images(
    model, small: AttributeDataset, attributes: list[str], count: int, recipe, seed: int, paint: list[str]
) -> tuple[torch.Tensor, pd.DataFrame]:
    """``count`` images synthesised from D_S as ``deae-aug augment`` does, and their edit records;
    ``model`` None draws the same edits with the renderer (the ceiling). ``paint``: the colours
    ``augment.mode: novel`` repaints."""
    t_range = (1.0, 1.0) if recipe.augment.mode == "swap" else tuple(recipe.augment.t_range)
    if model is None:
        if recipe.augment.mode == "udv":
            raise SystemExit("the ceiling row draws edits towards partners; augment.mode udv has none")
        plan = plan_edits(small, attributes, count, t_range, seed, paint, tuple(recipe.augment.edits))
        images = [
            to_tensor(small.render_edit(int(s), planned_edits(plan, i)), "uint8")
            for i, s in enumerate(plan["source_index"])
        ]
        return torch.stack(images), plan
    a = recipe.augment
    s = synthesize(model, small, attributes, count, t_range, seed, progress=False, residual=a.residual,
                   paint=paint, edits=tuple(a.edits), udv=a.mode == "udv")  # fmt: skip
    return s.images, s.records


def source_labels(small: AttributeDataset, records: pd.DataFrame, col: int) -> torch.Tensor:
    """The label of each synthetic image: its source's value in column ``col``."""
    return torch.from_numpy(small.factors[records["source_index"].to_numpy(), col].copy())


def t_bin(t: np.ndarray) -> np.ndarray:
    """Quarter of t each edit falls in (0 to 3 up to t = 1 included; 4, 5, ... past the partner)."""
    q = (t * 4).astype(int)
    return np.where(t <= 1, np.minimum(q, 3), q)


def fidelity(
    oracle, images: torch.Tensor, records: pd.DataFrame, small: AttributeDataset, label: str
) -> dict:
    """Shares of synthetic images in which the oracle reads the source's label, and every attribute
    that was not edited, as the source's values; the latter also per edited attribute and, for
    interpolated edits, per quarter of the largest t (where in-between values are hardest to draw).
    ``moved_read_as``: of the images whose block of attribute n moved a fraction t towards a
    partner, how often the oracle reads n as the source's value, the partner's, or another, per
    quarter of t: an in-between font that reads as neither end is a new one, or a broken one."""
    names = small.schema.names
    read = oracle.predict(to_float(images)).numpy()
    source = small.factors[records["source_index"].to_numpy()]
    edited = np.stack(
        [records[f"{n}_to"].to_numpy() != "" if f"{n}_to" in records else np.zeros(len(records), bool)
         for n in names], 1
    )  # fmt: skip
    same = (read == source) | edited
    kept = same.all(1)
    moved = [n for n in names if f"{n}_partner" in records]
    interpolated = np.stack([records[f"{n}_partner"].to_numpy() >= 0 for n in moved], 1)
    t = np.where(interpolated, np.stack([records[f"{n}_t"].to_numpy() for n in moved], 1), 0).max(1)
    quarter = t_bin(t)
    any_interpolated = interpolated.any(1)
    read_as = {}
    for j, n in enumerate(moved):
        k, rows = names.index(n), interpolated[:, j]
        target = np.full(len(records), -1)  # painted colours and udv walks have no partner's value
        target[rows] = [small.schema[n].index(v) for v in records[f"{n}_to"].to_numpy()[rows]]
        t_n = t_bin(records[f"{n}_t"].to_numpy())
        for q in np.unique(t_n[rows]):
            at = rows & (t_n == q)
            for end, hit in (("source", read[:, k] == source[:, k]), ("partner", read[:, k] == target)):
                read_as[f"{n} t {q / 4:.2f}-{(q + 1) / 4:.2f}: {end}"] = float(hit[at].mean())
    return {
        "label": float(same[:, small.schema.position(label)].mean()),
        "unedited": float(kept.mean()),
        "unedited_by_attribute": {
            n: float(kept[edited[:, k]].mean()) for k, n in enumerate(names) if edited[:, k].any()
        },
        "misread_when_unedited": {  # which attribute the losses are
            n: float((~same[:, k])[~edited[:, k]].mean())
            for k, n in enumerate(names)
            if (~edited[:, k]).any()
        },
        "unedited_by_t": {
            f"{q / 4:.2f}-{(q + 1) / 4:.2f}": float(kept[any_interpolated & (quarter == q)].mean())
            for q in np.unique(quarter[any_interpolated])
        },
        "moved_read_as": read_as,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/fonts_small.yaml")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300, help="ResNet-18 steps (batch 64) for every row")
    parser.add_argument("--scale", type=int, default=1, help="ResNet-18 input: images enlarged this much")
    parser.add_argument("--count", type=int, help="synthetic images per augmenter (default: augment.count)")
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=ROWS,
        default=list(DEFAULT_ROWS),
        metavar="ROW",
        help="rows to train (default: the Table 1 rows); classic augmenters: benchmarks/classic_augment.py",
    )
    parser.add_argument(
        "--set", action="append", default=[], help="recipe override, e.g. augment.attributes=[bg_color]"
    )
    parser.add_argument("--runs", default="runs", help="folder of the DEAE and GSL-AE runs")
    parser.add_argument("--name", default="table1_augmentation", help="results file name")
    parser.add_argument("--eval", choices=("test", "val"), default="test", help="score on D_test or D_val")
    parser.add_argument("--reuse", help="results JSON of the same protocol to copy rows without a model from")
    parser.add_argument(
        "--autoencoder-per-seed",
        action="store_true",
        help="seed i trains its own DEAE and GSL-AE (train.seed=i), so the spread includes the autoencoder's",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    recipe = load_recipe(args.recipe, args.set)
    args.count = args.count or recipe.augment.count
    label = recipe.split.label
    splits = {
        name: training_split(load_recipe(args.recipe, [*args.set, f"train.split={name}"]))
        for name in ("small", "large", "test")
    }
    shifted = set(recipe.split.augmentation.held_out)
    if args.eval == "val":
        if "D_L" in args.rows:
            raise SystemExit(
                "--eval val: leave out the D_L row (--rows ...); D_L contains the validation images"
            )
        splits["test"] = validation_split(splits["small"], splits["large"], shifted)
    small = splits["small"]
    col = small.schema.position(label)
    data = {
        name: (enlarge(load_images(ds), args.scale), torch.from_numpy(ds.factors[:, col].copy()))
        for name, ds in splits.items()
    }
    n_classes = len(small.schema[label].values)
    only_shift = seen_but(small, splits["test"], shifted | {label})
    attributes = recipe.augment.attributes or [n for n in small.schema.names if n != label]

    needed = [v for v, tag in (("deae", "DEAE"), ("gsl", "GSL-AE")) if any(tag in row for row in args.rows)]
    synthesised = needed or CEILING in args.rows  # the oracle reads synthetic images only
    oracle = oracle_for(build_dataset(recipe.data, recipe.source))[0] if synthesised else None
    if recipe.augment.mode == "novel" and CEILING in args.rows and not needed:
        raise SystemExit("augment.mode novel: the colour layers come from a DEAE or GSL-AE row; add one")
    own_seed = recipe.seed if recipe.train.seed is None else recipe.train.seed
    ae_seeds = list(range(args.seeds)) if args.autoencoder_per_seed else [own_seed]
    train_seconds: dict[str, list[float]] = {variant: [] for variant in needed}

    results = {row: {"accuracy": [], "only_shift": [], "seconds": []} for row in ROWS if row in args.rows}
    reused = reusable_rows(args, results, protocol(args, recipe.augment, attributes, splits, small))
    kept: dict[str, list[dict]] = {}  # per variant, per seed: what the oracle reads
    for seed in range(args.seeds):
        if seed == 0 or args.autoencoder_per_seed:
            models = autoencoders(args, recipe.name, needed, ae_seeds[seed], train_seconds)
            if CEILING in args.rows:
                models["rendered"] = None
            paint = []  # the same new colours for every model and the renderer: the plan ignores the model
            if recipe.augment.mode == "novel" and models:
                reference = next(m for m in models.values() if m is not None)
                paint = colour_layers(reference, small.schema.names, attributes)
        small_x, small_y = data["small"]
        synthetic = {}
        for variant, model in models.items():
            images, records = synthetic_images(model, small, attributes, args.count, recipe, seed, paint)
            kept.setdefault(variant, []).append(fidelity(oracle, images, records, small, label))
            labels = source_labels(small, records, col)
            synthetic[variant] = (
                torch.cat([small_x, enlarge(images, args.scale)]),
                torch.cat([small_y, labels]),
            )
            keeps = {key: kept[variant][-1][key] for key in ("label", "unedited")}
            print(f"seed {seed} {variant} images: oracle keeps {keeps}", flush=True)
        if FILTERED in args.rows:
            images, records = synthetic_images(
                models["deae"], small, attributes, 2 * args.count, recipe, seed, paint
            )
            labels = source_labels(small, records, col)
            keep = np.flatnonzero(oracle.predict(to_float(images)).numpy()[:, col] == labels.numpy())
            keep = keep[: args.count]
            synthetic["filtered"] = (
                torch.cat([small_x, enlarge(images[keep], args.scale)]),
                torch.cat([small_y, labels[keep]]),
            )
        sets = {  # a row's images (None: its augmenter was not trained) and online augmentation
            "D_S": (data["small"], None),
            CEILING: (synthetic.get("rendered"), None),
            "D_S + DEAE": (synthetic.get("deae"), None),
            "D_S + GSL-AE": (synthetic.get("gsl"), None),
            "D_L": (data["large"], None),
            FILTERED: (synthetic.get("filtered"), None),
            **{f"D_S + {k}": (data["small"], per_image(t)) for k, t in CLASSIC.items()},
            **{f"D_S + DEAE + {k}": (synthetic.get("deae"), per_image(t)) for k, t in CLASSIC.items()},
        }
        for row in results:
            if row in reused:
                for key, values in reused[row].items():
                    results[row][key].append(values["values"][seed])
                print(f"seed {seed} {row}: {results[row]['accuracy'][-1]:.4f} (reused)", flush=True)
                continue
            (x, y), augment = sets[row]
            tick = time.perf_counter()
            model = train_classifier(x, y, n_classes, steps=args.steps, seed=seed, augment=augment)
            acc = accuracy(model, *data["test"])
            results[row]["accuracy"].append(acc)
            test_x, test_y = data["test"]
            results[row]["only_shift"].append(accuracy(model, test_x[only_shift], test_y[only_shift]))
            results[row]["seconds"].append(time.perf_counter() - tick)
            print(f"seed {seed} {row}: {acc:.4f}", flush=True)

    share = {}
    if CEILING in results and "D_S" in results:
        base, top = (np.array(results[r]["accuracy"]) for r in ("D_S", CEILING))
        share = {row: summary(list((np.array(r["accuracy"]) - base) / (top - base)))
                 for row, r in results.items() if row != "D_S"}  # fmt: skip
    payload = {
        "benchmark": "table1_augmentation",
        **protocol(args, recipe.augment, attributes, splits, small),
        "overrides": args.set,
        "reused_rows": {"from": args.reuse, "rows": sorted(reused)} if reused else None,
        "autoencoder_seeds": ae_seeds,
        "augmenter_train_seconds": train_seconds,
        "oracle_keeps": {
            variant: {
                **{key: summary([f[key] for f in values]) for key in ("label", "unedited")},
                **{
                    key: {k: summary([f[key][k] for f in values]) for k in values[0][key]}
                    for key in BREAKDOWNS
                },
            }  # fmt: skip
            for variant, values in kept.items()
        },
        "held_out": sorted(shifted),
        "only_shift_test_images": int(only_shift.sum()),
        "rows": {row: {key: summary(values) for key, values in r.items()} for row, r in results.items()},
        "share_of_ceiling_gain": share,
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    write_results(args.name, payload, table(payload, args, splits))
    print(table(payload, args, splits))


def autoencoders(args: argparse.Namespace, name: str, needed: list[str], seed: int, seconds: dict) -> dict:
    """The DEAE and GSL-AE runs the rows need, trained with ``train.seed=seed`` on first use (one
    run folder per variant and seed); appends each one's training or loading time to ``seconds``."""
    per_seed, suffix = ([f"train.seed={seed}"], f"-seed{seed}") if args.autoencoder_per_seed else ([], "")
    models = {}
    for variant in needed:
        tick = time.perf_counter()
        recipe = load_recipe(args.recipe, [*args.set, f"model.variant={variant}", *per_seed])
        models[variant] = ensure_trained(recipe, f"{args.runs}/{name}-{variant}{suffix}", "cpu")
        seconds[variant].append(time.perf_counter() - tick)
    return models


def protocol(args: argparse.Namespace, augment, attributes: list[str], splits: dict, small) -> dict:
    """What a row's accuracy depends on besides its own images, and what the ceiling's images
    depend on (``--reuse`` compares these)."""
    return {
        "recipe": args.recipe,
        "seeds": list(range(args.seeds)),
        "classifier": {
            "model": "torchvision resnet18 (from scratch)",
            "steps": args.steps,
            "batch_size": 64,
            "optimizer": "AdamW lr 1e-3 wd 5e-4, OneCycle",
            "resolution": small.resolution * args.scale,
            "input_scale": args.scale,
        },
        "evaluated_on": "D_test" if args.eval == "test" else "D_val (D_L images with backgrounds D_S lacks)",
        "synthetic_images": args.count,
        "synthetic_attributes": attributes,
        "synthesis": {"mode": augment.mode, "t_range": list(augment.t_range), "edits": list(augment.edits)},
        "split_sizes": {name: len(ds) for name, ds in splits.items()},
    }


def reusable_rows(args: argparse.Namespace, results: dict, current: dict) -> dict:
    """Per reusable row of ``results``, its per-seed values in ``args.reuse`` (empty without it);
    refuses a file of another protocol. The synthesis settings only concern the ceiling: another
    plan of edits retrains the ceiling and still reuses the rows without synthetic images."""
    if not args.reuse:
        return {}
    with open(args.reuse, encoding="utf-8") as f:
        earlier = json.load(f)
    differ = [key for key, value in current.items() if earlier.get(key) != value]
    if set(differ) - set(SYNTHESIS):
        raise SystemExit(f"--reuse {args.reuse}: another protocol ({', '.join(differ)} differ)")
    rows = [row for row in results if row in REUSABLE and row in earlier["rows"]]
    if differ and CEILING in rows:
        print(f"--reuse: the ceiling is trained again ({', '.join(differ)} differ)", flush=True)
        rows.remove(CEILING)
    return {row: earlier["rows"][row] for row in rows}


def table(payload: dict, args: argparse.Namespace, splits: dict) -> str:
    """The Markdown report: one row per training set, then what the oracle reads in each synthetic set."""
    where = "test on" if args.eval == "test" else "validation (D_val), not D_test:"
    lines = [
        f"# Table 1: augmentation of D_S ({args.seeds} seeds, ResNet-18 at "
        f"{payload['classifier']['resolution']} px, {args.steps} steps of 64, "
        f"{where} {len(splits['test'])} images, {' and '.join(payload['held_out'])} unseen)\n",
        f"| training set | images | {args.eval} accuracy (mean ± std) | per seed | share of ceiling gain | "
        f"only the {' and '.join(payload['held_out'])} new ({payload['only_shift_test_images']} {args.eval} "
        "images) | s/run |",
        "|---|---|---|---|---|---|---|",
    ]
    seeds = payload["autoencoder_seeds"]
    if len(seeds) > 1:
        lines.insert(1, f"Seed i trains its own DEAE and GSL-AE (`train.seed` = i: {seeds}).\n")
    sizes = {"D_S": len(splits["small"]), "D_L": len(splits["large"])}
    for row, r in payload["rows"].items():
        synthetic = any(tag in row for tag in ("DEAE", "GSL", "rendered"))
        n = sizes.get(row.split(" + ")[0], 0) + (args.count if synthetic else 0)
        acc, per_seed = r["accuracy"], ", ".join(f"{a:.3f}" for a in r["accuracy"]["values"])
        gain = payload["share_of_ceiling_gain"].get(row)
        gain = f"{gain['mean']:.0%} ± {gain['std']:.0%}" if gain and row != "D_L" else ""
        lines.append(
            f"| {row} | {n} | {acc['mean']:.3f} ± {acc['std']:.3f} | {per_seed} | {gain} | "
            f"{r['only_shift']['mean']:.3f} ± {r['only_shift']['std']:.3f} | {r['seconds']['mean']:.0f} |"
        )
    lines.append(
        f"\nWall time {payload['wall_seconds'] / 60:.1f} min; torch {payload['environment']['torch']}.\n"
    )
    if not payload["oracle_keeps"]:  # no synthetic images
        return "\n".join(lines)
    names = {"rendered": "rendered edits", "deae": "DEAE", "gsl": "GSL-AE"}
    lines += ["", f"The oracle reading the {args.count} synthetic images of each seed:", "",
              "| images | source label kept | every unedited attribute kept |", "|---|---|---|"]  # fmt: skip
    for variant, k in payload["oracle_keeps"].items():
        cells = " | ".join(f"{k[key]['mean']:.1%} ± {k[key]['std']:.1%}" for key in ("label", "unedited"))
        lines.append(f"| {names[variant]} | {cells} |")
    breakdowns = (
        ("unedited_by_attribute", "Every unedited attribute kept, by edited attribute:"),
        ("unedited_by_t", "Every unedited attribute kept, by the largest t of interpolated edits:"),
        (
            "misread_when_unedited",
            "Which attribute the oracle misreads, among the images that did not edit it:",
        ),
    )
    for key, title in breakdowns:
        columns = list(next(iter(payload["oracle_keeps"].values()))[key])
        lines += ["", title, "",
                  "| images | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]  # fmt: skip
        for variant, k in payload["oracle_keeps"].items():
            cells = " | ".join(f"{k[key][c]['mean']:.1%}" for c in columns)
            lines.append(f"| {names[variant]} | {cells} |")
    lines += [
        "",
        "What the oracle reads a moved block as (interpolated edits, by t):",
        "",
        "| images | edit | source's value | partner's value | neither |",
        "|---|---|---|---|---|",
    ]
    for variant, k in payload["oracle_keeps"].items():
        for edit in dict.fromkeys(key.rsplit(": ", 1)[0] for key in k["moved_read_as"]):
            ends = [k["moved_read_as"][f"{edit}: {end}"]["mean"] for end in ("source", "partner")]
            cells = f"{ends[0]:.1%} | {ends[1]:.1%} | {1 - sum(ends):.1%}"
            lines.append(f"| {names[variant]} | {edit} | {cells} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
