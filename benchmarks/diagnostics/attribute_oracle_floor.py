"""Does the attribute oracle learn a small dataset? Its step floor, old (300) against new (2,000).

The oracle's budget is counted in epochs of the dataset it judges; on a small one that is few
steps. Fonts cut to 3 font colours x 3 backgrounds (fonts_small's other values: 3,240 images)
got 308 steps and read the font at 73%, below the 98% every judge must reach. This fits the
oracle on that cut with each floor and reports its held-out accuracy per attribute.

Usage: python -m benchmarks.diagnostics.attribute_oracle_floor [--floors 300 2000]
Writes benchmarks/results/attribute_oracle_floor.{json,md}.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import environment, write_results
from deae_aug.data.build import build_dataset
from deae_aug.evaluate.oracle import fit_oracle
from deae_aug.recipes import load_recipe

CUT = {"font_color": ["green", "silver", "pink"], "bg_color": ["red", "yellow", "blue"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="recipes/fonts_small.yaml")
    parser.add_argument("--floors", type=int, nargs="+", default=[300, 2000])
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    full = build_dataset(recipe.data)
    values = {a.name: list(a.values) for a in full.schema.attributes} | CUT
    recipe.data.values = values
    dataset = build_dataset(recipe.data)
    rows = {}
    for floor in args.floors:
        start = time.perf_counter()
        _, accuracy = fit_oracle(dataset, min_steps=floor, progress=False)
        rows[floor] = {"accuracy": accuracy, "seconds": time.perf_counter() - start}
        print(floor, rows[floor], flush=True)
    names = list(dataset.schema.names)
    lines = [f"# Attribute oracle on Fonts cut to 3 font colours x 3 backgrounds ({len(dataset)} images)", ""]
    lines += ["| step floor | " + " | ".join(names) + " | s |", "|---" * (len(names) + 2) + "|"]
    for floor, row in rows.items():
        cells = " | ".join(f"{row['accuracy'][n] * 100:.1f}" for n in names)
        lines.append(f"| {floor} | {cells} | {row['seconds']:.0f} |")
    lines += ["", "Held-out accuracy (10% of the images) in %; seed 0. docs/experiments/colored_fashion.md."]
    payload = {"images": len(dataset), "values": values, "rows": rows, "environment": environment()}
    print(write_results("attribute_oracle_floor", payload, "\n".join(lines) + "\n"))


if __name__ == "__main__":
    main()
