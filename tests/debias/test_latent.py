import numpy as np
import pytest
import torch

from deae_aug.data.schema import Attribute, AttributeSchema
from deae_aug.debias import latent as latent_module
from deae_aug.debias.latent import Debiaser
from deae_aug.errors import UserError
from deae_aug.evaluate.fairness import accuracy_by_value, bias_sensitivity, group_report, worst_group_odds
from deae_aug.models.autoencoder import Autoencoder, ModelConfig

NAMES = ("letter", "size", "font_color", "bg_color", "font")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Autoencoder(
        ModelConfig(variant="deae", resolution=16, block_sizes=[3, 2, 2, 4, 2], widths=[8, 16], fc=16)
    )


def test_bias_blocks_are_absent_from_the_classifier_input(model, monkeypatch):
    deb = Debiaser(model, NAMES, "letter", ["bg_color"])
    bg = model.blocks[3]
    assert not set(range(bg.start, bg.stop)) & set(deb.kept_dims.tolist())
    assert len(deb.kept_dims) == model.cfg.latent_dim - 4

    rng = np.random.default_rng(0)
    codes = torch.from_numpy(rng.standard_normal((60, 13)).astype(np.float32))
    labels = (codes[:, 0] > 0).long().numpy()  # the label lives in the letter block
    monkeypatch.setattr(latent_module, "encode", lambda m, images: images)  # "images" are codes here
    deb.fit(codes, labels)
    shuffled_bias = codes.clone()
    shuffled_bias[:, bg] = torch.from_numpy(rng.standard_normal((60, 4)).astype(np.float32)) * 100
    assert np.array_equal(deb.predict_proba(codes), deb.predict_proba(shuffled_bias))  # bias unseen
    moved_letter = codes.clone()
    moved_letter[:, 0] = -moved_letter[:, 0]
    assert (deb.predict(moved_letter) != deb.predict(codes)).mean() > 0.8  # the label block is used
    assert (deb.predict(codes) == labels).mean() > 0.95


def test_errors_name_the_problem(model):
    with pytest.raises(UserError, match="cannot also be a dropped bias"):
        Debiaser(model, NAMES, "letter", ["letter"]).fit(torch.zeros(2, 3, 16, 16), [0, 1])
    with pytest.raises(UserError, match="'background'"):
        Debiaser(model, NAMES, "letter", ["background"]).fit(torch.zeros(2, 3, 16, 16), [0, 1])
    with pytest.raises(UserError, match="classifier"):
        Debiaser(model, NAMES, "letter", ["bg_color"], classifier="forest").fit(
            torch.zeros(2, 3, 16, 16), [0, 1]
        )
    with pytest.raises(UserError, match="not fitted"):
        Debiaser(model, NAMES, "letter", ["bg_color"]).predict(torch.zeros(2, 3, 16, 16))


def test_debiaser_is_a_scikit_learn_estimator(model, monkeypatch):
    from sklearn.base import clone, is_classifier
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    bias = ["bg_color"]
    deb = Debiaser(model, list(NAMES), "letter", bias, classifier="mlp", random_state=3, counterfactuals=2)
    assert deb.bias is bias  # __init__ stores its arguments as given
    params = deb.get_params()
    assert params["random_state"] == 3 and params["counterfactuals"] == 2 and params["classifier"] == "mlp"
    assert is_classifier(deb)
    with pytest.raises(NotFittedError):
        check_is_fitted(deb)
    twin = clone(deb.set_params(classifier="logistic", counterfactuals=0))
    assert twin is not deb and twin.get_params()["classifier"] == "logistic"
    codes = torch.from_numpy(np.random.default_rng(0).standard_normal((40, 13)).astype(np.float32))
    labels = (codes[:, 0] > 0).long().numpy()
    monkeypatch.setattr(latent_module, "encode", lambda m, images: images)
    assert twin.fit(codes, labels) is twin
    check_is_fitted(twin)
    assert twin.score(codes, labels) > 0.9


def test_group_report_on_a_known_case():
    labels = np.array([0, 0, 1, 1, 0, 1])
    bias = np.array([0, 1, 0, 1, 0, 1])
    predicted = np.array([0, 1, 1, 1, 0, 0])  # group (0,1) wrong, one of group (1,1) wrong
    conflicting = np.array([False, True, True, False, False, False])
    report = group_report(predicted, labels, bias, conflicting)
    assert report["unbiased"] == pytest.approx(4 / 6)
    assert report["worst_group"] == 0.0 and report["groups"] == 4
    assert report["worst_group_at"] == (0, 1) and report["worst_group_size"] == 1
    assert report["worst_group_correct"] == 0
    assert report["bias_conflicting"] == pytest.approx(0.5)


def test_accuracy_by_value_finds_the_attribute_the_misses_share():
    schema = AttributeSchema(
        (Attribute("size", ("small", "large")), Attribute("bg", ("red", "blue", "pink")))
    )
    factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [0, 0], [1, 1]])  # no pink image
    hit = np.array([False, False, True, True, True, True])  # two of the three small images missed
    report = accuracy_by_value(hit, factors, schema, ["size", "bg"])
    assert report["size"] == pytest.approx({"small": 1 / 3, "large": 1.0})
    assert report["bg"] == pytest.approx({"red": 2 / 3, "blue": 2 / 3})  # absent values left out


def test_bias_sensitivity_on_a_known_case():
    labels = np.array([0, 1, 2])
    predicted = np.array([[0, 0, 0], [1, 1, 0], [0, 1, 2]])  # blind, one flip, follows the bias
    report = bias_sensitivity(predicted, labels)
    assert report["changed"] == pytest.approx(2 / 3)
    assert report["agreement"] == pytest.approx((1 + 2 / 3 + 1 / 3) / 3)
    assert report["correct_on_all"] == pytest.approx(1 / 3)


def test_worst_group_odds_on_known_cases():
    # under 20 images no miss is allowed at 95%; 20 images allow one
    assert worst_group_odds([2, 19], 0.9) == pytest.approx(0.9**21)
    assert worst_group_odds([20], 0.9) == pytest.approx(0.9**20 + 20 * 0.1 * 0.9**19)
    assert worst_group_odds([5, 40], 1.0) == 1.0
    assert worst_group_odds([10], 0.99, threshold=0.9) > worst_group_odds([10], 0.99)


@pytest.mark.parametrize("classifier", ["logistic", "mlp"])
def test_save_and_load_give_the_same_predictions(model, monkeypatch, tmp_path, classifier):
    rng = np.random.default_rng(1)
    codes = torch.from_numpy(rng.standard_normal((80, 13)).astype(np.float32))
    labels = (codes[:, 0] > 0).long().numpy() + 2 * (codes[:, 1] > 0).long().numpy()  # 4 classes
    monkeypatch.setattr(latent_module, "encode", lambda m, images: images)
    deb = Debiaser(model, NAMES, "letter", ["bg_color"], classifier=classifier).fit(codes, labels)
    loaded = Debiaser.load(deb.save(tmp_path / "clf.safetensors"), model)
    assert torch.equal(loaded.donors_, deb.donors_)
    assert list(loaded.bias) == ["bg_color"] and loaded.label == "letter"
    assert np.allclose(loaded.predict_proba(codes), deb.predict_proba(codes), atol=1e-6)
    assert np.array_equal(loaded.predict(codes), deb.predict(codes))


def test_counterfactuals_remove_a_bias_leaked_into_the_label_block(model, monkeypatch):
    """An encoder that copies the background into the letter block defeats dropping the
    background block; re-encoded swapped-background copies teach the classifier to ignore it."""
    bg = model.blocks[3]

    def leaky_encode(m, images):  # "images" are codes; letter dim 1 repeats the background
        out = images.clone()
        out[:, 1] = images[:, bg.start]
        return out

    monkeypatch.setattr(latent_module, "encode", leaky_encode)
    monkeypatch.setattr(latent_module, "decode", lambda m, codes: codes)
    rng = np.random.default_rng(0)

    def sample(n: int, biased: bool) -> tuple[torch.Tensor, np.ndarray]:
        labels = rng.integers(0, 2, n)
        codes = rng.standard_normal((n, 13)).astype(np.float32)
        codes[:, 0] += 2 * labels - 1  # a weak letter signal
        side = labels if biased else rng.integers(0, 2, n)
        codes[:, bg.start] = 4 * side - 2  # the background: the label itself in the biased set
        return torch.from_numpy(codes), labels

    train, y_train = sample(400, biased=True)
    test, y_test = sample(400, biased=False)
    plain = Debiaser(model, NAMES, "letter", ["bg_color"]).fit(train, y_train)
    debiased = Debiaser(model, NAMES, "letter", ["bg_color"], counterfactuals=3).fit(train, y_train)
    plain_acc = (plain.predict(test) == y_test).mean()
    debiased_acc = (debiased.predict(test) == y_test).mean()
    assert debiased_acc > 0.75 and debiased_acc > plain_acc + 0.15, (plain_acc, debiased_acc)

    copies = debiased.counterfactual_codes(train)
    assert copies.shape == (3 * 400, 13)
    kept = [0, *range(2, bg.start), *range(bg.stop, 13)]
    assert torch.equal(copies[:400, kept], train[:, kept])  # only the bias block (and its leak) moved
    assert not torch.equal(copies[:400, bg], train[:, bg])
    with pytest.raises(UserError, match="counterfactuals"):
        Debiaser(model, NAMES, "letter", ["bg_color"], counterfactuals=-1).fit(train, y_train)

    # at test time: averaging over training backgrounds makes the image's own background irrelevant
    averaged = Debiaser(model, NAMES, "letter", ["bg_color"], counterfactuals=3, test_counterfactuals=8).fit(
        train, y_train
    )
    moved_bias = test.clone()
    moved_bias[:, bg.start] = -moved_bias[:, bg.start]
    assert np.allclose(averaged.predict_proba(test), averaged.predict_proba(moved_bias))
    assert not np.allclose(plain.predict_proba(test), plain.predict_proba(moved_bias))
    averaged_acc = (averaged.predict(test) == y_test).mean()
    assert averaged_acc > plain_acc + 0.15, (plain_acc, averaged_acc)
    with pytest.raises(UserError, match="test_counterfactuals"):
        Debiaser(model, NAMES, "letter", ["bg_color"], test_counterfactuals=1.5).fit(train, y_train)
