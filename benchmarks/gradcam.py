"""Paper Fig. 8 as a number: where do the biased, oracle and debiased classifiers look?

Loads the ResNet-18 classifiers that benchmarks/table2_debias.py saved for one bias setting
(default 0%: G1 letters never leave their background), computes captum Grad-CAM maps on D_T for
each true letter (``--target predicted``: each predicted letter, the class Grad-CAM
conventionally explains), and reports the glyph-focus ratio: the share of positive attribution
inside the rendered glyph mask, averaged over D_T. The classifiers see the 32-px images enlarged
--scale times, as table2_debias trains them (default 2: 64 px), and the maps come from the
deepest stage still 8x8 (``gradcam_layer``: layer2 at 64 px, layer1 at 32 px), upsampled
bilinearly. The ratio is also broken down by bias group (G1: letters on one background in
D_B, ...). Classifiers missing from --runs are trained here with table2_debias's recipe.

``--dilated`` trains the classifiers as `resnet18_classifier(dilated=True)`: layer3 and layer4
keep layer2's 8x8 map at 64 px, so Grad-CAM can read the deep stages, where it was designed to
be read; both are reported (``--layers``).

The same question without a saliency map: **background sensitivity**. Each D_T image is rendered
again on every background, all else equal, and each classifier (the two latent debiasers
included, refitted on D_B from the saved DEAE) predicts all of them. A classifier blind to the
background changes no prediction.

Usage: python -m benchmarks.gradcam [--setting 0pct] [--seeds 3] [--scale 2] [--models erm oracle] [--dilated]
       [--target true|predicted]
Writes benchmarks/results/gradcam_<input px>px[_dilated][_predicted].{json,md,png}.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import RESULTS, environment, summary, write_results
from benchmarks.table2_debias import trained_resnet
from deae_aug.data.build import build_dataset, build_splits
from deae_aug.data.dataset import AttributeDataset, load_images
from deae_aug.debias.latent import Debiaser
from deae_aug.debias.report import conflicting_mask
from deae_aug.evaluate.classifier import enlarge, predict_proba
from deae_aug.evaluate.fairness import bias_sensitivity
from deae_aug.evaluate.gradcam import glyph_focus, gradcam_layer, gradcam_maps, overlay
from deae_aug.io import save_png
from deae_aug.recipes import load_recipe
from deae_aug.training.run import load_model
from deae_aug.viz import image_grid

DILATE = 2  # px at 32 px (times --scale): half a layer1 cell, the blur of its bilinear upsampling
MODELS = {
    "erm": "ERM (D_B)",
    "oracle": "Oracle (D_UB)",
    "rebalance": "DEAE rebalance",
    "rebalance_residual": "DEAE rebalance, residual",
    "groupdro": "GroupDRO",
}


LATENT = ("DEAE latent", "DEAE latent + counterfactuals")  # 0 and debias.counterfactuals copies


def on_every_background(test: AttributeDataset, full: AttributeDataset, bias: str) -> torch.Tensor:
    """(N * V, 3, H, W): each test image rendered on each of the V backgrounds, image-major."""
    index = {tuple(f): i for i, f in enumerate(full.factors)}
    col, n_values = test.schema.position(bias), len(test.schema[bias].values)
    variants = np.repeat(test.factors, n_values, axis=0)
    variants[:, col] = np.tile(np.arange(n_values), len(test))
    return load_images(full.select(np.array([index[tuple(f)] for f in variants])))


def mean_std(stats: dict) -> str:
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="recipes/fonts_bias.yaml")
    parser.add_argument("--runs", type=Path, default=Path("runs/benchmarks/table2"))
    parser.add_argument("--setting", default="0pct", help="folder under --runs: 0pct, 1pct or 5pct")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--columns", type=int, default=8, help="test images in the figure")
    parser.add_argument("--scale", type=int, default=2, help="classifiers see the images enlarged this much")
    parser.add_argument("--steps", type=int, help="ResNet-18 steps (default: debias.classifier_steps)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--dilated", action="store_true", help="ResNet-18 with dilated layer3 and layer4")
    parser.add_argument(
        "--layers", nargs="+", help="stages to read (default: the deepest 8x8 one; dilated: layer3 layer4)"
    )
    parser.add_argument(
        "--target", choices=("true", "predicted"), default="true", help="the letter each map explains"
    )
    parser.add_argument("--name", help="results file name (default: gradcam_<px>px[_dilated][_predicted])")
    args = parser.parse_args()
    base = load_recipe(args.recipe)  # the recipe before per-seed overrides
    args.steps = args.steps or base.debias.classifier_steps
    start = time.perf_counter()
    fraction = float(args.setting.removesuffix("pct")) / 100
    models = {name: MODELS[name] for name in args.models}
    px = base.data.render_resolution * args.scale  # what the classifiers see
    suffix = ("_dilated" if args.dilated else "") + ("_predicted" if args.target == "predicted" else "")
    result_name = args.name or f"gradcam_{px}px{suffix}"
    dilate = DILATE * args.scale
    layers = args.layers or (["layer3", "layer4"] if args.dilated else [gradcam_layer(px)])
    # one table row per (classifier, stage): "ERM (D_B)" or, with several stages, "ERM (D_B), layer3"
    maps_of = {
        (n, layer): label if len(layers) == 1 else f"{label}, {layer}"
        for n, label in models.items()
        for layer in layers
    }
    focus: dict[str, list[float]] = {row: [] for row in maps_of.values()}
    focus_near: dict[str, list[float]] = {row: [] for row in maps_of.values()}
    focus_conflicting: dict[str, list[float]] = {row: [] for row in maps_of.values()}
    empty: dict[str, list[float]] = {row: [] for row in maps_of.values()}  # maps with no positive attribution
    groups = {  # "G1 (A B C, 1 background)": the group's letters
        f"G{i + 1} ({' '.join(g.labels)}, {n} background{'s' * (n > 1)})": g.labels
        for i, g in enumerate(base.split.debias.groups)
        for n in [g.n_bias_values]
    }
    focus_group = {row: {g: [] for g in groups} for row in maps_of.values()}  # row -> group -> per seed
    # debias.mode both: the counterfactual latent debiaser averaged with the recipe's rebalance row
    paired = "rebalance_residual" if base.debias.residual else "rebalance"
    both = f"DEAE both (latent + counterfactuals and {MODELS[paired].removeprefix('DEAE ')}, averaged)"
    reported = [*models.values(), *LATENT, *([both] if paired in models else [])]
    sensitivity: dict[str, list[dict]] = {name: [] for name in reported}
    for seed in range(args.seeds):
        folder = args.runs / args.setting / f"seed{seed}"
        recipe = load_recipe(args.recipe, [f"seed={seed}", f"split.debias.conflict_fraction={fraction}"])
        splits = build_splits(recipe)
        test = splits["test"]
        label_col = test.schema.position(recipe.split.label)
        images = enlarge(load_images(test), args.scale)
        labels = torch.from_numpy(test.factors[:, label_col].copy())
        masks = np.stack([test.mask(i) for i in range(len(test))])
        masks = masks.repeat(args.scale, axis=1).repeat(args.scale, axis=2)
        conflicting = conflicting_mask(recipe, test.factors, test.schema)
        letters = np.array(test.schema[recipe.split.label].values)[labels.numpy()]
        bias = recipe.split.debias.bias
        n_bias = len(test.schema[bias].values)
        variants = on_every_background(test, build_dataset(recipe.data, recipe.source), bias)
        enlarged = enlarge(variants, args.scale)

        rows = np.flatnonzero(conflicting)  # one bias-conflicting image per letter for the figure
        shown = rows[np.unique(labels[rows].numpy(), return_index=True)[1]][: args.columns]
        tiles = [images[i].permute(1, 2, 0).numpy() for i in shown]
        proba: dict[str, np.ndarray] = {}  # on every background: ResNet rows by name, latent rows by row
        for name in models:
            model = trained_resnet(
                name, recipe, splits, folder, args.steps, seed, args.scale, dilated=args.dilated
            )[0]
            targets = labels if args.target == "true" else predict_proba(model, images).argmax(1)
            for layer in layers:
                row = maps_of[name, layer]
                maps = gradcam_maps(model, images, targets, layer)
                ratio = glyph_focus(maps, masks)
                focus[row].append(float(np.nanmean(ratio)))
                for group, members in groups.items():
                    focus_group[row][group].append(float(np.nanmean(ratio[np.isin(letters, members)])))
                focus_conflicting[row].append(float(np.nanmean(ratio[conflicting])))
                focus_near[row].append(float(np.nanmean(glyph_focus(maps, masks, dilate=dilate))))
                empty[row].append(float(np.isnan(ratio).mean()))
                print(f"seed {seed} {row}: glyph focus {focus[row][-1]:.3f}", flush=True)
                if seed == 0:
                    tiles += [overlay(images[i].permute(1, 2, 0).numpy(), maps[i].numpy()) for i in shown]
            proba[name] = predict_proba(model, enlarged).numpy()
            predicted = proba[name].argmax(1).reshape(-1, n_bias)
            sensitivity[models[name]].append(bias_sensitivity(predicted, labels.numpy()))
            print(f"seed {seed} {name}:", sensitivity[models[name]][-1], flush=True)
        biased = splits["biased"]
        deae = load_model(folder / "deae")[0].eval()  # as table2_debias saved it; reads native images
        for copies, row in zip((0, recipe.debias.counterfactuals), LATENT, strict=True):
            debiaser = Debiaser(deae, test.schema.names, recipe.split.label, [bias], recipe.debias.classifier,
                                seed, copies)  # fmt: skip
            debiaser.fit(load_images(biased), biased.factors[:, label_col])
            proba[row] = debiaser.predict_proba(variants)  # every letter is in D_B: columns = classes
            predicted = proba[row].argmax(1).reshape(-1, n_bias)
            sensitivity[row].append(bias_sensitivity(predicted, labels.numpy()))
            print(f"seed {seed} {row}:", sensitivity[row][-1], flush=True)
        if both in sensitivity:  # `deae-aug debias --mode both`: the two classifiers averaged
            averaged = (proba[LATENT[1]] + proba[paired]) / 2
            sensitivity[both].append(bias_sensitivity(averaged.argmax(1).reshape(-1, n_bias), labels.numpy()))
            print(f"seed {seed} {both}:", sensitivity[both][-1], flush=True)
        if seed == 0:
            zoom = 3 if args.scale == 1 else 2
            grid = image_grid(tiles, len(shown), ["D_T image", *maps_of.values()], scale=zoom)
            save_png(RESULTS / f"{result_name}.png", grid)
    glyph_area = float((masks > 0.5).mean())
    near_area = float(np.nanmean(glyph_focus(torch.ones(masks.shape), masks, dilate=dilate)))
    payload = {
        "benchmark": "gradcam",
        "setting": args.setting,
        "seeds": list(range(args.seeds)),
        "resolution": px,
        "rendered_resolution": test.resolution,
        "enlarged": f"{args.scale}x, bilinear (glyph masks: nearest)",
        "resnet_steps": args.steps,
        "resnet": "dilated layer3 and layer4 (output stride 8)" if args.dilated else "torchvision resnet18",
        "layers": layers,
        "method": "captum LayerGradCam, relu_attributions=True, bilinear upsampling",
        "target": f"{args.target} letter",
        "glyph_area_share": glyph_area,
        "glyph_focus": {row: summary(v) for row, v in focus.items()},
        "glyph_dilation_px": dilate,
        "glyph_dilated_area_share": near_area,
        "glyph_focus_dilated": {row: summary(v) for row, v in focus_near.items()},
        "glyph_focus_bias_conflicting": {row: summary(v) for row, v in focus_conflicting.items()},
        "glyph_focus_by_group": {
            row: {g: summary(v) for g, v in by.items()} for row, by in focus_group.items()
        },
        "empty_maps": {row: summary(v) for row, v in empty.items()},
        "figure": f"{result_name}.png",
        "background_sensitivity": {
            row: {k: summary([r[k] for r in runs]) for k in runs[0]} for row, runs in sensitivity.items()
        },
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    lines = [
        f"# Grad-CAM glyph focus ({Path(args.recipe).stem}, setting {args.setting}, {args.seeds} seeds, "
        f"{payload['resolution']} px, {' and '.join(layers)}{', dilated ResNet-18' if args.dilated else ''})",
        "",
        f"Classifiers: ResNet-18{' with dilated layer3 and layer4' if args.dilated else ''}, "
        f"{args.steps} steps, on the {test.resolution} px images"
        + (
            "."
            if args.scale == 1
            else f" enlarged {args.scale}x (bilinear) to give 8x8 maps at {' and '.join(layers)}."
        ),
        "",
        f"Share of positive Grad-CAM attribution for the {args.target} letter inside the glyph mask, "
        "mean ± std over seeds. "
        f"Glyph pixels are {glyph_area * 100:.1f}% of an image, {near_area * 100:.1f}% with the glyph "
        f"grown by {dilate} px (a map blind to the glyph scores about those). Empty: share of images "
        "whose map has no positive attribution at all; the ratios average the other images only.",
        "",
        f"| classifier | on the glyph | bias-conflicting images | within {dilate} px of the glyph | empty |",
        "|---|---|---|---|---|",
    ]
    for row in maps_of.values():
        cells = [
            summary(focus[row]),
            summary(focus_conflicting[row]),
            summary(focus_near[row]),
            summary(empty[row]),
        ]
        lines.append(f"| {row} | " + " | ".join(map(mean_std, cells)) + " |")
    lines += [
        "",
        "The same ratio per bias group of D_T (the letters a group holds, and on how many "
        "backgrounds D_B shows each):",
        "",
        "| classifier | " + " | ".join(groups) + " |",
        "|---" * (len(groups) + 1) + "|",
    ]
    for row, by in payload["glyph_focus_by_group"].items():
        lines.append(f"| {row} | " + " | ".join(map(mean_std, by.values())) + " |")
    lines += [
        "",
        f"![Grad-CAM]({result_name}.png)",
        "",
        f"Background sensitivity: every D_T image rendered on all {n_bias} backgrounds, all else equal. "
        "Changed: share of images whose prediction depends on the background (0 = blind to it). "
        "Correct on all: share classified correctly on every background.",
        "",
        "| classifier | prediction changes with the background | agreement across backgrounds "
        "| correct on all |",
        "|---|---|---|---|",
    ]
    for row, stats in payload["background_sensitivity"].items():
        cells = [stats[k] for k in ("changed", "agreement", "correct_on_all")]
        lines.append(f"| {row} | " + " | ".join(map(mean_std, cells)) + " |")
    lines += ["", f"Wall time: {payload['wall_seconds']:.0f} s."]
    write_results(result_name, payload, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
