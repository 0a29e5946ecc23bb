"""Write object arrays (labels, categories, fill values) as plain arrays; serving/engines/values.py
owns the layout and reads them."""

from __future__ import annotations

from typing import Any

from numpy.typing import NDArray

from build.engines.base import CompiledArrays, UnsupportedEstimatorError
from serving.engines import values
from serving.engines.values import UnstorableValuesError, is_missing

__all__ = ["is_missing", "label_arrays", "object_arrays"]


def object_arrays(array: NDArray[Any], key: str, what: str) -> CompiledArrays:
    """serving's object_arrays, refusing (for scikit-learn to serve) what it cannot store."""
    try:
        return values.object_arrays(array, key, what)
    except UnstorableValuesError as error:
        raise UnsupportedEstimatorError(str(error)) from None


def label_arrays(classes: NDArray[Any], key: str) -> CompiledArrays:
    """Class labels: numbers and numpy strings as they are, an object array as one."""
    try:
        return values.label_arrays(classes, key)
    except UnstorableValuesError as error:
        raise UnsupportedEstimatorError(str(error)) from None
