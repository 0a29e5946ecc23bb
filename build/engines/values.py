"""Write object arrays (labels, categories, fill values) as plain arrays; serving/engines/values.py reads them."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from build.engines.base import CompiledArrays, UnsupportedEstimatorError
from serving.engines.values import MISSING_SUFFIX


def is_missing(value: object) -> bool:
    """NaN, as scikit-learn's is_scalar_nan sees it."""
    return isinstance(value, float) and value != value


def object_arrays(values: NDArray[Any], key: str, what: str) -> CompiledArrays:
    """An object array of strings and NaN as a unicode array and a missing mask; anything else
    raises UnsupportedEstimatorError naming `what` holds it."""
    missing = np.array([is_missing(value) for value in values], dtype=bool)
    others = sorted({type(value).__name__ for value, gone in zip(values, missing, strict=True) if not gone} - {"str"})
    if others:
        kinds = ", ".join(others)
        raise UnsupportedEstimatorError(f"{what} holds values of type {kinds}; only strings and NaN compile")
    strings = np.array(["" if gone else str(value) for value, gone in zip(values, missing, strict=True)], dtype=str)
    return {key: strings, key + MISSING_SUFFIX: missing}


def label_arrays(classes: NDArray[Any], key: str) -> CompiledArrays:
    """Class labels: numbers and numpy strings as they are, an object array of strings as one."""
    if classes.dtype == object:
        return object_arrays(classes, key, "classes_")
    return {key: classes}
