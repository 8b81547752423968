"""Atomic file writes: a killed process leaves the old file or none, never half of a new one."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# what atomic_path and atomic_folder leave if their process is killed: the owner's pid is in the name
_TEMPORARY = re.compile(r"^\..+\.(?:partial-(\d+)|(\d+)\.[a-z0-9_]{8}\.tmp)$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries that killed processes left in ``folder`` (not those of live ones),
    and say so on stderr."""
    folder = Path(folder)
    removed = []
    for entry in folder.iterdir() if folder.is_dir() else ():
        match = _TEMPORARY.match(entry.name)
        if match and not _alive(int(match[1] or match[2])):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed.append(entry)
            print(f"note: removed {entry}, left by a killed run", file=sys.stderr)
    return removed


@contextmanager
def atomic_folder(out: str | os.PathLike, last: str = "manifest.csv", whole: bool = False) -> Iterator[Path]:
    """Yield a hidden sibling folder to build ``out`` in; on failure it is removed. On success it
    replaces ``out`` if ``whole`` (an ImageFolder tree, where a stale class folder would be read
    as data); otherwise its entries replace those of the same name in ``out`` and other files are
    left alone, ``last`` (the output's index) removed first and moved in last, so a reader never
    finds an index that lists missing files. Temporaries of killed runs beside ``out`` go first."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out.parent)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if whole and out.exists():
        shutil.rmtree(out)
    if not out.exists():
        os.replace(tmp, out)
        return
    (out / last).unlink(missing_ok=True)
    for entry in sorted(tmp.iterdir(), key=lambda p: p.name == last):
        target = out / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)
    tmp.rmdir()


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def save_png(path: str | os.PathLike, image: np.ndarray | Image.Image) -> Path:
    """Save an (H, W, 3) uint8 array or a PIL image as PNG, atomically."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    return atomic_write(path, lambda tmp: pil.save(tmp, format="PNG"))
