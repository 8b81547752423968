import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from deae_aug.evaluate.gradcam import glyph_focus, gradcam_layer, gradcam_maps


class GlyphOrGroundNet(nn.Module):
    """Class 0 counts bright pixels (the glyph), class 1 counts dark ones (the background)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Conv2d(3, 2, kernel_size=4, stride=4)  # 32 px -> 8x8, like ResNet's layer1
        with torch.no_grad():
            self.layer1.weight[0], self.layer1.weight[1] = 1 / 48, -1 / 48
            self.layer1.bias.copy_(torch.tensor([0.0, 1.0]))
        self.relu = nn.ReLU(inplace=True)  # the in-place pitfall, right after the hooked layer

    def forward(self, x):
        return self.relu(self.layer1((x + 1) / 2)).flatten(2).sum(2)


def test_layer_choice_gives_at_least_8x8_maps():
    assert [gradcam_layer(r) for r in (32, 64, 128, 256)] == ["layer1", "layer2", "layer3", "layer4"]
    with pytest.raises(ValueError, match="too small"):
        gradcam_layer(16)


def test_gradcam_finds_what_the_class_depends_on():
    images = torch.zeros((4, 3, 32, 32), dtype=torch.uint8)
    glyph = torch.zeros(32, 32)
    glyph[8:24, 8:24] = 1  # a quarter of the image
    images[:, :, glyph.bool()] = 255
    maps = gradcam_maps(GlyphOrGroundNet(), images, torch.tensor([0, 0, 1, 1]))
    assert maps.shape == (4, 32, 32) and (maps >= 0).all()
    focus = glyph_focus(maps, glyph.expand(4, 32, 32))
    assert focus[:2].min() > 0.8  # the glyph class is explained by the glyph
    assert focus[2:].max() < 0.2  # the background class by the background


def test_glyph_focus_known_answers():
    mask = np.zeros((3, 8, 8), dtype=np.float32)
    mask[:, :2, :] = 1  # glyph: a quarter of the image
    maps = torch.zeros(3, 8, 8)
    maps[0, 0, 0] = 5.0  # all attribution on the glyph
    maps[1] = 1.0  # uniform attribution: the glyph's area share
    ratio = glyph_focus(maps, mask)
    assert ratio[0] == pytest.approx(1.0) and ratio[1] == pytest.approx(0.25)
    assert np.isnan(ratio[2])  # no positive attribution: undefined, not 0
    maps[0] = 0.0
    maps[0, 2, 5] = 1.0  # attribution one pixel below the glyph
    assert glyph_focus(maps, mask)[0] == 0.0 and glyph_focus(maps, mask, dilate=1)[0] == 1.0


def test_gradcam_on_resnet18_at_64px_uses_layer2_and_keeps_the_model_intact():
    torch.manual_seed(0)
    model = resnet18(num_classes=3).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    maps = gradcam_maps(model, images, torch.tensor([0, 2]))
    assert maps.shape == (2, 64, 64) and torch.isfinite(maps).all()
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))  # the caller's model untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
