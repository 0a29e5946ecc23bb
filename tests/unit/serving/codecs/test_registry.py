"""The codec registry: every feature type the spec and manifest accept has exactly one codec."""

from __future__ import annotations

import math
from typing import get_args

import numpy as np
import pytest
from pydantic import ValidationError

from serving.codecs import CODECS, FeatureType, all_numeric, codec_for
from serving.manifest import Feature


def test_every_feature_type_has_one_codec_named_for_it() -> None:
    assert set(get_args(FeatureType)) == set(CODECS)
    assert all(codec.type_name == name for name, codec in CODECS.items())


@pytest.mark.parametrize("feature_type", sorted(CODECS))
def test_a_feature_is_bound_to_its_types_codec(feature_type: str) -> None:
    feature = Feature(name="f", type=feature_type, categories=["a"] if feature_type == "category" else None)

    codec = codec_for(feature)

    assert type(codec) is CODECS[feature_type]
    assert codec.feature is feature
    assert codec.metadata_datatype in codec.datatypes


def test_only_numeric_features_make_a_float64_matrix() -> None:
    number = Feature(name="n")
    category = Feature(name="c", type="category", categories=["a"])

    assert all_numeric([number, number])
    assert not all_numeric([number, category])


def test_the_manifest_refuses_a_feature_its_codec_refuses() -> None:
    with pytest.raises(ValidationError, match="a category feature lists its accepted values in `categories`"):
        Feature(name="c", type="category")
    with pytest.raises(ValidationError, match="`categories` is only for features of type category"):
        Feature(name="n", categories=["a"])
    with pytest.raises(ValidationError, match=r"Input should be 'number' or 'category'"):
        Feature.model_validate({"name": "d", "type": "date"})


@pytest.mark.parametrize("feature_type", sorted(CODECS))
def test_a_features_codec_profiles_its_column_as_the_profile_of_its_type(feature_type: str) -> None:
    feature = Feature(name="f", type=feature_type, categories=["a", "b"] if feature_type == "category" else None)
    column = np.array(["a", "b", "a", None] if feature_type == "category" else [1.0, 2.0, 2.0, math.nan], dtype=object)

    described = codec_for(feature).profile(column)

    assert described.type == feature_type
    assert described.missing_rate == 0.25
