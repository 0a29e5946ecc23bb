"""Write object arrays (labels, categories, fill values) as plain arrays; serving/engines/values.py reads them."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from build.engines.base import CompiledArrays, UnsupportedEstimatorError
from serving.engines.values import KINDS_SUFFIX, NUMBERS_SUFFIX


def is_missing(value: object) -> bool:
    """NaN, as scikit-learn's is_scalar_nan sees it."""
    return isinstance(value, float) and value != value


def _kind(value: object) -> str:
    if isinstance(value, str):
        return "s"
    # Not mutated, equivalent: NaN is a float: stored as kind "f" it is read back as float NaN, as kind "n" is.
    if is_missing(value):  # pragma: no mutate
        return "n"
    if isinstance(value, float):
        return "f"
    return type(value).__name__


def object_arrays(values: NDArray[Any], key: str, what: str) -> CompiledArrays:
    """An object array of strings, floats and NaN as plain arrays; anything else (or a string
    ending in NUL, which numpy's string arrays drop) raises UnsupportedEstimatorError naming
    `what` holds it."""
    kinds = [_kind(value) for value in values]
    others = sorted(set(kinds) - {"s", "f", "n"})
    if others:
        listed = ", ".join(others)
        raise UnsupportedEstimatorError(f"{what} holds values of type {listed}; only strings, floats and NaN compile")
    # Not mutated, equivalent: kinds is built from values one by one: the two always have the same length.
    pairs = list(zip(values, kinds, strict=True))  # pragma: no mutate
    if any(kind == "s" and value.endswith("\0") for value, kind in pairs):
        # numpy's string arrays drop trailing NULs: "a\0" would come back as "a".
        raise UnsupportedEstimatorError(f"{what} holds a string ending in NUL; numpy's string arrays drop it")
    # Not mutated, equivalent: a list of Python strings makes a unicode array by default, as dtype=str does; the
    # strings array is read only where the kind is "s": the filler is never seen; a list of Python floats makes a
    # float64 array by default; the numbers array is read only where the kind is "f": the filler is never seen; the
    # kinds are one-character strings: the default dtype is <U1 too.
    # pragma: no mutate start
    return {
        key: np.array([value if kind == "s" else "" for value, kind in pairs], dtype=str),
        key + NUMBERS_SUFFIX: np.array([value if kind == "f" else 0.0 for value, kind in pairs], dtype=np.float64),
        key + KINDS_SUFFIX: np.array(kinds, dtype="<U1"),
    }
    # pragma: no mutate end


def label_arrays(classes: NDArray[Any], key: str) -> CompiledArrays:
    """Class labels: numbers and numpy strings as they are, an object array as one."""
    if classes.dtype == object:
        return object_arrays(classes, key, "classes_")
    return {key: classes}
