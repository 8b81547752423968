import pytest
import torch

from deae_aug.evaluate.classifier import GroupDRO, enlarge, resnet18_classifier


def test_group_dro_shifts_weight_to_the_worst_group():
    dro = GroupDRO(3, eta=0.5)
    losses = torch.tensor([0.1, 0.1, 2.0, 2.0])
    groups = torch.tensor([0, 0, 1, 1])  # group 2 is absent from every batch
    for _ in range(10):
        loss = dro(losses, groups)
    assert dro.q[1] > 0.9  # the hard group dominates
    assert dro.q[0] > dro.q[2]  # an absent group never grows
    assert torch.isclose(dro.q.sum(), torch.tensor(1.0))
    assert loss > losses.mean()  # the robust loss weighs the hard group above its share


def test_group_dro_loss_is_differentiable():
    losses = torch.tensor([0.5, 1.5], requires_grad=True)
    GroupDRO(2)(losses, torch.tensor([0, 1])).backward()
    assert losses.grad is not None and (losses.grad > 0).all()


def test_enlarge_keeps_uint8_and_flat_regions():
    images = torch.zeros((2, 3, 32, 32), dtype=torch.uint8)
    images[:, 0, :16] = 200  # top half red
    big = enlarge(images, 2)
    assert big.shape == (2, 3, 64, 64) and big.dtype == torch.uint8
    assert (big[:, 0, :30] == 200).all() and (big[:, 0, 34:] == 0).all()  # blended only at the edge
    assert enlarge(images, 1) is images
    with pytest.raises(ValueError, match="scale"):
        enlarge(images, 0)


def test_dilated_resnet18_keeps_8x8_maps_at_64px_with_the_same_weights():
    standard, dilated = resnet18_classifier(5), resnet18_classifier(5, dilated=True)
    shapes = {}
    for name in ("layer2", "layer3", "layer4"):
        for tag, model in (("standard", standard), ("dilated", dilated)):
            getattr(model, name).register_forward_hook(
                lambda m, i, o, key=(tag, name): shapes.__setitem__(key, tuple(o.shape[-2:]))
            )
    x = torch.rand(1, 3, 64, 64)
    assert standard(x).shape == dilated(x).shape == (1, 5)
    assert [shapes["standard", n] for n in ("layer2", "layer3", "layer4")] == [(8, 8), (4, 4), (2, 2)]
    assert [shapes["dilated", n] for n in ("layer2", "layer3", "layer4")] == [(8, 8), (8, 8), (8, 8)]
    assert dilated.layer4[1].conv2.dilation == (4, 4)  # the receptive field grows as the strides did
    # the same names and shapes: the file name and fingerprint, not the weights, record the architecture
    assert {k: v.shape for k, v in standard.state_dict().items()} == {
        k: v.shape for k, v in dilated.state_dict().items()
    }
