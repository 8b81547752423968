"""The attribute oracle: a CNN that reads every attribute of an image, to score what a decoder drew.

One convolutional trunk with one classification head per attribute: the heads are the
per-attribute classifiers, and sharing the trunk makes the oracle K times cheaper to train.
It trains on the *whole* dataset a recipe renders (held-out colours included), on slightly
blurred and noisy copies so that it reads decoded images as well as rendered ones, and it
is cached per dataset and resolution so every benchmark scores with the same judge.

Where the dataset has a ``scale_attribute`` (Fonts' size), half of each batch is also drawn at
another size, by a random factor in [0.5, 2] (log-uniform), and those copies do not train that
attribute's head: size edits shrink or enlarge the drawing, and an oracle that has seen only three
sizes read the font of exactly resampled rendered glyphs wrongly in up to 71% of cases. Where the
dataset can redraw its object at any size (``mask_at_scale``: Fonts renders the glyph at the
in-between em size) the copies are exact renders, otherwise the image resampled about the centre:
an oracle trained on resampled copies still misread the font of 4 to 25% of glyphs rendered
between two named sizes.
Likewise, where the dataset paints flat colours (``paint_layers``), half of each batch has one of
them repainted with a random RGB colour (at least ``MIN_CONTRAST`` from the image's other colours,
as augmentation's new colours are), and that attribute's head skips those copies: edits paint
colours outside the palette, and an oracle that has seen only the palette misread the glyph of
about one exactly rendered new-colour edit in ten.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from deae_aug.data.dataset import AttributeDataset, load_images, to_float
from deae_aug.data.fonts import MIN_CONTRAST, parse_color
from deae_aug.data.schema import AttributeSchema
from deae_aug.errors import UserError
from deae_aug.io import atomic_path, atomic_write_text
from deae_aug.models.autoencoder import rescale

ORACLE_VERSION = 5
MIN_ACCURACY = 0.98


def cache_root() -> Path:
    """``$DEAE_AUG_CACHE`` or ``~/.cache/deae-aug``."""
    return Path(os.environ.get("DEAE_AUG_CACHE", Path.home() / ".cache" / "deae-aug"))


class AttributeOracle(nn.Module):
    """Images in [-1, 1], (N, 3, H, W) -> one logit vector per attribute."""

    def __init__(self, schema: AttributeSchema, resolution: int, width: int = 16) -> None:
        super().__init__()
        self.schema = schema
        self.resolution = resolution
        self.input_size = min(resolution, 32) if resolution < 64 else 64  # keeps the oracle cheap

        def conv(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]

        w = width
        self.trunk = nn.Sequential(
            *conv(3, w),
            *conv(w, 2 * w, stride=2),
            *conv(2 * w, 4 * w),
            nn.MaxPool2d(2),
            *conv(4 * w, 8 * w),
            nn.MaxPool2d(2),
            *conv(8 * w, 8 * w),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(8 * w * 16, 256),
            nn.ReLU(inplace=True),
        )
        self.heads = nn.ModuleList(nn.Linear(256, len(a.values)) for a in schema.attributes)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", antialias=True, align_corners=False)
        features = self.trunk(x)
        return [head(features) for head in self.heads]

    def _chunks(self, images: torch.Tensor, batch_size: int):
        """Per batch of ``images``: the list of logits, one tensor per attribute. uint8 images are
        scaled to [-1, 1] first (read raw, they would give confident nonsense). Callers hold
        ``torch.no_grad``."""
        self.eval()
        device = next(self.parameters()).device
        for chunk in images.split(batch_size):
            chunk = to_float(chunk) if chunk.dtype == torch.uint8 else chunk
            yield self(chunk.to(device, torch.float32))

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """(N, K) int64 factor indices read from images (uint8, or float in [-1, 1])."""
        chunks = self._chunks(images, batch_size)
        out = [torch.stack([lg.argmax(1) for lg in logits], 1).cpu() for logits in chunks]
        return torch.cat(out) if out else torch.empty(0, len(self.schema), dtype=torch.int64)

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor, k: int, batch_size: int = 512) -> torch.Tensor:
        """(N, n_values) softmax of attribute ``k`` (images uint8, or float in [-1, 1])."""
        return torch.cat([logits[k].softmax(1).cpu() for logits in self._chunks(images, batch_size)])


def dataset_key(dataset: AttributeDataset) -> str:
    """Identity of a dataset for the cache: its class, resolution and attribute values."""
    ident = {
        "class": type(dataset).__name__,
        "resolution": dataset.resolution,
        "values": {a.name: list(a.values) for a in dataset.schema.attributes},
        "epochs": dataset.oracle_epochs,
        "version": ORACLE_VERSION,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def _corrupt(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mild blur and noise on half the batch: decoded images are a little soft."""
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    pick = (torch.rand(len(x), 1, 1, 1, generator=generator) < 0.5).float()
    x = pick * (0.5 * x + 0.5 * blurred) + (1 - pick) * x
    return x + 0.04 * torch.randn(x.shape, generator=generator)


def _resize_factors(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of ``n`` rows to resize (half), and by a factor in [0.5, 2] (log-uniform), the range a
    size edit between the smallest and largest named sizes covers."""
    pick = torch.rand(n, generator=generator) < 0.5
    return pick, 2 ** (2 * torch.rand(n, generator=generator) - 1)


def _resize(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Half of ``x`` resampled about the centre; and which rows were."""
    pick, factor = _resize_factors(len(x), generator)
    return rescale(x, torch.where(pick, factor, torch.ones(len(x)))), pick


def _redraw(
    x: torch.Tensor, dataset: AttributeDataset, paint: Paint, batch: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Half of ``x`` drawn again with the object at another size (``mask_at_scale``) in its own
    colours; which rows were, and every row's mask."""
    pick, factor = _resize_factors(len(x), generator)
    masks = paint.masks[batch].clone()
    for row in pick.nonzero().flatten().tolist():
        masks[row, 0] = torch.from_numpy(dataset.mask_at_scale(int(batch[row]), float(factor[row])))
    layers = torch.where(paint.on_object[None, :, None, None], masks, 1 - masks)  # (n, P, H, W)
    drawn = torch.einsum("nphw,npc->nchw", layers, paint.colours[batch]) / 127.5 - 1
    return torch.where(pick[:, None, None, None], drawn, x), pick, masks


class Paint:
    """What ``_repaint`` needs for a dataset with ``paint_layers``: every image's coverage mask,
    the RGB (0-255) of each painted attribute, and which side of the mask each one paints."""

    def __init__(self, dataset: AttributeDataset) -> None:
        names = list(dataset.paint_layers)
        self.positions = torch.tensor([dataset.schema.position(n) for n in names])
        self.on_object = torch.tensor([dataset.paint_layers[n] == "object" for n in names])
        self.masks = torch.from_numpy(np.stack([dataset.mask(i) for i in range(len(dataset))]))[:, None]
        rgb = [torch.tensor([parse_color(v) for v in dataset.schema[n].values]).float() for n in names]
        factors = torch.from_numpy(dataset.factors)
        self.colours = torch.stack([c[factors[:, k]] for c, k in zip(rgb, self.positions, strict=True)], 1)
        self.black_background = not (~self.on_object).any()  # no attribute paints the background


def _repaint(
    x: torch.Tensor, paint: Paint, batch: torch.Tensor, masks: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Half of ``x`` with one painted colour replaced by a uniform RGB colour at least
    ``MIN_CONTRAST`` from the image's other colours; per row, the attribute position it lost
    (-1: none). ``masks``: the rows' masks."""
    n, p = len(x), len(paint.positions)
    colours = paint.colours[batch]  # (n, P, 3)
    which = torch.randint(p, (n,), generator=generator)
    others = colours.clone()
    others[torch.arange(n), which] = float("inf")  # the replaced colour is no constraint
    if paint.black_background:
        others = torch.cat([others, torch.zeros(n, 1, 3)], 1)
    candidates = 255 * torch.rand(n, 8, 3, generator=generator)
    far = (torch.cdist(candidates, others).nan_to_num(float("inf")) >= MIN_CONTRAST).all(2)  # (n, 8)
    new = candidates[torch.arange(n), far.int().argmax(1)]
    pick = (torch.rand(n, generator=generator) < 0.5) & far.any(1)
    layer = torch.where(paint.on_object[which].view(n, 1, 1, 1), masks, 1 - masks)
    shift = (new - colours[torch.arange(n), which]) / 127.5 * pick[:, None]
    lost = torch.where(pick, paint.positions[which], torch.full((n,), -1))
    return x + shift[:, :, None, None] * layer, lost


def fit_oracle(
    dataset: AttributeDataset,
    epochs: int = 5,
    batch_size: int = 128,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    min_steps: int = 2000,
) -> tuple[AttributeOracle, dict[str, float]]:
    """Train on 90% of ``dataset``; return the oracle and its accuracy per attribute on the other 10%.

    ``epochs`` is a budget for large datasets; a small one trains for at least ``min_steps``: at
    the earlier floor of 300 steps an oracle on Fonts cut to 3,240 images read the font at 73%."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    images = load_images(dataset, progress)
    factors = torch.from_numpy(dataset.factors)
    order = torch.randperm(len(images), generator=generator)
    n_val = max(1, len(images) // 10)
    val, fit = order[:n_val], order[n_val:]
    oracle = AttributeOracle(dataset.schema, dataset.resolution).to(device)
    paint = Paint(dataset) if dataset.paint_layers else None
    scaled = dataset.scale_attribute is not None
    redraw = paint is not None and scaled and dataset.mask_at_scale(0, 1.0) is not None
    if dataset.scale_attribute is not None or paint is not None:
        epochs *= 2  # reading the other attributes at any size and colour takes longer
    batch_size = min(batch_size, len(fit))
    per_epoch = len(fit) // batch_size
    epochs = max(epochs, -(-min_steps // per_epoch))  # small datasets: enough steps to learn
    steps = epochs * per_epoch
    optimizer = torch.optim.AdamW(oracle.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    bar = tqdm(total=steps, desc="oracle", unit="step", disable=not progress)
    oracle.train()
    for _ in range(epochs):
        for batch in fit[torch.randperm(len(fit), generator=generator)].split(batch_size):
            if len(batch) < batch_size:
                continue
            x = to_float(images[batch])
            keep = torch.ones(len(batch), len(dataset.schema), dtype=torch.bool)
            if redraw:  # exact renders at other sizes, then repainted on their own masks
                x, resized, masks = _redraw(x, dataset, paint, batch, generator)
            if paint is not None:
                x, lost = _repaint(x, paint, batch, masks if redraw else paint.masks[batch], generator)
                keep[lost >= 0, lost[lost >= 0]] = False
            if dataset.scale_attribute is not None:
                if not redraw:
                    x, resized = _resize(x, generator)
                keep[resized, dataset.schema.position(dataset.scale_attribute)] = False
            x, y, keep = _corrupt(x, generator).to(device), factors[batch].to(device), keep.to(device)
            loss = sum(F.cross_entropy(lg[keep[:, k]], y[keep[:, k], k]) for k, lg in enumerate(oracle(x)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    predicted = oracle.predict(to_float(images[val]))
    accuracy = (predicted == factors[val]).float().mean(0)
    return oracle.eval(), {
        n: round(float(a), 4) for n, a in zip(dataset.schema.names, accuracy, strict=False)
    }


def oracle_for(
    dataset: AttributeDataset,
    cache: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    require: float = MIN_ACCURACY,
) -> tuple[AttributeOracle, dict[str, float]]:
    """The cached oracle for ``dataset`` (trained on first use) and its held-out accuracy.

    Raises if any attribute is read less accurately than ``require`` (or than the dataset's own
    ``oracle_require`` for it): a weak judge would make every score computed with it meaningless.
    """
    folder = Path(cache or cache_root() / "oracles") / dataset_key(dataset)
    weights, meta_path = folder / "oracle.safetensors", folder / "meta.json"
    if weights.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        oracle = AttributeOracle(AttributeSchema.from_dict(meta["schema"]), meta["resolution"])
        oracle.load_state_dict(load_file(weights))
        accuracy = meta["accuracy"]
    else:
        oracle, accuracy = fit_oracle(dataset, dataset.oracle_epochs, device=device, progress=progress)
        state = {k: v.detach().contiguous().cpu() for k, v in oracle.state_dict().items()}
        with atomic_path(weights) as tmp:
            save_file(state, tmp)
        meta = {"schema": dataset.schema.to_dict(), "resolution": dataset.resolution, "accuracy": accuracy}
        atomic_write_text(meta_path, json.dumps(meta, indent=2))
    floors = {n: min(require, dataset.oracle_require.get(n, require)) for n in accuracy}
    weak = {n: a for n, a in accuracy.items() if a < floors[n]}
    if weak:
        wanted = ", ".join(f"{n} {floors[n]:.0%}" for n in weak)
        raise UserError(
            f"attribute oracle reads {weak} below the required held-out accuracy ({wanted}); "
            f"delete {folder} to retrain it"
        )
    return oracle.to(device).eval(), accuracy
