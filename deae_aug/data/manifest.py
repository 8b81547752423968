"""Bring your own data: an image folder plus a CSV with a path column and attribute columns.

Every problem is reported on one line naming the file, row or column, before training starts:
missing or unreadable images, missing columns, single-valued attributes, mixed image sizes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from deae_aug.data.dataset import AttributeDataset
from deae_aug.data.schema import Attribute, AttributeSchema
from deae_aug.errors import DataError

ILAB_ATTRIBUTES = ("letter", "size", "font_color", "bg_color", "font")


def _read_csv(csv: Path) -> pd.DataFrame:
    if not csv.is_file():
        raise DataError(f"manifest {csv} does not exist")
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
        header = next(iter(pd.read_csv(csv, dtype=str, header=None, nrows=1).itertuples(index=False)))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"manifest {csv} is not a readable CSV: {str(e).splitlines()[0]}") from None
    if twice := sorted({str(c) for c in header if list(header).count(c) > 1}):
        raise DataError(f"manifest {csv} names the column(s) {twice} twice; which one holds the values?")
    return table


class ManifestDataset(AttributeDataset):
    """Images listed in a CSV, one attribute per column.

    Parameters
    ----------
    csv : path
        CSV file with a path column and one column per attribute.
    root : path, default=the CSV's folder
        Relative image paths are resolved against it.
    path_column : str, default="path"
    attributes : list of str, default=every other column
        Columns used as attributes, in this order (the latent block order).
    resize : int or None, default=None
        Square side every image is resized to. Without it, all images must share one size.
    block_size : int, default=20
    """

    def __init__(
        self,
        csv: str | os.PathLike,
        root: str | os.PathLike | None = None,
        path_column: str = "path",
        attributes: Sequence[str] | None = None,
        resize: int | None = None,
        block_size: int = 20,
        block_sizes: Mapping[str, int] | None = None,
        frame: pd.DataFrame | None = None,
        unlabelled_ok: np.ndarray | None = None,
        origins: Sequence[tuple[str, int]] | None = None,
    ) -> None:
        csv = Path(csv)
        table = _read_csv(csv) if frame is None else frame
        self.root = Path(root) if root is not None else csv.parent
        self.resize = resize
        # where each row came from, for errors: (file, line), the header being line 1
        self._origins = (
            list(origins) if origins is not None else [(str(csv), i + 2) for i in range(len(table))]
        )
        if path_column not in table.columns:
            raise DataError(f"{csv}: no path column {path_column!r}; columns are {list(table.columns)}")
        if len(table) == 0:
            raise DataError(f"{csv}: the manifest lists no images")
        names = list(attributes) if attributes is not None else [c for c in table.columns if c != path_column]
        missing = [n for n in names if n not in table.columns]
        if missing:
            raise DataError(
                f"{csv}: missing attribute column {missing[0]!r}; columns are {list(table.columns)}"
            )
        if not names:
            raise DataError(f"{csv}: no attribute columns besides {path_column!r}")
        may_be_blank = (
            np.zeros(len(table), bool) if unlabelled_ok is None else np.asarray(unlabelled_ok, bool)
        )
        attrs = []
        for name in names:
            blank = table[name].str.strip().to_numpy() == ""
            wrong = np.flatnonzero(blank & ~may_be_blank)
            if len(wrong):
                file, line = self._origins[wrong[0]]
                raise DataError(
                    f"{file}, row {line}: attribute column {name!r} is blank; give every image a value"
                )
            values = tuple(sorted(table[name][~blank].unique(), key=_natural_key))
            if len(values) == (~blank).sum() > 2:
                raise DataError(
                    f"{csv}: attribute column {name!r} has a different value in every row (an id?); no two "
                    "images share a value to swap, so drop it from 'attributes'"
                )
            if len(values) < 2:
                raise DataError(
                    f"{csv}: attribute column {name!r} has a single value {values[0]!r}; "
                    "drop it from 'attributes' (nothing to disentangle)"
                )
            attrs.append(Attribute(name, values, block_size))
        self.schema = AttributeSchema(tuple(attrs)).with_block_sizes(block_sizes or {})
        # a blank (unlabelled) cell is -1
        self.factors = np.stack(
            [table[a.name].map({v: i for i, v in enumerate(a.values)}).fillna(-1).to_numpy() for a in attrs],
            axis=1,
        ).astype(np.int64)
        self.paths = np.array([str(self.root / p) for p in table[path_column]], dtype=object)
        self._resolution = self._check_images(csv)

    def _check_images(self, csv: Path) -> int:
        """Decode every image in full (a header alone misses a truncated file; about 1 s per
        10,000 images at 32 px): existence, readability and size, with the row named."""
        sizes = {}
        for (file, row), path in zip(self._origins, self.paths, strict=True):
            try:
                with Image.open(path) as im:
                    im.load()
                    sizes.setdefault(im.size, (row, path))
            except FileNotFoundError:
                raise DataError(f"{file}, row {row}: image {path} does not exist") from None
            except (UnidentifiedImageError, OSError) as e:
                raise DataError(
                    f"{file}, row {row}: image {path} is unreadable ({type(e).__name__})"
                ) from None
        if self.resize is not None:
            return self.resize
        if len(sizes) > 1:
            (s1, (r1, p1)), (s2, (r2, p2)) = list(sizes.items())[:2]
            raise DataError(
                f"{csv}: images differ in size ({p1} is {s1[0]}x{s1[1]}, {p2} is {s2[0]}x{s2[1]}); "
                "set data.resize to a square side"
            )
        (w, h), (_, path) = next(iter(sizes.items()))
        if w != h:
            raise DataError(f"{csv}: images are {w}x{h}, not square; set data.resize to a square side")
        return w

    @property
    def resolution(self) -> int:
        return self._resolution

    def _select_arrays(self, indices: np.ndarray) -> None:
        super()._select_arrays(indices)
        self.paths = self.paths[indices]
        self._origins = [self._origins[i] for i in indices]

    def source_file(self, index: int) -> str:
        return str(self.paths[index])

    def load_image(self, index: int) -> np.ndarray:
        path = self.paths[index]
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                if im.size != (self._resolution, self._resolution):
                    im = im.resize((self._resolution, self._resolution), Image.BILINEAR)
                return np.asarray(im, dtype=np.uint8)
        except FileNotFoundError:
            raise DataError(f"image {path} does not exist (it did when the dataset was opened)") from None
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"image {path} is corrupt or unreadable ({type(e).__name__}: {e})") from None


SPLIT_NAMES = ("train", "val", "test")


def given_split_table(
    csv: str | os.PathLike,
    path_column: str = "path",
    column: str | None = None,
    val: str | os.PathLike | None = None,
    test: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, np.ndarray, list[str], list[tuple[str, int]]]:
    """Every image of a given split as one table: (table, each row's split name, the training
    manifest's columns, each row's (file, line)). Either ``column`` names each row's split in
    ``csv``, or ``csv`` is the training set and ``val`` / ``test`` are more manifests; their
    relative image paths resolve against ``root`` or their own folder, and columns they lack
    are blank (unlabelled)."""
    csv = Path(csv)
    table = _read_csv(csv)
    origins = [(str(csv), i + 2) for i in range(len(table))]
    if column is not None:
        if column not in table.columns:
            raise DataError(f"{csv}: no split column {column!r}; columns are {list(table.columns)}")
        names = table[column].str.strip().to_numpy()
        bad = np.flatnonzero(~np.isin(names, SPLIT_NAMES))
        if len(bad):
            raise DataError(
                f"{csv}, row {bad[0] + 2}: split column {column!r} holds {names[bad[0]]!r}; "
                f"use one of {', '.join(SPLIT_NAMES)}"
            )
        columns = [c for c in table.columns if c != column]
        return table.drop(columns=[column]), names, columns, origins
    columns, parts, names = list(table.columns), [table], [np.full(len(table), "train", dtype=object)]
    for name, extra in (("val", val), ("test", test)):
        if extra is None:
            continue
        extra = Path(extra)
        frame = _read_csv(extra)
        if path_column not in frame.columns:
            raise DataError(f"{extra}: no path column {path_column!r}; columns are {list(frame.columns)}")
        base = (Path(root) if root is not None else extra.parent).resolve()
        frame[path_column] = [str(base / p) for p in frame[path_column]]  # an absolute p stays as it is
        parts.append(frame)
        names.append(np.full(len(frame), name, dtype=object))
        origins += [(str(extra), i + 2) for i in range(len(frame))]
    merged = pd.concat(parts, ignore_index=True).fillna("")
    return merged, np.concatenate(names).astype(str), columns, origins


def _natural_key(value: str) -> tuple:
    """Sort '2' before '10', and numbers before words."""
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def ilab_fonts_manifest(root: str | os.PathLike) -> pd.DataFrame:
    """Manifest of a real iLab Fonts tree: letter/size/fg/bg/font/letter_size_fg_bg_font.png."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"iLab Fonts root {root} is not a folder")
    rows = []
    for path in sorted(root.glob("*/*/*/*/*/*.png")):
        parts = path.relative_to(root).parts[:5]
        rows.append({"path": str(path.relative_to(root)), **dict(zip(ILAB_ATTRIBUTES, parts, strict=True))})
    if not rows:
        raise DataError(f"{root} holds no letter/size/fg/bg/font/*.png images; is it the iLab Fonts root?")
    return pd.DataFrame(rows)


def ILabFontsDataset(root: str | os.PathLike, **kwargs) -> ManifestDataset:  # noqa: N802 (reads as a class)
    """The real iLab Fonts images, for users who own them; same attributes as :class:`FontsDataset`."""
    return ManifestDataset(Path(root) / "manifest.csv", root=root, frame=ilab_fonts_manifest(root), **kwargs)
