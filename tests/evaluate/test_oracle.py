import pytest
import torch

from deae_aug.data.dataset import load_images
from deae_aug.data.fonts import FontsDataset
from deae_aug.errors import UserError
from deae_aug.evaluate import oracle as oracle_module
from deae_aug.evaluate.oracle import oracle_for


@pytest.fixture(scope="module")
def dataset():
    return FontsDataset(
        values={
            "letter": ["A", "B", "C"],
            "size": ["small", "large"],
            "font_color": ["red", "blue"],
            "bg_color": ["yellow", "silver", "green"],
            "font": ["DejaVu Sans"],
        },
        resolution=16,
        block_size=4,
    )


def test_oracle_reads_attributes_and_is_cached(dataset, tmp_path, monkeypatch):
    oracle, accuracy = oracle_for(dataset, cache=tmp_path, progress=False, require=0.0)
    assert set(accuracy) == set(dataset.schema.names)
    images = load_images(dataset).float().div(127.5).sub(1)
    read = oracle.predict(images)
    truth = torch.from_numpy(dataset.factors)
    hit = (read == truth).float().mean(0)
    assert read.shape == truth.shape
    assert hit.min() >= 0.9, hit  # colours, letters and sizes are easy at 16 px

    def must_not_train(*args, **kwargs):
        raise AssertionError("the cached oracle was retrained")

    monkeypatch.setattr(oracle_module, "fit_oracle", must_not_train)
    cached, cached_accuracy = oracle_for(dataset, cache=tmp_path, progress=False, require=0.0)
    assert cached_accuracy == accuracy
    assert torch.equal(cached.predict(images), read)
    assert torch.equal(cached.predict(load_images(dataset)), read)  # uint8 is scaled, not misread


def test_weak_oracle_is_refused_with_the_attribute_named(dataset, tmp_path):
    oracle_for(dataset, cache=tmp_path, progress=False, require=0.0)
    with pytest.raises(UserError, match="letter.*below the required"):
        oracle_for(dataset, cache=tmp_path, progress=False, require=1.01)


def test_other_values_get_another_cache_entry(dataset):
    other = FontsDataset(
        values={**{a.name: list(a.values) for a in dataset.schema.attributes}, "letter": ["A"]}, resolution=16
    )
    assert oracle_module.dataset_key(other) != oracle_module.dataset_key(dataset)
