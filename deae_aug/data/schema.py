"""Attribute schema: the one place that says which attributes a dataset has.

The latent code is split into one block per attribute, in schema order. Samplers, splits,
models and metrics all read the schema, so no attribute name is hard-coded outside the
dataset definitions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from deae_aug.errors import UserError


@dataclass(frozen=True)
class Attribute:
    """One attribute: its ordered values and the size of its latent block."""

    name: str
    values: tuple[str, ...]
    block_size: int = 20

    def __post_init__(self) -> None:
        if len(self.values) != len(set(self.values)):
            raise UserError(f"attribute {self.name!r} lists a value twice: {list(self.values)}")
        if not 1 <= self.block_size <= 4096:
            raise UserError(
                f"attribute {self.name!r} needs a block_size from 1 to 4096, got {self.block_size}"
            )

    def index(self, value: str) -> int:
        try:
            return self.values.index(value)
        except ValueError:
            raise UserError(
                f"{value!r} is not a value of attribute {self.name!r}; valid values: {list(self.values)}"
            ) from None


@dataclass(frozen=True)
class AttributeSchema:
    """Ordered attributes of a dataset; sample factors are integer indices into their values."""

    attributes: tuple[Attribute, ...]

    def __post_init__(self) -> None:
        names = [a.name for a in self.attributes]
        if len(names) != len(set(names)):
            raise UserError(f"attribute names must be unique, got {names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    @property
    def latent_dim(self) -> int:
        return sum(a.block_size for a in self.attributes)

    def __len__(self) -> int:
        return len(self.attributes)

    def __getitem__(self, name: str) -> Attribute:
        return self.attributes[self.position(name)]

    def position(self, name: str) -> int:
        """Index of attribute ``name`` in schema order (its column in a factors array)."""
        for i, attr in enumerate(self.attributes):
            if attr.name == name:
                return i
        raise UserError(f"unknown attribute {name!r}; this dataset has {list(self.names)}")

    def block_slices(self) -> dict[str, slice]:
        """Latent slice of each attribute's block, in schema order."""
        slices, start = {}, 0
        for attr in self.attributes:
            slices[attr.name] = slice(start, start + attr.block_size)
            start += attr.block_size
        return slices

    def describe(self, factors: Sequence[int]) -> dict[str, str]:
        """Attribute values of one sample, by name."""
        return {a.name: a.values[int(i)] for a, i in zip(self.attributes, factors, strict=True)}

    def encode(self, values: Mapping[str, str]) -> np.ndarray:
        """Factor indices of one sample given every attribute's value by name."""
        missing = [n for n in self.names if n not in values]
        if missing:
            raise UserError(f"missing attribute values for {missing}")
        return np.array([self[n].index(values[n]) for n in self.names], dtype=np.int64)

    def with_block_sizes(self, sizes: Mapping[str, int]) -> AttributeSchema:
        for name in sizes:
            self.position(name)
        return AttributeSchema(
            tuple(Attribute(a.name, a.values, sizes.get(a.name, a.block_size)) for a in self.attributes)
        )

    def to_dict(self) -> dict:
        return {
            "attributes": [
                {"name": a.name, "values": list(a.values), "block_size": a.block_size}
                for a in self.attributes
            ]
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> AttributeSchema:
        return cls(
            tuple(Attribute(a["name"], tuple(a["values"]), int(a["block_size"])) for a in data["attributes"])
        )


def resolve_values(
    available: Mapping[str, Sequence[str] | None],
    defaults: Mapping[str, Sequence[str]],
    requested: Mapping[str, Sequence[str] | int] | None,
) -> dict[str, tuple[str, ...]]:
    """Values per attribute: a list of names, the first N available values, or the defaults.

    ``available[name] = None`` means any value is accepted (checked later, e.g. hex colours).
    """
    requested = dict(requested or {})
    unknown = sorted(set(requested) - set(available))
    if unknown:
        raise UserError(f"unknown attribute {unknown[0]!r}; attributes are {list(available)}")
    out = {}
    for name, allowed in available.items():
        choice = requested.get(name, defaults[name])
        if isinstance(choice, int):
            pool = allowed if allowed is not None else defaults[name]
            if not 2 <= choice <= len(pool):
                raise UserError(f"{name}: asked for the first {choice} values, but 2 to {len(pool)} exist")
            choice = pool[:choice]
        choice = tuple(str(v) for v in choice)
        bad = [v for v in choice if allowed is not None and v not in allowed]
        if bad:
            raise UserError(f"{name}: {bad[0]!r} is not available; choose from {list(allowed)}")
        if len(choice) < 1:
            raise UserError(f"{name}: give at least one value")
        out[name] = choice
    return out
