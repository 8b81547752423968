"""``DEAEAugment``: a torchvision v2 transform that changes chosen attributes of an image through DEAE.

``make_params`` encodes the image and draws which attributes to change and how: a partner code
from a bank of training codes whose value differs from the image's and how far to move (t), a
step along a unit direction, or a new colour; ``transform`` moves those latent blocks and
decodes. Every other block, including the label's, is left exactly as encoded.
``deae-aug augment`` runs the same edits through ``augment_batch``.

The model and the bank are loaded lazily, once per process, so the transform pickles into
DataLoader workers as a run path rather than a copy of the weights.
"""

from __future__ import annotations

import colorsys
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F  # noqa: N812
from torch.utils.data import get_worker_info
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF  # noqa: N812
from torchvision.transforms.v2._utils import is_pure_tensor

from deae_aug.data.dataset import load_images, to_float
from deae_aug.data.fonts import MIN_CONTRAST, format_color, parse_color
from deae_aug.errors import UserError
from deae_aug.explore.directions import block_scale, unit_directions, value_centres
from deae_aug.explore.latent import encode, interpolate, repaint, repaint_edit
from deae_aug.models.autoencoder import Autoencoder
from deae_aug.training.run import Run

MODES = ("interpolate", "swap", "udv", "novel")
BRIGHTNESS = ("any", "seen")


def brightness_range(colours: np.ndarray) -> tuple[float, float]:
    """The lowest and highest HSV value (brightest channel, 0-1) of (N, 3) colours in 0-255."""
    value = np.asarray(colours, dtype=np.float64).max(1) / 255
    return float(value.min()), float(value.max())


def colour_at_brightness(uniforms: Sequence[float], low: float, high: float) -> np.ndarray:
    """RGB (0-255) from three uniforms in [0, 1): any hue and saturation, HSV value in [low, high].
    A garment seen only in light colours gets a new light colour, a dark background a new dark one."""
    hue, saturation, u = uniforms
    return np.round(np.array(colorsys.hsv_to_rgb(hue, saturation, low + (high - low) * u)) * 255)


def legible_colour(draw: Callable[[bool], Any], others: Sequence[Any]) -> Any:
    """The first colour ``draw`` makes at least ``MIN_CONTRAST`` from each of ``others``, so a glyph
    never vanishes into its background. After 100 draws ``draw(True)`` is asked for a colour
    anywhere in RGB: a narrow brightness range may hold none far enough."""
    colour, tries = draw(False), 1
    while any(
        np.linalg.norm(np.asarray(colour, np.float64) - np.asarray(o, np.float64)) < MIN_CONTRAST
        for o in others
    ):
        colour, tries = draw(tries >= 100), tries + 1
    return colour


def colour_layers(model: Autoencoder, names: Sequence[str], attributes: Sequence[str]) -> list[str]:
    """The attributes a ``novel`` edit repaints with new colours: those of ``attributes`` that are
    colour layers of the model (``model.style`` with ``style_mode: layers``)."""
    if model.decoder.paint is None:
        raise UserError(
            "mode novel paints new colours, which needs colour attributes in model.style "
            "with model.style_mode: layers"
        )
    return [names[k] for k in model.cfg.style if names[k] in attributes]


class DEAEAugment(v2.Transform):
    """Change some of ``attributes`` per image by moving their latent blocks towards bank codes.

    Parameters
    ----------
    run : run folder of a trained DEAE (loaded lazily in each process), or an ``Autoencoder``
    attributes : attributes that may change; default every attribute not protected
    protect : attributes that never change; the run's label attribute is always added
    mode : ``"interpolate"`` (towards a partner, a bank code whose value differs from the
        image's, by t from ``t_range``: values between the training ones), ``"swap"`` (t = 1: a
        training value), ``"udv"`` (t block-scales along the unit direction of another value) or
        ``"novel"`` (colour layers, ``model.style`` with ``style_mode: layers``, get a new colour,
        uniform in RGB and at least ``MIN_CONTRAST`` from the image's other colours: values never
        seen in training; other attributes interpolate; see ``brightness``). The image's own value
        is read as the nearest bank value centre, so all but ``"swap"`` with an unlabelled bank need
        ``bank_factors`` (a run's bank has them); without them a partner is any bank code
    p : probability of changing an image at all
    t_range : range of t, (0.25, 1) as ``augment.t_range``: a t near 0 barely changes the image
    edits : (fewest, most) attributes an image changes at once, the count uniform (as the
        recipe's ``augment.edits``; several edits reach combinations one edit never does)
    bank : (N, 3, H, W) images whose codes are the partners; default the run's training split
    seed : seeds the draws; a DataLoader worker mixes in its torch.initial_seed(), new per epoch
    resize : resize inputs of another size to the model's resolution and back, instead of failing
    residual : return the input plus the decoded change, D(z') - D(z), rather than D(z'): the
        image keeps its own detail (a sharp glyph) and only the edit comes from the model
    brightness : ``"any"`` (new colours uniform in RGB) or ``"seen"`` (any hue and saturation,
        the HSV value within the range the layer paints over the bank: a layer seen only light stays
        light, so light garments on dark backgrounds stay so)
    repaint : recolour the input's own pixels (`recolour`: coverage solved from its RGB and the
        model's palette) for the colour layers' edits; other blocks' edits are added as residual.
        A photograph keeps its texture and shading, which a decoded coverage smooths away
    """

    # images only: masks, boxes, labels and other entries of a sample pass through untouched
    _transformed_types = (tv_tensors.Image, PIL.Image.Image, is_pure_tensor)

    def __init__(
        self,
        run: str | Path | Autoencoder,
        attributes: Sequence[str] | None = None,
        protect: Sequence[str] = (),
        mode: str = "interpolate",
        p: float = 1.0,
        t_range: tuple[float, float] = (0.25, 1.0),
        bank: torch.Tensor | None = None,
        bank_factors: torch.Tensor | None = None,
        schema_names: Sequence[str] | None = None,
        seed: int | None = None,
        resize: bool = False,
        residual: bool = False,
        device: str = "cpu",
        repaint: bool = False,
        edits: tuple[int, int] = (1, 1),
        brightness: str = "any",
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise UserError(f"DEAEAugment mode must be one of {MODES}, got {mode!r}")
        if brightness not in BRIGHTNESS:
            raise UserError(f"DEAEAugment brightness must be one of {BRIGHTNESS}, got {brightness!r}")
        if not 0.0 <= p <= 1.0:
            raise UserError(f"DEAEAugment p must lie in [0, 1], got {p}")
        if not t_range[0] <= t_range[1]:
            raise UserError(f"DEAEAugment t_range must be (low, high) with low <= high, got {t_range}")
        self.run = None if isinstance(run, Autoencoder) else str(run)
        self.mode, self.p, self.t_range = mode, p, tuple(t_range)
        if residual and repaint:
            raise UserError("DEAEAugment: choose residual or repaint, not both")
        self.seed, self.resize, self.residual, self.device = seed, resize, residual, device
        self.repaint, self.brightness = repaint, brightness
        self._cache: dict[str, Any] = {}  # model, bank codes, generator: rebuilt per process
        self._bank_images, self._bank_factors = bank, bank_factors
        if isinstance(run, Autoencoder):
            if schema_names is None:
                raise UserError("DEAEAugment with a model object needs schema_names (attribute order)")
            self._cache["model"] = run.eval()
            names, label = tuple(schema_names), None
        else:
            names, label = self._run_names()
        protected = set(protect) | ({label} if label else set())
        for name in [*protected, *(attributes or ())]:
            if name not in names:
                raise UserError(f"DEAEAugment: unknown attribute {name!r}; the model has {list(names)}")
        chosen = [n for n in names if n not in protected] if attributes is None else list(attributes)
        clash = protected.intersection(chosen)
        if clash:
            raise UserError(
                f"DEAEAugment: attributes {sorted(clash)} are protected and cannot also be varied"
            )
        if not chosen:
            raise UserError("DEAEAugment: no attribute left to vary")
        if not 1 <= edits[0] <= edits[1] <= len(chosen):
            raise UserError(
                f"DEAEAugment edits must be (low, high) with 1 <= low <= high <= {len(chosen)}, the "
                f"attributes it may change ({chosen}); got {tuple(edits)}"
            )
        self.names, self.attributes, self.protected = names, tuple(chosen), tuple(sorted(protected))
        self.edits = tuple(edits)
        self.last_params: dict[str, Any] | None = None

    def _run_names(self) -> tuple[tuple[str, ...], str | None]:
        folder = Run(self.run)
        if not folder.trained:
            raise UserError(f"DEAEAugment: {self.run} holds no trained checkpoint")
        return folder.attributes()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if self.run is not None:  # workers reload from the run folder
            state["_cache"] = {}
        else:
            state["_cache"] = {"model": self._cache["model"]}
        return state

    # -- lazily built state ----------------------------------------------------------------
    @property
    def model(self) -> Autoencoder:
        if "model" not in self._cache:
            self._cache["model"] = Run(self.run).load(self.device)[0]
        return self._cache["model"]

    @property
    def bank(self) -> torch.Tensor:
        """(N, D) partner codes."""
        if "bank" not in self._cache:
            images = self._bank_images
            if images is None:
                if self.run is None:
                    raise UserError("DEAEAugment with a model object needs bank= images")
                split = Run(self.run).training_split()
                images, self._bank_factors = load_images(split), torch.from_numpy(split.factors)
            self._cache["bank"] = encode(self.model, images)
        return self._cache["bank"]

    def directions(self, k: int) -> tuple[torch.Tensor, float]:
        """(n_values, d) UDVs of attribute k's values and the block's scale, from the bank."""
        key = f"udv{k}"
        if key not in self._cache:
            block, values = self._labelled_bank(k)
            udv = unit_directions(block, values, int(values.max()) + 1, seed=self.seed or 0)
            self._cache[key] = (torch.from_numpy(udv), block_scale(block, values))
        return self._cache[key]

    def _labelled_bank(self, k: int) -> tuple:
        """Block k of the bank codes and the bank's values of attribute k (numpy)."""
        codes = self.bank  # also fills the bank factors for a run
        if self._bank_factors is None:
            raise UserError(f"DEAEAugment mode {self.mode!r} needs bank_factors (labels of the bank images)")
        return codes[:, self.model.blocks[k]].numpy(), np.asarray(self._bank_factors)[:, k]

    def own_values(self, codes: torch.Tensor, k: int) -> torch.Tensor | None:
        """Each image's value of attribute k, read as the nearest bank value centre of its block
        (None without bank factors)."""
        if self._bank_factors is None and self._bank_images is not None:
            return None
        key = f"centres{k}"
        if key not in self._cache:
            block, values = self._labelled_bank(k)
            centres = value_centres(block, values, int(values.max()) + 1)
            present = np.flatnonzero(~np.isnan(centres).any(1))
            self._cache[key] = (torch.from_numpy(centres[present]), torch.from_numpy(present))
        centres, present = self._cache[key]
        return present[torch.cdist(codes[:, self.model.blocks[k]].float(), centres.float()).argmin(1)]

    def painted(self) -> list[str]:
        """The attributes ``mode="novel"`` repaints: those of ``attributes`` that are colour layers."""
        return colour_layers(self.model, self.names, self.attributes)

    def layer_colours(self, codes: torch.Tensor) -> dict[int, torch.Tensor]:
        """Attribute position -> (N, 3) colour (0-255) each colour layer paints for ``codes``."""
        model = self.model
        with torch.no_grad():
            return {
                k: (model.decoder.paint.colours[i](codes[:, model.blocks[k]]).clamp(-1, 1) + 1) * 127.5
                for i, k in enumerate(model.cfg.style)
            }

    def new_colour(self, k: int, anywhere: bool = False) -> torch.Tensor:
        """A new colour (0-255, float64) for colour layer k, as ``brightness`` asks (``anywhere``:
        uniform in RGB, when a narrow seen range leaves no colour far enough from the others)."""
        g = self.generator
        if self.brightness == "any" or anywhere:
            return torch.randint(0, 256, (3,), generator=g).double()
        key = f"brightness{k}"
        if key not in self._cache:
            self._cache[key] = brightness_range(self.layer_colours(self.bank)[k].numpy())
        return torch.from_numpy(colour_at_brightness(torch.rand(3, generator=g).tolist(), *self._cache[key]))

    @property
    def generator(self) -> torch.Generator:
        """The draws' generator, rebuilt in every process and DataLoader worker. A worker derives
        it from ``seed`` and its ``torch.initial_seed()``, which the DataLoader changes per worker
        and per epoch (torch's convention): reproducible when torch is seeded, yet no two workers
        or epochs repeat each other's draws, even when the main process drew before forking."""
        worker = get_worker_info()
        owner = (os.getpid(), None if worker is None else worker.seed)
        if self._cache.get("generator_owner") != owner:
            if worker is None:
                seed = self.seed if self.seed is not None else torch.initial_seed()
            else:
                seed = (self.seed or 0) * 1_000_003 + worker.seed
            self._cache["generator"] = torch.Generator().manual_seed(seed % 2**63)
            self._cache["generator_owner"] = owner
        return self._cache["generator"]

    # -- the v2 hooks ----------------------------------------------------------------------
    def draw(self, n: int, codes: torch.Tensor | None = None) -> list[dict[str, Any]]:
        """Draw the parameters of ``n`` augmentations (what ``make_params`` does per sample):
        whether to apply, and one edit per changed attribute: ``{"attribute", "t", "partner"}``
        (a bank row), ``{"attribute", "t", "value"}`` (``udv``) or ``{"attribute", "t": 1,
        "colour": "#rrggbb"}`` (``novel``). ``codes``, the images' own codes, let partners and
        directions differ from each image's value and new colours stand out from its other
        colours; without them a partner is any bank code and a colour is unchecked."""
        g = self.generator
        apply = (torch.rand(n, generator=g) < self.p).tolist()
        low, high = self.edits
        how_many = torch.randint(low, high + 1, (n, 1), generator=g)
        count = len(self.attributes)
        rank = torch.rand(n, count, generator=g).argsort(1).argsort(1)
        chosen = (rank < how_many).tolist()  # a random subset of how_many attributes per sample
        t_low, t_high = self.t_range
        if self.mode == "swap":
            t = [[1.0] * count] * n
        else:
            t = (t_low + (t_high - t_low) * torch.rand(n, count, generator=g)).tolist()
        paint = self.painted() if self.mode == "novel" else []
        positions = [self.names.index(a) for a in self.attributes]
        own = {k: self.own_values(codes, k) for k in positions} if codes is not None else {}
        colours = self.layer_colours(codes) if paint and codes is not None else {}
        bank_values = None if self._bank_factors is None else torch.as_tensor(np.asarray(self._bank_factors))
        params = []
        for i in range(n):
            edits, taken = [], [c[i] for c in colours.values()]
            for a in (a for a in range(count) if chosen[i][a]):
                name, k = self.attributes[a], positions[a]
                edit: dict[str, Any] = {"attribute": name, "t": round(t[i][a], 6)}
                own_value = own[k][i] if own.get(k) is not None else None
                if name in paint:
                    others = [c for j, c in zip(colours, taken, strict=True) if j != k]
                    colour = legible_colour(lambda anywhere, k=k: self.new_colour(k, anywhere), others)
                    if colours:
                        taken[list(colours).index(k)] = colour
                    edit |= {"t": 1.0, "colour": format_color(colour.numpy())}
                elif self.mode == "udv":
                    udv = self.directions(k)[0]
                    present = torch.nonzero(udv.abs().sum(1) > 0).flatten()
                    other = present[present != own_value] if own_value is not None else present
                    edit["value"] = int(other[torch.randint(len(other), (1,), generator=g)])
                else:
                    rows = None
                    if own_value is not None and bank_values is not None:
                        rows = torch.nonzero(bank_values[:, k] != own_value).flatten()
                    if rows is None or len(rows) == 0:  # unlabelled bank, or no other value in it
                        rows = torch.arange(len(self.bank))
                    edit["partner"] = int(rows[torch.randint(len(rows), (1,), generator=g)])
                edits.append(edit)
            params.append({"apply": apply[i], "edits": edits})
        return params

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        needed = self._needs_transform_list(flat_inputs)  # v2's rule: the entries transform() gets
        images = [x for x, need in zip(flat_inputs, needed, strict=True) if need]
        codes = None
        if images:
            image, _ = self._to_float_batch(images[0])
            codes = self._encode(image)
        self.last_params = self.draw(1, codes)[0]
        return self.last_params

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not params["apply"]:
            return inpt
        image, restore = self._to_float_batch(inpt)
        out = self._edit(image, [params] * len(image))  # a batch gets one draw, as every v2 transform
        return restore(out)

    # -- the batched form ------------------------------------------------------------------
    def augment_batch(
        self, images: torch.Tensor, params: list[dict[str, Any]] | None = None
    ) -> tuple[torch.Tensor, list[dict[str, Any]]]:
        """Augment a (B, 3, H, W) batch in one encode and one decode; returns images and params."""
        if images.ndim != 4:
            raise UserError(
                f"DEAEAugment.augment_batch needs (B, 3, H, W) images, got shape {tuple(images.shape)}"
            )
        image, restore = self._to_float_batch(images)
        codes = self._encode(image)
        params = params or self.draw(len(images), codes)
        apply = torch.tensor([q["apply"] for q in params])
        out = image.clone()
        if apply.any():
            out[apply] = self._edit(image[apply], [q for q in params if q["apply"]], codes[apply])
        return restore(out), params

    # -- internals -------------------------------------------------------------------------
    def _encode(self, image: torch.Tensor) -> torch.Tensor:
        model = self.model
        with torch.no_grad():
            return model.encode(image.to(next(model.parameters()).device)).cpu()

    def _edit(
        self, image: torch.Tensor, params: list[dict[str, Any]], codes: torch.Tensor | None = None
    ) -> torch.Tensor:
        model = self.model
        device = next(model.parameters()).device
        with torch.no_grad():
            image = image.to(device)
            z = (model.encode(image) if codes is None else codes.to(device)).clone()
            original = z.clone()
            by_block: dict[int, list[tuple[int, dict[str, Any]]]] = {}
            for i, q in enumerate(params):
                for edit in q["edits"]:
                    by_block.setdefault(self.names.index(edit["attribute"]), []).append((i, edit))
            for k, pairs in by_block.items():  # an image changes each attribute at most once
                moved = [(i, e) for i, e in pairs if "partner" in e]
                if moved:
                    rows = [i for i, _ in moved]
                    partners = self.bank[[e["partner"] for _, e in moved]].to(device)
                    t = torch.tensor([e["t"] for _, e in moved], device=device)
                    z[rows] = interpolate(z[rows], partners, model.blocks[k], t)
                painted = [(i, e) for i, e in pairs if "colour" in e]
                if painted:
                    rows = [i for i, _ in painted]
                    rgb = torch.tensor(
                        [parse_color(e["colour"]) for _, e in painted], dtype=z.dtype, device=device
                    )
                    z[rows] = repaint(model, z[rows], k, rgb / 127.5 - 1)
                for i, e in ((i, e) for i, e in pairs if "value" in e):
                    udv, scale = self.directions(k)
                    z[i, model.blocks[k]] += e["t"] * scale * udv[e["value"]].to(device, z.dtype)
            if self.repaint:
                return repaint_edit(model, z, original, image).cpu()
            if not self.residual:
                return model.decode(z).cpu()
            edited, recon = model.decode(torch.cat([z, original])).chunk(2)
            return (image + edited - recon).cpu()

    def _to_float_batch(self, inpt: Any):
        """(B, 3, r, r) float in [-1, 1] at the model's resolution, and a function undoing it."""
        is_pil = isinstance(inpt, PIL.Image.Image)
        tensor = TF.pil_to_tensor(inpt) if is_pil else inpt.as_subclass(torch.Tensor)
        single = tensor.ndim == 3
        batch = tensor[None] if single else tensor
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise UserError(f"DEAEAugment needs RGB images (3 channels), got shape {tuple(tensor.shape)}")
        dtype, size = batch.dtype, tuple(batch.shape[-2:])
        res = self.model.cfg.resolution
        x = to_float(batch) if dtype == torch.uint8 else batch.float() * 2 - 1
        if size != (res, res):
            if not self.resize:
                raise UserError(
                    f"DEAEAugment: image is {size[0]}x{size[1]} but the model works at {res}x{res}; "
                    "pass resize=True or resize the images first"
                )
            x = F.interpolate(x, size=(res, res), mode="bilinear", antialias=True, align_corners=False)

        def restore(out: torch.Tensor) -> Any:
            if out.shape[-2:] != size:
                out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
            out = out.clamp(-1, 1)
            out = out.add(1).mul(127.5).round().to(torch.uint8) if dtype == torch.uint8 else out.add(1).div(2)
            out = out.to(dtype) if dtype != torch.uint8 else out
            out = out[0] if single else out
            if is_pil:
                return TF.to_pil_image(out)
            return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out

        return x, restore
