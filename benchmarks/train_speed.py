"""Training throughput per variant, and the reference-sized GSL-AE step against the official code.

Times full optimizer steps (forward, backward, Adam) on real Fonts groups, counts the FLOPs of
one step with torch's FlopCounterMode, and reports groups/s, images/s and GFLOP/s.

Usage: python -m benchmarks.train_speed [--steps 6] [--seeds 3] [--skip-reference]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import environment, summary, write_results
from deae_aug.data.fonts import FontsDataset
from deae_aug.data.sampler import GroupSampler
from deae_aug.models.autoencoder import Autoencoder, ModelConfig
from deae_aug.training.losses import LossConfig, group_losses

OFFICIAL_SECONDS_PER_STEP = 27.7  # the official GSL Fonts step, measured on this machine (design.md 6)
OFFICIAL_GROUPS_PER_STEP = 4
REFERENCE = {"widths": [64, 128, 256, 256, 256], "fc": 4096, "res_blocks": 1, "resolution": 128, "groups": 4}
VALUES = {"letter": 10, "font": 12}  # fonts_small-like: 10 letters, 3 sizes, 10 colours, 12 fonts


def groups_batch(resolution: int, groups: int, seed: int) -> tuple[torch.Tensor, list[int]]:
    dataset = FontsDataset(values=VALUES, resolution=resolution)
    sampler = GroupSampler(dataset.factors, dataset.schema, groups, "strict", seed)
    idx = sampler.batch(0).reshape(-1)
    images = torch.stack([dataset[int(i)][0] for i in idx])
    n = len(dataset.schema) + 1
    blocks = [a.block_size for a in dataset.schema.attributes]
    return images.view(groups, n, *images.shape[1:]), blocks


def step_fn(model: Autoencoder, x: torch.Tensor, cfg: LossConfig):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(seed: int) -> None:
        terms = group_losses(model, x, cfg, torch.Generator().manual_seed(seed))
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()

    return step


def measure(variant: str, resolution: int, groups: int, steps: int, seed: int, **arch) -> dict:
    """Seconds per step (after one warm-up step) and GFLOP per step."""
    torch.manual_seed(seed)
    x, blocks = groups_batch(resolution, groups, seed)
    model = Autoencoder(ModelConfig(variant=variant, resolution=resolution, block_sizes=blocks, **arch))
    model.train()
    step = step_fn(model, x, LossConfig())  # recipe defaults: swap 1, reg 1, cycle 0 (not computed)
    with FlopCounterMode(display=False) as counter:
        step(0)  # also the warm-up
    start = time.perf_counter()
    for s in range(steps):
        step(s + 1)
    seconds = (time.perf_counter() - start) / steps
    return {"seconds_per_step": seconds, "gflop_per_step": counter.get_total_flops() / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    start = time.perf_counter()
    rows = []
    for resolution in (32, 64):
        for variant in ("gae", "betavae", "gsl", "deae"):
            runs = [measure(variant, resolution, args.groups, args.steps, s) for s in seeds]
            sec = [r["seconds_per_step"] for r in runs]
            gflop = runs[0]["gflop_per_step"]
            rows.append(
                {
                    "variant": variant,
                    "resolution": resolution,
                    "groups_per_step": args.groups,
                    "images_per_group": 6,
                    "seconds_per_step": summary(sec),
                    "groups_per_s": summary([args.groups / s for s in sec]),
                    "images_per_s": summary([args.groups * 6 / s for s in sec]),
                    "gflop_per_step": gflop,
                    "gflop_per_s": summary([gflop / s for s in sec]),
                }
            )
            print(
                rows[-1]["variant"],
                resolution,
                f"{rows[-1]['groups_per_s']['mean']:.2f} groups/s",
                flush=True,
            )
    reference = None
    if not args.skip_reference:
        arch = {k: REFERENCE[k] for k in ("widths", "fc", "res_blocks")}
        runs = [
            measure("gsl", REFERENCE["resolution"], REFERENCE["groups"], max(2, args.steps // 2), s, **arch)
            for s in seeds
        ]
        sec = [r["seconds_per_step"] for r in runs]
        official = OFFICIAL_GROUPS_PER_STEP / OFFICIAL_SECONDS_PER_STEP
        reference = {
            "settings": REFERENCE,
            "seconds_per_step": summary(sec),
            "groups_per_s": summary([REFERENCE["groups"] / s for s in sec]),
            "gflop_per_step": runs[0]["gflop_per_step"],
            "gflop_per_s": summary([runs[0]["gflop_per_step"] / s for s in sec]),
            "official_groups_per_s": official,
            "speedup_vs_official": summary([REFERENCE["groups"] / s / official for s in sec]),
        }
    payload = {
        "benchmark": "train_speed",
        "seeds": seeds,
        "timed_steps": args.steps,
        "losses": "recipe defaults (swap 1, reg 1, cycle 0 skipped, beta 4)",
        "variants": rows,
        "reference_gsl": reference,
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    lines = [
        f"# Training throughput on this CPU ({args.groups} groups of 6 images/step, {len(seeds)} seeds)\n",
        "| variant | px | s/step | groups/s | images/s | GFLOP/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, g, i, f = (r[k] for k in ("seconds_per_step", "groups_per_s", "images_per_s", "gflop_per_s"))
        lines.append(
            f"| {r['variant']} | {r['resolution']} | {s['mean']:.3f} ± {s['std']:.3f} | "
            f"{g['mean']:.2f} ± {g['std']:.2f} | {i['mean']:.0f} ± {i['std']:.0f} | {f['mean']:.1f} |"
        )
    if reference:
        s, g, f, x = (
            reference[k] for k in ("seconds_per_step", "groups_per_s", "gflop_per_s", "speedup_vs_official")
        )
        lines += [
            "",
            "Reference-sized GSL-AE (widths 64-128-256-256-256, 1 res block, FC 4096, 128 px, 4 groups):",
            "",
            "| | s/step | groups/s | GFLOP/step | GFLOP/s |",
            "|---|---|---|---|---|",
            f"| official code (measured earlier on this machine) | {OFFICIAL_SECONDS_PER_STEP} | "
            f"{reference['official_groups_per_s']:.3f} | ~1030 | ~37 |",
            f"| deae-aug | {s['mean']:.1f} ± {s['std']:.1f} | {g['mean']:.3f} ± {g['std']:.3f} | "
            f"{reference['gflop_per_step']:.0f} | {f['mean']:.1f} |",
            "",
            f"Speed-up: {x['mean']:.2f}x ± {x['std']:.2f}.",
        ]
    lines.append(f"\nWall time {payload['wall_seconds']:.0f} s; torch {payload['environment']['torch']}.\n")
    path = write_results("train_speed", payload, "\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
