"""The downstream classifiers: the paper's torchvision ResNet-18, or a small CNN, from scratch.

Every row of a benchmark table trains with exactly this recipe (optimizer, steps, batch size),
so rows differ only in their training images. The small CNN is for grids of many classifiers
on a CPU (the Colored-Fashion-MNIST protocol trains about 150): about 10x ResNet-18's speed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812
from torchvision.models import resnet18
from tqdm import tqdm

from deae_aug.data.dataset import to_float


def enlarge(images: torch.Tensor, scale: int) -> torch.Tensor:
    """uint8 (N, C, H, W) ``images`` resized bilinearly to ``scale`` times their size: ResNet-18's
    stem shrinks its input 4x before the first block, so 32-px images leave it 8x8 maps."""
    if scale == 1:
        return images
    if scale < 1:
        raise ValueError(f"scale must be a whole number >= 1, got {scale}")
    big = torch.nn.functional.interpolate(images.float(), scale_factor=scale, mode="bilinear")
    return big.round().clamp(0, 255).to(torch.uint8)


def resnet18_classifier(num_classes: int, dilated: bool = False) -> torch.nn.Module:
    """torchvision ResNet-18 from scratch. ``dilated`` turns the strides of ``layer3`` and ``layer4``
    into dilations 2 and 4 (DeepLab's output stride 8): both keep ``layer2``'s 8x8 map at 64 px,
    so Grad-CAM can read a deep stage that still localises, for about 3x the training time.
    The weights have the same names and shapes either way."""
    model = resnet18(num_classes=num_classes)
    if dilated:
        dilation = 1
        for layer in (model.layer3, model.layer4):
            previous, dilation = dilation, dilation * 2
            for i, block in enumerate(layer):
                for j, conv in enumerate((block.conv1, block.conv2)):
                    d = previous if i == j == 0 else dilation  # torchvision's rule for the first conv
                    conv.stride, conv.dilation, conv.padding = (1, 1), (d, d), (d, d)
                if block.downsample is not None:
                    block.downsample[0].stride = (1, 1)
    return model


NETWORKS = ("resnet18", "cnn")


def small_cnn(num_classes: int, width: int = 16) -> torch.nn.Module:
    """Three 3x3 conv stages (width, 2 width, 4 width), each halving the map, global average pool."""
    layers: list[torch.nn.Module] = []
    c_in = 3
    for c_out in (width, 2 * width, 4 * width):
        layers += [
            torch.nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            torch.nn.BatchNorm2d(c_out),
            torch.nn.ReLU(inplace=True),
            torch.nn.MaxPool2d(2),
        ]
        c_in = c_out
    return torch.nn.Sequential(
        *layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(c_in, num_classes)
    )


def classifier_network(network: str, num_classes: int, dilated: bool = False) -> torch.nn.Module:
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {NETWORKS}, got {network!r}")
    return resnet18_classifier(num_classes, dilated) if network == "resnet18" else small_cnn(num_classes)


class GroupDRO:
    """Online GroupDRO weights: a group's weight grows by exp(eta * its mean loss) each step."""

    def __init__(self, n_groups: int, eta: float = 0.01) -> None:
        self.q, self.eta = torch.full((n_groups,), 1 / n_groups), eta

    def __call__(self, losses: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """The q-weighted sum of per-group mean losses; groups absent from the batch keep their weight."""
        q = self.q.to(losses.device)
        count = torch.zeros_like(q).index_add_(0, groups, torch.ones_like(losses))
        group_loss = torch.zeros_like(q).index_add_(0, groups, losses) / count.clamp_min(1)
        q = q * torch.exp(self.eta * group_loss.detach() * (count > 0))
        self.q = q / q.sum()
        return (self.q * group_loss).sum()


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    sample_weights: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
    dro_eta: float = 0.01,
    dilated: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = False,
    network: str = "resnet18",
) -> torch.nn.Module:
    """Train on uint8 ``images`` (N, 3, H, W); ``augment`` maps a uint8 batch to a uint8 batch.

    ``sample_weights`` draws batches with those probabilities (e.g. group-balanced reweighting).
    ``groups`` (N,) switches to GroupDRO (Sagawa et al. 2020): the loss is a weighted sum of
    per-group mean losses, and each step multiplies a group's weight by exp(dro_eta * its loss),
    so the worst groups come to dominate. Groups absent from a batch keep their weight.
    ``dilated``: see `resnet18_classifier`; ``network``: ``"resnet18"`` or ``"cnn"`` (`small_cnn`).
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = classifier_network(network, num_classes, dilated).to(device)
    # fused: one kernel for all 62 parameter tensors; the per-tensor loop took a third of a CPU step
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4, fused=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    if groups is not None:
        group_ids, groups = torch.unique(groups, return_inverse=True)
        dro = GroupDRO(len(group_ids), dro_eta)
    model.train()
    for _ in tqdm(range(steps), desc=network, unit="step", disable=not progress, leave=False):
        if sample_weights is None:
            idx = torch.randint(len(images), (batch_size,), generator=generator)
        else:
            idx = torch.multinomial(sample_weights, batch_size, replacement=True, generator=generator)
        batch = images[idx]
        if augment is not None:
            batch = augment(batch)
        losses = F.cross_entropy(model(to_float(batch).to(device)), labels[idx].to(device), reduction="none")
        loss = losses.mean() if groups is None else dro(losses, groups[idx].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    return predict_proba(model, images, batch_size).argmax(1)


@torch.no_grad()
def predict_proba(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """(N, classes) softmax probabilities of uint8 ``images``."""
    device = next(model.parameters()).device
    model.eval()
    return torch.cat([model(to_float(c).to(device)).softmax(1).cpu() for c in images.split(batch_size)])


def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predict(model, images) == labels).float().mean())
