"""Fonts renderer throughput on one core: cold (glyph masks rendered) and warm (masks cached).

Usage: python benchmarks/render_speed.py [--resolution 32] [--images 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from benchmarks.common import environment, summary, write_results
from deae_aug.data.font_catalog import font_catalog
from deae_aug.data.fonts import FontsDataset


def images_per_second(dataset: FontsDataset, indices: np.ndarray) -> float:
    start = time.perf_counter()
    for i in indices:
        dataset.load_image(int(i))
    return len(indices) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    start = time.perf_counter()
    font_catalog()
    catalog_seconds = time.perf_counter() - start
    cold, warm = [], []
    for seed in range(args.repeats):
        dataset = FontsDataset(values={"font": 12}, resolution=args.resolution)  # 52 letters, iLab colours
        indices = np.random.default_rng(seed).choice(len(dataset), size=args.images, replace=False)
        cold.append(images_per_second(dataset, indices))
        warm.append(images_per_second(dataset, indices))
    payload = {
        "benchmark": "render_speed",
        "resolution": args.resolution,
        "images_per_repeat": args.images,
        "seeds": list(range(args.repeats)),
        "cores": 1,
        "font_catalog_seconds": catalog_seconds,
        "cold_images_per_s": summary(cold),
        "warm_images_per_s": summary(warm),
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    c, w = payload["cold_images_per_s"], payload["warm_images_per_s"]
    table = (
        f"# Fonts renderer throughput ({args.resolution} px, one core, {args.repeats} seeds)\n\n"
        "| cache | images/s (mean ± std) |\n|---|---|\n"
        f"| cold (masks rendered on first use) | {c['mean']:,.0f} ± {c['std']:,.0f} |\n"
        f"| warm (masks cached) | {w['mean']:,.0f} ± {w['std']:,.0f} |\n\n"
        f"Font catalog survey: {catalog_seconds:.1f} s once per process.\n"
    )
    print(table)
    print(
        write_results(
            f"render_speed_{args.resolution}px" if args.resolution != 32 else "render_speed", payload, table
        )
    )


if __name__ == "__main__":
    main()
