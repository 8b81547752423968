"""The ``deae-aug`` command line. User mistakes print one line and exit with status 2."""

from __future__ import annotations

import functools
import itertools
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from deae_aug.errors import UserError


def user_errors(fn: Callable) -> Callable:
    """Turn a UserError into 'error: ...' on stderr and exit status 2, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)

    return wrapper


recipe_option = click.option(
    "--recipe",
    "recipe_path",
    required=True,
    type=click.Path(path_type=Path),
    help="YAML recipe: a file, or a shipped recipe by name (deae-aug recipes), e.g. fonts_small.yaml.",
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a recipe key, e.g. --set data.resolution=64 (repeatable).",
)


class OneLineErrors(click.Group):
    """Click's own usage errors (a bad option value, a missing option, an unknown command) print
    one line and exit with status 2, like every other user mistake."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: ANN001
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:  # a bare group: its help is the answer
            click.echo(e.ctx.get_help(), err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            ctx = getattr(e, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            click.echo(f"error: {e.format_message()}{hint}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=OneLineErrors)
@click.version_option(package_name="deae-aug")
def main() -> None:
    """deae-aug: attribute-controlled augmentation and debiasing with DEAE."""


@main.group()
def data() -> None:
    """Render and inspect attribute-labelled datasets."""


@data.command("render")
@recipe_option
@set_option
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder.")
@user_errors
def render(recipe_path: Path, overrides: tuple[str, ...], out: Path, overwrite: bool) -> None:
    """Write a recipe's splits as PNG files plus manifest.csv and contact_sheet.png."""
    from deae_aug.data.build import build_splits
    from deae_aug.data.export import check_output_dir, contact_sheet, export_splits
    from deae_aug.io import atomic_folder, save_png
    from deae_aug.recipes import load_recipe

    recipe = load_recipe(recipe_path, overrides)
    splits = build_splits(recipe)
    check_output_dir(out, overwrite)
    start = time.perf_counter()
    with atomic_folder(out) as tmp:  # a killed render leaves nothing behind
        manifest = export_splits(splits, tmp)
        first = next(iter(splits.values()))
        save_png(tmp / "contact_sheet.png", contact_sheet(first, seed=recipe.seed))
    sizes = ", ".join(f"{name}: {len(ds)}" for name, ds in splits.items())
    click.echo(f"wrote {len(manifest)} images ({sizes}) in {time.perf_counter() - start:.1f} s to {out}")
    click.echo(f"manifest: {out / 'manifest.csv'}; contact sheet: {out / 'contact_sheet.png'}")


@main.command("train")
@recipe_option
@set_option
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Run folder [runs/<name>-<variant>]."
)
@click.option(
    "--device", default="auto", show_default=True, help="auto (CUDA when present), cpu or cuda[:N]."
)
@click.option("--resume", is_flag=True, help="Continue from the run folder's last checkpoint.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@user_errors
def train_command(
    recipe_path: Path, overrides: tuple[str, ...], out: Path | None, device: str, resume: bool, quiet: bool
) -> None:
    """Train the recipe's autoencoder (GAE, beta-VAE, GSL-AE or DEAE) with checkpoints and sample grids."""
    from deae_aug.recipes import load_recipe
    from deae_aug.training.trainer import train

    recipe = load_recipe(recipe_path, overrides)
    out = out or Path("runs") / f"{recipe.name}-{recipe.model.variant}"
    start = time.perf_counter()
    train(recipe, out, device=device, resume=resume, progress=not quiet)
    seconds = time.perf_counter() - start
    click.echo(f"trained {recipe.model.variant} for {recipe.train.steps} steps in {seconds:.0f} s")
    click.echo(f"run: {out} (checkpoints/, samples/, metrics.jsonl, recipe.yaml)")


@main.command("augment")
@recipe_option
@set_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output [augment.out].")
@click.option(
    "--run", type=click.Path(file_okay=False, path_type=Path), help="DEAE run folder [augment.run]."
)
@click.option("--count", type=click.IntRange(min=1), help="Images to synthesise [augment.count].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@click.option(
    "--device", default="auto", show_default=True, help="auto (CUDA when present), cpu or cuda[:N]."
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@user_errors
def augment_command(
    recipe_path: Path,
    overrides: tuple[str, ...],
    out: Path | None,
    run: Path | None,
    count: int | None,
    overwrite: bool,
    device: str,
    quiet: bool,
) -> None:
    """Train DEAE on the recipe's training split (or reuse the run) and write synthetic images."""
    from deae_aug.augment.synthesis import synthesize, write_image_folder
    from deae_aug.augment.transform import colour_layers
    from deae_aug.errors import RecipeError
    from deae_aug.recipes import load_recipe
    from deae_aug.training.run import check_attribute_keys, training_split
    from deae_aug.training.trainer import ensure_trained

    start = time.perf_counter()
    recipe = load_recipe(recipe_path, overrides)
    a = recipe.augment
    out = out or Path(a.out or Path("augmented") / recipe.name)
    run = run or Path(a.run or Path("runs") / f"{recipe.name}-{recipe.model.variant}")
    if out.exists() and any(out.iterdir()) and not overwrite:  # fail before training, not after
        raise UserError(f"output folder {out} is not empty; pass --overwrite or choose another --out")
    label = recipe.split.label
    if label is None:
        raise RecipeError(f"Recipe key 'split.label' in {recipe.source} must name the label attribute")
    low, high = (1.0, 1.0) if a.mode == "swap" else a.t_range
    dataset = training_split(recipe)
    check_attribute_keys(recipe, dataset)  # before training, not after
    attributes = a.attributes or [n for n in dataset.schema.names if n != label]
    model = ensure_trained(recipe, run, device=device, progress=not quiet)
    paint = colour_layers(model, dataset.schema.names, attributes) if a.mode == "novel" else []
    synthesis = synthesize(
        model,
        dataset,
        attributes,
        count or a.count,
        (low, high),
        seed=recipe.seed,
        progress=not quiet,
        residual=a.residual,
        repaint=a.repaint,
        paint=paint,
        edits=tuple(a.edits),
        udv=a.mode == "udv",
        brightness=a.brightness,
    )
    write_image_folder(synthesis, dataset, label, out, overwrite, progress=not quiet)
    click.echo(
        f"wrote {len(synthesis.records)} images to {out} in {time.perf_counter() - start:.0f} s "
        f"(model: {run}; ImageFolder tree, manifest.csv, preview.png)"
    )


@main.command("debias")
@recipe_option
@set_option
@click.option("--mode", type=click.Choice(["latent", "rebalance", "both"]), help="Override debias.mode.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Report folder [debias.out].")
@click.option("--run", type=click.Path(file_okay=False, path_type=Path), help="DEAE run folder [debias.run].")
@click.option(
    "--device", default="auto", show_default=True, help="auto (CUDA when present), cpu or cuda[:N]."
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@user_errors
def debias_command(
    recipe_path: Path,
    overrides: tuple[str, ...],
    mode: str | None,
    out: Path | None,
    run: Path | None,
    device: str,
    quiet: bool,
) -> None:
    """Train DEAE on the biased split (or reuse the run), debias, and report on the test set.

    The split is drawn from complete data (split.debias) or is your own (split.given: a split
    column or separate manifests; a validation split chooses the classifier)."""
    from deae_aug.debias.report import run_debias
    from deae_aug.recipes import load_recipe

    recipe = load_recipe(recipe_path, [*overrides, *([f"debias.mode={mode}"] if mode else [])])
    d = recipe.debias
    out = out or Path(d.out or Path("reports") / f"{recipe.name}-{d.mode}")
    run = run or Path(d.run or Path("runs") / f"{recipe.name}-{recipe.model.variant}")
    report = run_debias(recipe, run, out, device=device, progress=not quiet)
    parts = [f"accuracy {report['accuracy']:.3f}"]
    for key, words in (("group_mean", "unbiased (mean over groups)"), ("worst_group", "worst group"),
                       ("bias_conflicting", "bias-conflicting")):  # fmt: skip
        if report.get(key) is not None:
            parts.append(f"{words} {report[key]:.3f}")
    click.echo(f"{d.mode}: " + ", ".join(parts) + f"; report in {out}")
    for note in report["notes"]:
        click.echo(f"note: {note}")


@main.command("explore")
@click.option(
    "--run", required=True, type=click.Path(file_okay=False, path_type=Path), help="Trained run folder."
)
@click.option(
    "--mode",
    type=click.Choice(["swap", "interpolate", "random", "udv", "centre", "discover"]),
    default="swap",
    show_default=True,
)
@click.option(
    "--attribute", help="Attribute to explore (interpolate: default all; udv, centre, discover: required)."
)
@click.option("--n", "count", type=click.IntRange(min=1), default=4, show_default=True, help="Source images.")
@click.option(
    "--steps",
    type=click.IntRange(min=2),
    default=8,
    show_default=True,
    help="Steps per interpolation or direction.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--udv-fit",
    type=click.Choice(["labels", "oracle"]),
    default="labels",
    show_default=True,
    help="udv: fit the SVM on labelled training codes, or on oracle-scored interpolated codes "
    "(top and bottom 2%, as in the paper; trains the attribute oracle on first use).",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output folder [RUN/explore].")
@user_errors
def explore_command(
    run: Path,
    mode: str,
    attribute: str | None,
    count: int,
    steps: int,
    seed: int,
    udv_fit: str,
    out: Path | None,
) -> None:
    """Draw swap, interpolation, random, unit-direction, value-centre or new-colour grids from a run."""
    import json

    from deae_aug.data.dataset import load_images
    from deae_aug.errors import RecipeError
    from deae_aug.explore.figures import explore
    from deae_aug.io import atomic_write_text, save_png
    from deae_aug.training.run import Run, training_split

    folder = Run(run)
    model, meta = folder.load()
    recipe = folder.recipe()
    dataset = training_split(recipe)
    if attribute is not None and attribute not in dataset.schema.names:
        raise RecipeError(f"--attribute {attribute!r} is not one of {list(dataset.schema.names)}")
    if mode in ("udv", "centre", "discover") and attribute is None:
        raise UserError(f"--mode {mode} needs --attribute (one of {list(dataset.schema.names)})")
    if udv_fit == "oracle" and mode != "udv":
        raise UserError(f"--udv-fit oracle applies to --mode udv only, not --mode {mode}")
    oracle = None
    if udv_fit == "oracle":
        from deae_aug.data.build import build_dataset
        from deae_aug.evaluate.oracle import oracle_for

        oracle = oracle_for(build_dataset(recipe.data, recipe.source))[0]
    images = load_images(dataset)
    grid, record = explore(
        mode, model, dataset.schema, images, dataset.factors, attribute, count, steps, seed, oracle
    )
    out = out or run / "explore"
    name = f"{mode}-{attribute or 'all'}-seed{seed}"
    save_png(out / f"{name}.png", grid)
    record |= {"run": str(run), "step": meta["step"], "n": count, "steps": steps, "seed": seed}
    atomic_write_text(out / f"{name}.json", json.dumps(record, indent=2, default=float))
    click.echo(f"wrote {out / (name + '.png')} and {name}.json")


@data.command("fonts")
def fonts() -> None:
    """List candidate font faces found in installed packages, and why each was kept or rejected."""
    from deae_aug.data.font_catalog import survey_fonts

    reports = survey_fonts()
    for r in reports:
        mark = "kept" if r.accepted else "rejected"
        click.echo(f"{mark:8s} {r.face.family:28s} {r.face.source:48s} {r.reason}")
    click.echo(f"{sum(r.accepted for r in reports)} font families available")


@main.group("recipes", invoke_without_command=True)
@click.pass_context
def recipes(ctx: click.Context) -> None:
    """List the shipped recipes (usable by name from any folder: --recipe fonts_small.yaml)."""
    if ctx.invoked_subcommand is None:
        from deae_aug.recipes import shipped_recipes

        for name, path in shipped_recipes().items():
            lines = path.read_text(encoding="utf-8").splitlines()
            header = itertools.takewhile(lambda line: line.startswith("#"), lines)
            comment = " ".join(line.lstrip("# ").strip() for line in header)
            first = re.split(r"[.:](?:\s|$)", comment, maxsplit=1)[0]  # its first sentence or clause
            click.echo(f"{name:24s} {first}")


@recipes.command("show")
@click.argument("name")
@user_errors
def show_recipe(name: str) -> None:
    """Print shipped recipe NAME, to copy and edit: deae-aug recipes show fonts_small > mine.yaml"""
    from deae_aug.errors import RecipeError
    from deae_aug.recipes import shipped_recipe, shipped_recipes

    path = shipped_recipe(name)
    if path is None:
        raise RecipeError(f"no shipped recipe {name!r}; shipped: {', '.join(shipped_recipes())}")
    click.echo(path.read_text(encoding="utf-8"), nl=False)


if __name__ == "__main__":
    main()
