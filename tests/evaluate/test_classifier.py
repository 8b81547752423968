import torch

from deae_aug.evaluate.classifier import GroupDRO


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
