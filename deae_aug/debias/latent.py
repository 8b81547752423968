"""``Debiaser``: classify from DEAE latent codes with the bias attributes' blocks dropped.

A classifier cannot use what it never sees: with the background block removed from its input,
a letter classifier trained on letters that always appear on one background cannot learn the
background shortcut (paper 3.5). But the encoder's other blocks can still carry the background
(a linear probe reads it from the letter block of a model trained on D_B), so ``counterfactuals``
adds, per training image, codes of the same image with a random training image's bias blocks
swapped in, decoded and re-encoded (DEAE's own L_reg at t = 1): the classifier then sees each
letter under every background as the encoder sees it. ``test_counterfactuals`` does the same at
prediction time: it averages the classifier's probabilities over copies of the test image's code
with training images' bias blocks swapped in, so a test image is classified as it would look on
the backgrounds the classifier was trained on. On Fonts that costs more than it gains (a decoded
copy loses letter detail; benchmarks/diagnostics/debias_validation.py), so it is off by default.

A scikit-learn estimator: ``__init__`` only stores, ``fit`` validates and returns self, and
``get_params``, ``clone`` and ``check_is_fitted`` work; it reads images, not feature arrays.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelBinarizer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from deae_aug.errors import UserError
from deae_aug.explore.latent import decode, encode
from deae_aug.io import atomic_path
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.training.run import Run

CLASSIFIERS = ("logistic", "mlp")


class Debiaser(ClassifierMixin, BaseEstimator):
    """Parameters
    ----------
    model : trained autoencoder whose blocks follow ``names``
    names : attribute names in block order (the run's schema)
    label : the attribute to predict; its block is always kept
    bias : attributes whose blocks are dropped from the classifier's input
    classifier : ``"logistic"`` (logistic regression) or ``"mlp"`` (one hidden layer of 256)
    random_state : seeds the classifier and the counterfactual draws
    counterfactuals : swapped-bias copies of each training code to add (0: the paper's method)
    test_counterfactuals : swapped-bias copies of each test code to average predictions over
        (0: classify the image's own code)
    """

    def __init__(
        self,
        model: Autoencoder,
        names: Sequence[str],
        label: str,
        bias: Sequence[str],
        classifier: str = "logistic",
        random_state: int = 0,
        counterfactuals: int = 0,
        test_counterfactuals: int = 0,
    ) -> None:
        self.model = model
        self.names = names
        self.label = label
        self.bias = bias
        self.classifier = classifier
        self.random_state = random_state
        self.counterfactuals = counterfactuals
        self.test_counterfactuals = test_counterfactuals

    @classmethod
    def from_run(cls, run: str | Path, bias: str | Sequence[str], device: str = "cpu", **params) -> Debiaser:
        """A Debiaser on a trained run: the model, the attribute names and the label (the run's
        ``split.label``) come from the run folder; ``params`` are the other constructor arguments."""
        folder = Run(run)
        model, _ = folder.load(device)
        names, label = folder.attributes()
        if label is None:
            raise UserError(
                f"Debiaser.from_run: the recipe of {run} names no split.label; "
                "build Debiaser(model, names, label, bias) instead"
            )
        return cls(model, list(names), label, [bias] if isinstance(bias, str) else list(bias), **params)

    def _validate(self) -> None:
        for name in (self.label, *self.bias):
            if name not in self.names:
                raise UserError(f"Debiaser: attribute {name!r} is not in the schema {list(self.names)}")
        if self.label in self.bias:
            raise UserError(f"Debiaser: the label {self.label!r} cannot also be a dropped bias attribute")
        if not self.bias:
            raise UserError("Debiaser: name at least one bias attribute to drop")
        if self.classifier not in CLASSIFIERS:
            raise UserError(f"Debiaser classifier must be one of {CLASSIFIERS}, got {self.classifier!r}")
        for key in ("random_state", "counterfactuals", "test_counterfactuals"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UserError(f"Debiaser {key} must be an integer >= 0, got {value!r}")

    @property
    def bias_dims(self) -> np.ndarray:
        blocks = [self.model.blocks[list(self.names).index(b)] for b in self.bias]
        return np.concatenate([np.arange(s.start, s.stop) for s in blocks])

    @property
    def kept_dims(self) -> np.ndarray:
        """Latent dimensions the classifier sees: every block except the bias attributes'."""
        return np.setdiff1d(np.arange(self.model.cfg.latent_dim), self.bias_dims)

    def features(self, images: torch.Tensor) -> np.ndarray:
        """(N, kept dims) codes of uint8 or [-1, 1] float images."""
        return encode(self.model, images).numpy()[:, self.kept_dims]

    def swapped_copies(
        self, codes: torch.Tensor, donors: torch.Tensor, copies: int, seed: int
    ) -> torch.Tensor:
        """``copies`` stacked copies of ``codes``, each with the bias dims of random ``donors`` rows
        swapped in, decoded and re-encoded."""
        generator = torch.Generator().manual_seed(seed)
        dims = torch.from_numpy(self.bias_dims)
        out = []
        for _ in range(copies):
            swapped = codes.clone()
            swapped[:, dims] = donors[torch.randint(len(donors), (len(codes),), generator=generator)]
            out.append(encode(self.model, decode(self.model, swapped)))
        return torch.cat(out)

    def counterfactual_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """``counterfactuals`` copies of ``codes``, each with the bias blocks of random rows, re-encoded."""
        donors = codes[:, torch.from_numpy(self.bias_dims)]
        return self.swapped_copies(codes, donors, self.counterfactuals, self.random_state)

    def fit(self, images: torch.Tensor, labels: np.ndarray | torch.Tensor) -> Debiaser:
        self._validate()
        codes, labels = encode(self.model, images), np.asarray(labels)
        self.donors_ = codes[:, torch.from_numpy(self.bias_dims)]  # what test copies draw from
        if self.counterfactuals:
            codes = torch.cat([codes, self.counterfactual_codes(codes)])
            labels = np.tile(labels, 1 + self.counterfactuals)
        if self.classifier == "logistic":
            head = LogisticRegression(max_iter=2000, C=1.0, random_state=self.random_state)
        else:
            head = MLPClassifier(hidden_layer_sizes=(256,), max_iter=500, random_state=self.random_state)
        self.pipeline_ = make_pipeline(StandardScaler(), head)
        self.pipeline_.fit(codes.numpy()[:, self.kept_dims], labels)
        self.classes_ = self.pipeline_.classes_
        return self

    def _check_fitted(self) -> None:
        try:
            check_is_fitted(self, "pipeline_")
        except NotFittedError:
            raise UserError("Debiaser is not fitted yet; call fit(images, labels) first") from None

    def predict(self, images: torch.Tensor) -> np.ndarray:
        proba = self.predict_proba(images)
        return self.classes_[proba.argmax(axis=1)]

    def predict_proba(self, images: torch.Tensor) -> np.ndarray:
        self._check_fitted()
        codes = encode(self.model, images)
        n, copies = len(codes), self.test_counterfactuals
        if copies:
            codes = self.swapped_copies(codes, self.donors_, copies, self.random_state + 1)
        proba = self.pipeline_.predict_proba(codes.numpy()[:, self.kept_dims])
        return proba.reshape(max(copies, 1), n, -1).mean(axis=0)

    def save(self, path: str | Path) -> Path:
        """The fitted scaler and head as safetensors arrays (loading executes no code)."""
        self._check_fitted()
        scaler, head = self.pipeline_[0], self.pipeline_[-1]
        arrays = {
            "scaler.mean": scaler.mean_,
            "scaler.scale": scaler.scale_,
            "classes": self.classes_,
            "donors": self.donors_.numpy(),
        }
        if self.classifier == "logistic":
            arrays |= {"coef": head.coef_, "intercept": head.intercept_}
        else:
            for i, (w, b) in enumerate(zip(head.coefs_, head.intercepts_, strict=True)):
                arrays |= {f"coef.{i}": w, f"intercept.{i}": b}
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        meta = {
            "names": json.dumps(list(self.names)),
            "label": self.label,
            "bias": json.dumps(list(self.bias)),
            "classifier": self.classifier,
            "seed": str(self.random_state),
            "test_counterfactuals": str(self.test_counterfactuals),
            "out_activation": getattr(head, "out_activation_", ""),
        }
        with atomic_path(path) as tmp:
            save_file(tensors, tmp, metadata=meta)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, model: Autoencoder) -> Debiaser:
        with safe_open(path, "pt") as f:
            meta, arrays = f.metadata(), {k: f.get_tensor(k).numpy() for k in f.keys()}  # noqa: SIM118
        deb = cls(
            model,
            json.loads(meta["names"]),
            meta["label"],
            json.loads(meta["bias"]),
            meta["classifier"],
            random_state=int(meta.get("seed", 0)),
            test_counterfactuals=int(meta.get("test_counterfactuals", 0)),
        )
        deb.donors_ = torch.from_numpy(arrays["donors"]) if "donors" in arrays else torch.empty(0)
        scaler = StandardScaler()
        scaler.mean_, scaler.scale_ = arrays["scaler.mean"], arrays["scaler.scale"]
        scaler.var_, scaler.n_features_in_ = scaler.scale_**2, len(scaler.mean_)
        if deb.classifier == "logistic":
            head = LogisticRegression()
            head.coef_, head.intercept_ = arrays["coef"], arrays["intercept"]
        else:
            head = MLPClassifier(hidden_layer_sizes=(256,))
            n = len([k for k in arrays if k.startswith("coef.")])
            head.coefs_ = [arrays[f"coef.{i}"] for i in range(n)]
            head.intercepts_ = [arrays[f"intercept.{i}"] for i in range(n)]
            head.n_layers_, head.out_activation_ = n + 1, meta["out_activation"]
            head.n_outputs_ = head.coefs_[-1].shape[1]
            head._label_binarizer = LabelBinarizer().fit(arrays["classes"])
        head.classes_, head.n_features_in_ = arrays["classes"], len(scaler.mean_)
        deb.pipeline_, deb.classes_ = make_pipeline(scaler, head), arrays["classes"]
        return deb
