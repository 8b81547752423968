"""Find usable font families among the TrueType files that pip packages bring.

Nothing is downloaded: candidates come from matplotlib's bundled faces, small font packages
(font-roboto, font-lato, ...), pymupdf-fonts' embedded byte strings and Pillow's default face.
A face is kept only if it draws every letter, draws no two letters alike, and its letters are
recognised as letters by templates built from the *other* candidates (this rejects symbol and
math faces that map letters to other glyphs). One face per family, and no family that looks
like one already kept.

Your own TrueType or OpenType files (``file_face``) pass the same checks, against templates
built from the catalog, before they render anything.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from deae_aug.errors import UserError
from deae_aug.recipes import FONT_FILE_SUFFIXES

LETTERS = tuple(string.ascii_uppercase + string.ascii_lowercase)

# Packages that carry one open-licensed family each, in a ``files/`` folder.
FONT_PACKAGES = (
    "font_roboto",
    "font_lato",
    "font_source_sans_pro",
    "font_source_serif_pro",
    "font_caladea",
    "font_fredoka_one",
    "font_intuitive",
)
REGULAR_STYLES = ("Regular", "Book", "Roman", "Normal", "Medium")
MIN_LEGIBILITY = 0.5  # share of letters recognised by other faces' templates
MIN_LETTER_DIFF = 1e-3  # mean |mask difference| below which two letters count as identical
MIN_FAMILY_DIFF = 0.06  # mean |normalised glyph difference| below which two families look alike


@dataclass(frozen=True)
class FontFace:
    """A scalable face, loadable from bytes (so it pickles cheaply into DataLoader workers)."""

    family: str
    style: str
    source: str
    load_bytes: Callable[[], bytes] = field(repr=False, compare=False)

    def font(self, size: int) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(io.BytesIO(_bytes(self.source, self.load_bytes)), size)


_BYTES: dict[str, bytes] = {}


def _bytes(source: str, load: Callable[[], bytes]) -> bytes:
    if source not in _BYTES:
        _BYTES[source] = load()
    return _BYTES[source]


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


class _FileBytes:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> bytes:
        return self.path.read_bytes()


class _ModuleBytes:
    def __init__(self, module: str) -> None:
        self.module = module

    def __call__(self) -> bytes:
        return bytes(importlib.import_module(self.module).fontbuffer)


def _pillow_default() -> bytes:
    return ImageFont.load_default(size=10).font_bytes


def _candidate_sources() -> Iterator[tuple[str, Callable[[], bytes]]]:
    mpl = _package_dir("matplotlib")
    if mpl is not None:
        for path in sorted((mpl / "mpl-data" / "fonts" / "ttf").glob("*.ttf")):
            yield f"matplotlib:{path.name}", _FileBytes(path)
    for package in FONT_PACKAGES:
        root = _package_dir(package)
        if root is not None:
            for path in sorted((root / "files").glob("*.ttf")):
                yield f"{package}:{path.name}", _FileBytes(path)
    mupdf = _package_dir("pymupdf_fonts")
    if mupdf is not None:
        for path in sorted(mupdf.glob("*_Regular.py")):
            yield f"pymupdf_fonts:{path.stem}", _ModuleBytes(f"pymupdf_fonts.{path.stem}")
    yield "pillow:default", _pillow_default


def _regular_faces() -> list[FontFace]:
    """One face per family name, preferring the upright regular weight."""
    by_family: dict[str, FontFace] = {}
    for source, load in _candidate_sources():
        try:
            family, style = ImageFont.truetype(io.BytesIO(_bytes(source, load)), 12).getname()
        except (OSError, AttributeError):  # unreadable face, or a Pillow without FreeType bytes
            continue
        face = FontFace(family, style, source, load)
        best = by_family.get(family)
        if best is None or _style_rank(style) < _style_rank(best.style):
            by_family[family] = face
    return [by_family[name] for name in sorted(by_family, key=str.casefold)]


def _style_rank(style: str) -> int:
    return REGULAR_STYLES.index(style) if style in REGULAR_STYLES else len(REGULAR_STYLES)


def glyph_mask(font: ImageFont.FreeTypeFont, letter: str, size: int) -> np.ndarray:
    """(size, size) float mask in [0, 1] with the letter's ink box centred."""
    canvas = Image.new("L", (size, size))
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), letter, font=font, anchor="ls")
    x = (size - (right - left)) / 2 - left
    y = (size - (bottom - top)) / 2 - top
    draw.text((x, y), letter, font=font, fill=255, anchor="ls")
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _normalised(mask: np.ndarray, side: int = 24) -> np.ndarray:
    """Crop to the ink and rescale, so comparison ignores size and position."""
    ys, xs = np.nonzero(mask > 0.2)
    if len(ys) == 0:
        return np.zeros(side * side, np.float32)
    crop = Image.fromarray((mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] * 255).astype(np.uint8))
    return np.asarray(crop.resize((side, side), Image.BILINEAR), np.float32).ravel() / 255.0


@dataclass(frozen=True)
class FaceReport:
    face: FontFace
    accepted: bool
    reason: str
    legibility: float


def letter_problem(masks: np.ndarray, centred: np.ndarray, templates: np.ndarray) -> tuple[str | None, float]:
    """What makes a face unfit to draw letters (None: nothing), and its legibility: the share of
    its (52, 48, 48) letter ``masks`` whose ``centred`` shapes the letter ``templates`` recognise."""
    legibility = float((np.argmax(centred @ templates.T, axis=1) == np.arange(len(LETTERS))).mean())
    ink = masks.reshape(len(LETTERS), -1).mean(1)
    pair_diff = np.abs(masks[:, None] - masks[None]).mean((2, 3)) + np.eye(len(LETTERS))
    if ink.min() < 0.01:
        return f"letter {LETTERS[int(ink.argmin())]!r} renders blank", legibility
    if pair_diff.min() < MIN_LETTER_DIFF:
        a, b = np.unravel_index(pair_diff.argmin(), pair_diff.shape)
        return f"letters {LETTERS[a]!r} and {LETTERS[b]!r} render identically", legibility
    if legibility < MIN_LEGIBILITY:
        return f"only {legibility:.0%} of letters recognisable (symbol or math face)", legibility
    return None, legibility


@cache
def survey_fonts() -> tuple[FaceReport, ...]:
    """Check every candidate family; the accepted ones, in name order, form the font catalog."""
    faces = _regular_faces()
    masks = np.stack([[glyph_mask(f.font(32), c, 48) for c in LETTERS] for f in faces])  # (F, 52, 48, 48)
    shapes = np.stack([[_normalised(m) for m in per_face] for per_face in masks])  # (F, 52, 576)
    centred = shapes - shapes.mean(-1, keepdims=True)
    centred /= np.linalg.norm(centred, axis=-1, keepdims=True) + 1e-6

    reports: list[FaceReport] = []
    kept: list[int] = []
    for i, face in enumerate(faces):
        templates = np.delete(centred, i, axis=0).mean(0)
        templates /= np.linalg.norm(templates, axis=-1, keepdims=True) + 1e-6
        problem, legibility = letter_problem(masks[i], centred[i], templates)
        lookalike = [faces[j].family for j in kept if np.abs(shapes[i] - shapes[j]).mean() < MIN_FAMILY_DIFF]
        if problem:
            reason = problem
        elif lookalike:
            reason = f"looks like {lookalike[0]!r}"
        else:
            reason = "ok"
            kept.append(i)
        reports.append(FaceReport(face, reason == "ok", reason, legibility))
    return tuple(reports)


def font_catalog() -> dict[str, FontFace]:
    """Accepted font families by name, in a deterministic order."""
    return {r.face.family: r.face for r in survey_fonts() if r.accepted}


def is_font_file(value: str) -> bool:
    """Whether a font value names a file (by its suffix) rather than a catalog family."""
    return Path(value).suffix.lower() in FONT_FILE_SUFFIXES


@cache
def _catalog_templates() -> np.ndarray:
    """(52, 576) unit letter templates: the mean normalised glyph of the catalog's faces."""
    faces = list(font_catalog().values())
    shapes = np.stack([[_normalised(glyph_mask(f.font(32), c, 48)) for c in LETTERS] for f in faces])
    centred = shapes - shapes.mean(-1, keepdims=True)
    centred /= np.linalg.norm(centred, axis=-1, keepdims=True) + 1e-6
    templates = centred.mean(0)
    return templates / (np.linalg.norm(templates, axis=-1, keepdims=True) + 1e-6)


@cache
def file_face(path: str) -> FontFace:
    """A face from your own font file, checked as the catalog's are: it loads, draws every
    letter, draws no two alike, and its letters read as letters. One line names the file and
    the problem otherwise."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"font file {path} does not exist")
    load = _FileBytes(file)
    try:
        family, style = ImageFont.truetype(io.BytesIO(load()), 12).getname()
    except OSError as e:
        raise UserError(f"font file {path} is not a TrueType/OpenType font ({e})") from None
    face = FontFace(family, style, f"file:{file.resolve()}", load)
    masks = np.stack([glyph_mask(face.font(32), c, 48) for c in LETTERS])
    shapes = np.stack([_normalised(m) for m in masks])
    centred = shapes - shapes.mean(-1, keepdims=True)
    centred /= np.linalg.norm(centred, axis=-1, keepdims=True) + 1e-6
    problem, _ = letter_problem(masks, centred, _catalog_templates())
    if problem:
        raise UserError(f"font file {path}: {problem}")
    return face
