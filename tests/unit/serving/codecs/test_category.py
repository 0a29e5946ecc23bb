"""The category codec: one rule for a category feature's JSON value, CSV cell, JSON Schema and protocol data."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from serving.codecs import codec_for
from serving.codecs.category import MAX_LISTED_CATEGORIES, CategoryCodec
from serving.errors import BadRequestError
from serving.manifest import Feature
from tests.unit.serving.codecs.agreement import cell_verdict, check_protocol_agrees, json_verdict, schema_accepts

CATEGORIES = ["red", "green", "{blue}", "ünï", "a b"]
VALUES = (
    st.sampled_from(CATEGORIES)
    | st.text(max_size=6)
    | st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False, allow_infinity=False)
)


def colour(allow_missing: bool, categories: list[str] = CATEGORIES) -> Feature:
    return Feature(name="colour", type="category", categories=categories, allow_missing=allow_missing)


@pytest.mark.parametrize("allow_missing", [False, True])
@given(value=VALUES)
def test_json_csv_protocol_and_schema_agree_on_every_value(allow_missing: bool, value: Any) -> None:
    codec = codec_for(colour(allow_missing))
    accepted, model_value = json_verdict(codec, value)

    assert schema_accepts(codec.json_schema(), value) == accepted
    check_protocol_agrees(codec, value, accepted, model_value)
    # A CSV cell is text: a string is its own cell, null the empty cell (so "" cannot be a category).
    if value is None or (isinstance(value, str) and value != ""):
        assert cell_verdict(codec, "" if value is None else value)[0] == accepted


def test_a_missing_value_reaches_the_model_as_nan_where_allowed() -> None:
    codec = codec_for(colour(allow_missing=True))

    [missing, red] = codec.decode([None, "red"], "BYTES", "inputs[1]").tolist()
    assert math.isnan(missing)
    assert red == "red"
    assert math.isnan(json_verdict(codec, None)[1])
    assert codec.read_cell("") is None  # null, which the JSON validation makes NaN


def test_a_refusal_lists_the_accepted_values_bounded_and_braces_kept() -> None:
    many = [f"c{index}" for index in range(MAX_LISTED_CATEGORIES + 2)]
    codec = codec_for(colour(allow_missing=False, categories=["{x}", *many]))

    with pytest.raises(BadRequestError) as refused:
        codec.decode(["{x}", "mauve"], "BYTES", "inputs[0]")

    assert str(refused.value).startswith('inputs[0].data[1]: Input should be one of "{x}", "c0"')
    assert str(refused.value).endswith('and 3 more (see GET /model) (got "mauve")')


@pytest.mark.parametrize(
    ("categories", "reason"),
    [
        (None, "^a category feature lists its accepted values in `categories`$"),
        ([], "^a category feature lists its accepted values in `categories`$"),
        (["a", "a"], "^`categories` lists a value twice$"),
    ],
)
def test_a_category_feature_needs_distinct_categories(categories: list[str] | None, reason: str) -> None:
    feature = Feature.model_construct(name="x", type="category", categories=categories, allow_missing=False)

    with pytest.raises(ValueError, match=reason):
        CategoryCodec.check(feature)


def test_a_training_cell_must_be_one_of_the_categories() -> None:
    codec = codec_for(colour(allow_missing=False))

    assert codec.training_value("red") == "red"
    with pytest.raises(ValueError, match=r"^is not one of the feature's categories \['red', "):
        codec.training_value("mauve")
