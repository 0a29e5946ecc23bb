"""Object arrays (string labels, categories, fill values) are stored without pickle and read back
as the same Python values (serving/engines/values.py documents the format); anything but strings,
floats and NaN is refused by name."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from build.engines import UnsupportedEstimatorError
from build.engines.base import serialize
from build.engines.values import is_missing, label_arrays, object_arrays
from serving.engines.values import labels, objects

# numpy's string arrays drop trailing NULs: such strings are refused (below), all others kept.
TEXT = st.text(max_size=8).filter(lambda text: not text.endswith("\0"))
VALUES = st.lists(st.one_of(TEXT, st.floats(allow_nan=False), st.just(math.nan)), min_size=1, max_size=12)


def same_values(expected: list[Any], actual: list[Any]) -> bool:
    """The same types and values, NaN where NaN was."""
    return all(
        type(a) is type(b) and (a == b or (is_missing(a) and is_missing(b)))
        for a, b in zip(expected, actual, strict=True)
    )


@given(values=VALUES)
def test_strings_floats_and_nan_come_back_as_the_same_python_values(values: list[Any]) -> None:
    stored = object_arrays(np.array(values, dtype=object), "categories", "categories_")

    assert serialize(stored)  # plain arrays: no pickle needed
    assert all(array.dtype != object for array in stored.values())
    assert same_values(values, objects(stored, "categories").tolist())


@given(values=VALUES)
def test_object_labels_come_back_as_an_object_array_and_plain_labels_as_they_are(values: list[Any]) -> None:
    assert same_values(values, labels(label_arrays(np.array(values, dtype=object), "classes"), "classes").tolist())

    numbers = np.array([value for value in values if isinstance(value, float)] + [1.5])
    assert labels(label_arrays(numbers, "classes"), "classes").tobytes() == numbers.tobytes()


@pytest.mark.parametrize(
    ("others", "named"),
    [([1], "int"), ([True, None], "NoneType, bool"), ([b"x", 2, 3], "bytes, int"), ([np.float32(1.0)], "float32")],
)
def test_other_values_are_refused_naming_their_types_and_what_holds_them(others: list[Any], named: str) -> None:
    values = np.array(["red", 1.0, math.nan, *others], dtype=object)

    with pytest.raises(UnsupportedEstimatorError) as refused:
        object_arrays(values, "classes", "classes_")
    assert str(refused.value) == f"classes_ holds values of type {named}; only strings, floats and NaN compile"


@given(values=VALUES, text=st.text(max_size=8))
def test_a_string_ending_in_nul_is_refused_rather_than_shortened(values: list[Any], text: str) -> None:
    with pytest.raises(UnsupportedEstimatorError) as refused:
        object_arrays(np.array([*values, text + "\0"], dtype=object), "categories", "step.categories_")
    assert str(refused.value) == "step.categories_ holds a string ending in NUL; numpy's string arrays drop it"


@pytest.mark.parametrize(
    ("value", "missing"), [(math.nan, True), (np.float64("nan"), True), (1.0, False), ("nan", False), (None, False)]
)
def test_only_float_nan_is_missing(value: Any, missing: bool) -> None:
    assert is_missing(value) == missing


def test_labels_of_another_type_are_refused_naming_the_classes() -> None:
    with pytest.raises(UnsupportedEstimatorError) as refused:
        label_arrays(np.array(["yes", 1], dtype=object), "classes")
    assert str(refused.value) == "classes_ holds values of type int; only strings, floats and NaN compile"


def test_serialize_refuses_an_object_array_rather_than_pickling_it() -> None:
    with pytest.raises(ValueError, match="allow_pickle=False"):
        serialize({"labels": np.array(["a", 1], dtype=object)})


@given(values=VALUES)
def test_serialized_arrays_load_back_identical_without_pickle(values: list[Any]) -> None:
    arrays = object_arrays(np.array(values, dtype=object), "categories", "categories_")

    with np.load(io.BytesIO(serialize(arrays)), allow_pickle=False) as stored:
        loaded = {name: stored[name] for name in stored.files}
    assert loaded.keys() == arrays.keys()
    assert all(loaded[key].dtype == arrays[key].dtype for key in arrays)
    assert all(loaded[key].tobytes() == arrays[key].tobytes() for key in arrays)
