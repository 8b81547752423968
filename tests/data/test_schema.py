import numpy as np
import pytest

from deae_aug.data.schema import Attribute, AttributeSchema, resolve_values
from deae_aug.errors import UserError


def make_schema() -> AttributeSchema:
    return AttributeSchema((Attribute("letter", ("A", "B", "C"), 4), Attribute("colour", ("red", "blue"), 2)))


def test_block_slices_follow_schema_order_and_sizes():
    schema = make_schema()
    assert schema.latent_dim == 6
    assert schema.block_slices() == {"letter": slice(0, 4), "colour": slice(4, 6)}


def test_encode_describe_round_trip():
    schema = make_schema()
    factors = schema.encode({"letter": "C", "colour": "red"})
    np.testing.assert_array_equal(factors, [2, 0])
    assert schema.describe(factors) == {"letter": "C", "colour": "red"}


def test_dict_round_trip_keeps_block_sizes():
    schema = make_schema().with_block_sizes({"colour": 7})
    assert AttributeSchema.from_dict(schema.to_dict()) == schema
    assert schema["colour"].block_size == 7


def test_errors_name_the_attribute_and_value():
    schema = make_schema()
    with pytest.raises(UserError, match="'purple' is not a value of attribute 'colour'"):
        schema.encode({"letter": "A", "colour": "purple"})
    with pytest.raises(UserError, match="unknown attribute 'size'"):
        schema.position("size")
    with pytest.raises(UserError, match="lists a value twice"):
        Attribute("x", ("a", "a"))


def test_resolve_values_accepts_names_counts_and_defaults():
    available = {"letter": ("A", "B", "C", "D"), "colour": None}
    defaults = {"letter": ("A", "B"), "colour": ("red", "blue")}
    out = resolve_values(available, defaults, {"letter": 3})
    assert out == {"letter": ("A", "B", "C"), "colour": ("red", "blue")}
    with pytest.raises(UserError, match="letter: 'Z' is not available"):
        resolve_values(available, defaults, {"letter": ["A", "Z"]})
    with pytest.raises(UserError, match="unknown attribute 'shape'"):
        resolve_values(available, defaults, {"shape": ["x"]})
