"""Checkpoints: weights as safetensors, optimizer state for ``weights_only`` loading, meta.json.

Each checkpoint is written into a temporary folder that is renamed into place, then the
``latest`` pointer is replaced atomically, so a kill at any moment leaves a loadable run.
Nothing here unpickles arbitrary objects.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import warnings
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from deae_aug.errors import UserError
from deae_aug.io import atomic_write_text

CHECKPOINTS = "checkpoints"
KEEP = 2


def save_checkpoint(run: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, meta: dict) -> Path:
    folder = Path(run) / CHECKPOINTS
    name = f"step_{meta['step']:07d}"
    tmp, final = folder / f".{name}.partial-{os.getpid()}", folder / name
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, tmp / "model.safetensors", metadata={"step": str(meta["step"])})
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    atomic_write_text(folder / "latest", name)
    older = sorted(p for p in folder.glob("step_*") if p.name != name)
    for stale in older[: max(0, len(older) - (KEEP - 1))]:  # keep the newest KEEP checkpoints
        shutil.rmtree(stale, ignore_errors=True)
    return final


def latest_checkpoint(run: Path) -> Path | None:
    pointer = Path(run) / CHECKPOINTS / "latest"
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text(encoding="utf-8").strip()
    return path if (path / "meta.json").is_file() else None


def _earlier(checkpoint: Path) -> str:
    """Advice naming the newest other checkpoint of the run, if there is one."""
    others = sorted(p for p in checkpoint.parent.glob("step_*") if p != checkpoint and p.is_dir())
    if not others:
        return "train the run again"
    return (
        f"point {checkpoint.parent / 'latest'} at {others[-1].name} (the previous checkpoint) or train again"
    )


META_KEYS = {"step": int, "model": dict, "schema": dict, "recipe": dict}  # what every reader needs


def load_meta(checkpoint: Path) -> dict:
    path = checkpoint / "meta.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(
            f"checkpoint file {path} is damaged or unreadable ({type(e).__name__}); {_earlier(checkpoint)}"
        ) from None
    fields = meta if isinstance(meta, dict) else {}
    broken = [k for k, kind in META_KEYS.items() if not isinstance(fields.get(k), kind)]
    if broken:
        raise UserError(
            f"checkpoint file {path} is damaged (no valid {', '.join(broken)}); {_earlier(checkpoint)}"
        )
    return meta


def load_weights(checkpoint: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    path = checkpoint / "model.safetensors"
    try:
        return load_file(path, device=str(device))
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(
            f"checkpoint file {path} is damaged or unreadable ({reason}); {_earlier(checkpoint)}"
        ) from None


def restore_weights(model: torch.nn.Module, checkpoint: Path, device: torch.device | str = "cpu") -> None:
    """Load the checkpoint's weights into ``model``; weights that do not fit it are one line."""
    try:
        model.load_state_dict(load_weights(checkpoint, device))
    except RuntimeError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        reason = lines[1] if len(lines) > 1 else lines[0] if lines else type(e).__name__
        raise UserError(
            f"checkpoint file {checkpoint / 'model.safetensors'} does not fit the model its meta.json "
            f"describes ({reason[:160]}); {_earlier(checkpoint)}"
        ) from None


def load_optimizer_state(checkpoint: Path) -> dict:
    """The optimizer state, loaded with ``weights_only``: a file that would need code to unpickle
    is refused, never executed."""
    path = checkpoint / "optimizer.pt"
    try:
        with warnings.catch_warnings():  # torch warns about a raw pickle's protocol before refusing it
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(
            f"checkpoint file {path} is not a plain tensor checkpoint and was not loaded "
            f"(it asks to run code); {_earlier(checkpoint)}"
        ) from None
    except (OSError, RuntimeError, EOFError, zipfile.BadZipFile) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(
            f"checkpoint file {path} is damaged or unreadable ({reason}); {_earlier(checkpoint)}"
        ) from None


def describe_mismatch(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """Human-readable differences between two nested dicts (model config, schema)."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += describe_mismatch(a, b, path + ".")
        elif a != b:
            out.append(f"{path}: checkpoint has {a!r}, recipe gives {b!r}")
    return out
