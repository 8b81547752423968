import numpy as np
import pytest

from deae_aug.data.fonts import FontsDataset


@pytest.fixture(scope="session")
def small_fonts() -> FontsDataset:
    """4 letters x 2 sizes x 3 x 3 colours x 3 fonts (fg != bg), at 32 px."""
    return FontsDataset(
        values={
            "letter": ["A", "B", "a", "g"],
            "size": ["small", "large"],
            "font_color": ["red", "green", "blue"],
            "bg_color": ["red", "yellow", "silver"],
            "font": ["DejaVu Sans", "DejaVu Serif", "Fredoka One"],
        },
        resolution=32,
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
