"""The debiasing baselines the bias literature compares against, on `train_classifier`'s budget.

- JTT (Liu et al. 2021): train ERM for a few steps, then train again with the training images it
  got wrong upweighted ``upweight`` times (no bias labels).
- LfF (Nam et al. 2020): a biased network trained with the generalized cross-entropy (GCE, q)
  and a debiased network whose per-sample cross-entropy is weighted by
  CE_b / (CE_b + CE_d), each an exponential moving average per sample, divided by its class's
  maximum, as the authors' code does (no bias labels).
ERM and GroupDRO are `train_classifier` itself (GroupDRO: ``groups`` plus group-balanced batches).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from tqdm import tqdm

from deae_aug.data.dataset import to_float
from deae_aug.evaluate.classifier import classifier_network, predict, train_classifier


def train_jtt(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    steps: int,
    identify_steps: int,
    upweight: float,
    seed: int = 0,
    network: str = "cnn",
    batch_size: int = 128,
) -> torch.nn.Module:
    """JTT: an ERM model of ``identify_steps`` marks its training errors, which the final model
    (``steps``) draws ``upweight`` times as often."""
    first = train_classifier(
        images, labels, num_classes, identify_steps, batch_size, seed=seed, network=network
    )
    wrong = predict(first, images) != labels
    weights = torch.where(wrong, float(upweight), 1.0)
    return train_classifier(
        images, labels, num_classes, steps, batch_size, seed=seed, sample_weights=weights, network=network
    )


def generalized_ce(logits: torch.Tensor, labels: torch.Tensor, q: float) -> torch.Tensor:
    """Per-sample GCE: cross-entropy scaled by q * p_label^q (no gradient through the scale), which
    makes the network fit the easy (bias-aligned) samples first."""
    p = logits.softmax(1).gather(1, labels[:, None]).squeeze(1).detach()
    return F.cross_entropy(logits, labels, reduction="none") * p**q * q


class SampleEMA:
    """Per-sample exponential moving average of a loss; a sample's first reading is taken as is."""

    def __init__(self, labels: torch.Tensor, alpha: float) -> None:
        self.labels, self.alpha = labels, alpha
        self.value = torch.zeros(len(labels))
        self.seen = torch.zeros(len(labels), dtype=torch.bool)

    def update(self, loss: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        old = torch.where(self.seen[index], self.value[index], loss)
        self.value[index] = self.alpha * old + (1 - self.alpha) * loss
        self.seen[index] = True
        return self.value[index]

    def class_max(self, index: torch.Tensor) -> torch.Tensor:
        """Each sample's class maximum of the average (over the samples seen so far)."""
        top = torch.zeros(int(self.labels.max()) + 1).index_reduce_(
            0, self.labels[self.seen], self.value[self.seen], "amax", include_self=True
        )
        return top[self.labels[index]].clamp_min(1e-8)


def train_lff(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    steps: int,
    q: float = 0.7,
    ema: float = 0.7,
    seed: int = 0,
    network: str = "cnn",
    batch_size: int = 128,
    lr: float = 1e-3,
    progress: bool = False,
) -> torch.nn.Module:
    """LfF's debiased network; both networks train for ``steps`` with `train_classifier`'s optimiser."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    biased, debiased = classifier_network(network, num_classes), classifier_network(network, num_classes)
    params = [*biased.parameters(), *debiased.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    ema_b, ema_d = SampleEMA(labels, ema), SampleEMA(labels, ema)
    biased.train(), debiased.train()
    for _ in tqdm(range(steps), desc="lff", unit="step", disable=not progress, leave=False):
        index = torch.randint(len(images), (batch_size,), generator=generator)
        x, y = to_float(images[index]), labels[index]
        logits_b, logits_d = biased(x), debiased(x)
        loss_b = ema_b.update(
            F.cross_entropy(logits_b, y, reduction="none").detach(), index
        ) / ema_b.class_max(index)
        loss_d = ema_d.update(
            F.cross_entropy(logits_d, y, reduction="none").detach(), index
        ) / ema_d.class_max(index)
        weight = loss_b / (loss_b + loss_d + 1e-8)
        loss = (
            generalized_ce(logits_b, y, q).mean()
            + (F.cross_entropy(logits_d, y, reduction="none") * weight).mean()
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return debiased.eval()
