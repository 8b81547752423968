"""The README and docs/ render as plain Markdown: every relative link and image points at a file."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    targets = [t.split("#")[0] for t in LINK.findall(page.read_text(encoding="utf-8"))]
    local = [t for t in targets if t and not re.match(r"^[a-z]+:", t)]
    missing = [t for t in local if not (page.parent / t).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"


def test_readme_is_a_short_user_guide():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300


def test_the_public_api_is_importable_from_the_package():
    import deae_aug
    from deae_aug import DEAEAugment, Debiaser, load_model
    from deae_aug.augment import transform
    from deae_aug.debias import latent
    from deae_aug.training import trainer

    assert (DEAEAugment, Debiaser, load_model) == (transform.DEAEAugment, latent.Debiaser, trainer.load_model)
    assert set(deae_aug.__all__) >= {"DEAEAugment", "Debiaser", "load_model", "load_recipe"}
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        deae_aug.Nope  # noqa: B018
