"""Imports point one way: each package of deae_aug imports only from packages below it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "deae_aug"
LAYERS = (  # lowest first; siblings of a layer do not import each other
    {"errors", "io", "viz", "recipes"},
    {"data"},
    {"models"},
    {"training"},
    {"explore"},
    {"evaluate"},
    {"augment", "debias"},
    {"cli", "__init__", "__main__"},
)
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def imports(path: Path) -> set[str]:
    """The deae_aug packages (or top-level modules) that ``path`` imports from."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
        found |= {n.split(".")[1] for n in names if n.startswith("deae_aug.")}
    return found


def test_every_package_has_a_layer():
    top = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    assert top - {"__pycache__"} <= set(LEVEL), top - set(LEVEL)


def test_imports_point_down_only():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        owner = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for target in imports(path) - {owner}:
            if LEVEL[target] >= LEVEL[owner] and LEVEL[target] > 0:  # the foundations share freely
                upward.append(f"{path.relative_to(PACKAGE)} imports deae_aug.{target}")
    assert not upward, upward


def test_inference_reads_runs_without_the_trainer():
    """The transform, the debiaser and exploration load runs through ``training.run``; only the
    command line and the debias report, which may train, import the trainer."""
    trainer = []
    for folder in ("augment", "explore", "evaluate"):
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            if "deae_aug.training.trainer" in path.read_text(encoding="utf-8"):
                trainer.append(str(path.relative_to(PACKAGE)))
    if "deae_aug.training.trainer" in (PACKAGE / "debias" / "latent.py").read_text(encoding="utf-8"):
        trainer.append("debias/latent.py")
    assert not trainer, trainer
