"""``Run``: a run folder as one object, for the trainer and for inference alike."""

import pytest
import torch

from deae_aug.errors import UserError
from deae_aug.training.run import Run
from deae_aug.training.trainer import ensure_trained, train

from .test_trainer import tiny


def test_a_run_knows_its_checkpoint_recipe_attributes_and_model(tmp_path):
    empty = Run(tmp_path / "none")
    assert not empty.trained
    with pytest.raises(UserError, match=r"holds no checkpoint; train one with `deae-aug train"):
        empty.meta()
    trained = train(tiny(steps=3), tmp_path / "run", device="cpu", progress=False)
    run = Run(tmp_path / "run")
    assert run.trained and run.checkpoint.name == "step_0000003" and run.finished()
    assert not run.finished(tiny(steps=6))  # a longer recipe would resume it
    assert run.recipe().train.steps == 3 and run.attributes() == (
        ("letter", "size", "font_color", "bg_color", "font"),
        None,
    )
    assert len(run.training_split()) > 0
    model, meta = run.load()
    assert meta["step"] == 3 and not model.training
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), trained.state_dict().values(), strict=True)
    )
    assert Run(run.checkpoint).meta() == meta  # a checkpoint folder reads as its own run
    run.check(tiny(steps=6))  # more steps: the same model, further on
    with pytest.raises(
        UserError, match=r"train.lr: checkpoint has 0.002, recipe gives 0.001\); pick another"
    ):
        run.check(tiny(steps=3, lr=1e-3))
    assert (
        ensure_trained(tiny(steps=3), tmp_path / "run", device="cpu", progress=False) is not trained
    )  # loaded
