"""DEAEAugment throughput at 32 px on this CPU, beside torchvision's TrivialAugmentWide, and the
time online augmentation adds to one ResNet-18 training step (batch 64).

Needs the fonts_small DEAE run (``deae-aug augment --recipe recipes/fonts_small.yaml`` makes it).

Usage: python -m benchmarks.augment_speed [--run runs/fonts_small-deae] [--seeds 3]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F  # noqa: N812
from torchvision.models import resnet18
from torchvision.transforms import v2

from benchmarks.common import environment, summary, write_results
from deae_aug.augment.transform import DEAEAugment
from deae_aug.data.dataset import load_images, to_float
from deae_aug.recipes import load_recipe
from deae_aug.training.run import training_split


def rate(fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def measure(run: str, images: torch.Tensor, n: int, seed: int) -> tuple[float, float, float, float, float]:
    """(per-sample img/s, batched img/s, TrivialAugmentWide img/s, ResNet step s, step s with DEAE)."""
    aug = DEAEAugment(run, seed=seed)
    ta = v2.TrivialAugmentWide()
    x = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))]
    x = x.repeat(n // len(x) + 1, 1, 1, 1)[:n]
    aug(x[0])  # load the model and the bank outside the timings
    per_sample = rate(lambda: [aug(im) for im in x[:128]], 128)
    batched = rate(lambda: [aug.augment_batch(b) for b in x.split(256)], len(x))
    trivial = rate(lambda: [ta(im) for im in x], len(x))
    torch.manual_seed(seed)
    model = resnet18(num_classes=10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    labels = torch.randint(10, (64,))

    def step(batch: torch.Tensor) -> None:
        loss = F.cross_entropy(model(to_float(batch)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(x[:64])  # warm-up
    tick = time.perf_counter()
    for b in range(5):
        step(x[64 * b : 64 * (b + 1)])
    plain = (time.perf_counter() - tick) / 5
    tick = time.perf_counter()
    for b in range(5):
        step(aug.augment_batch(x[64 * b : 64 * (b + 1)])[0])
    return per_sample, batched, trivial, plain, (time.perf_counter() - tick) / 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default="runs/fonts_small-deae")
    parser.add_argument("--recipe", default="recipes/fonts_small.yaml")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--images", type=int, default=512)
    args = parser.parse_args()
    start = time.perf_counter()
    images = load_images(training_split(load_recipe(args.recipe)))
    runs = [measure(args.run, images, args.images, seed) for seed in range(args.seeds)]
    per_sample, batched, trivial, step_plain, step_deae = ([r[k] for r in runs] for k in range(5))
    added = [d / p - 1 for d, p in zip(step_deae, step_plain, strict=True)]
    payload = {
        "benchmark": "augment_speed",
        "run": args.run,
        "resolution": int(images.shape[-1]),
        "seeds": list(range(args.seeds)),
        "deae_per_sample_images_per_s": summary(per_sample),
        "deae_batched_images_per_s": summary(batched),
        "trivial_augment_wide_images_per_s": summary(trivial),
        "resnet18_step_seconds": summary(step_plain),
        "resnet18_step_with_deae_seconds": summary(step_deae),
        "added_fraction": summary(added),
        "goals": {"batched_images_per_s": 1000, "added_fraction": 0.25},
        "wall_seconds": time.perf_counter() - start,
        "environment": environment(),
    }
    p = payload
    table = "\n".join(
        [
            f"# Augmentation throughput ({p['resolution']} px, this CPU, {args.seeds} seeds)\n",
            "| augmenter | images/s (mean ± std) |",
            "|---|---|",
            f"| DEAEAugment, per sample | {p['deae_per_sample_images_per_s']['mean']:,.0f} ± "
            f"{p['deae_per_sample_images_per_s']['std']:,.0f} |",
            f"| DEAEAugment, batched (256) | {p['deae_batched_images_per_s']['mean']:,.0f} ± "
            f"{p['deae_batched_images_per_s']['std']:,.0f} |",
            f"| TrivialAugmentWide, per sample | {p['trivial_augment_wide_images_per_s']['mean']:,.0f} ± "
            f"{p['trivial_augment_wide_images_per_s']['std']:,.0f} |",
            "",
            f"ResNet-18 step (batch 64): {p['resnet18_step_seconds']['mean']:.3f} s plain, "
            f"{p['resnet18_step_with_deae_seconds']['mean']:.3f} s with batched DEAEAugment: "
            f"+{p['added_fraction']['mean']:.1%} ± {p['added_fraction']['std']:.1%}.",
            f"\nWall time {p['wall_seconds']:.0f} s; torch {p['environment']['torch']}.\n",
        ]
    )
    write_results("augment_speed", payload, table)
    print(table)


if __name__ == "__main__":
    main()
