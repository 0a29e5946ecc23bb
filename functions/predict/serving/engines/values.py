"""Arrays of Python objects (labels, categories, fill values) stored without pickle.

An object array of strings, numbers and NaN is stored as three plain arrays: `key` holds the
strings (unicode), `key.numbers` the numbers (float64), and `key.kinds` which one each entry
is: "s" a string, "f" a number, "n" NaN. build/engines/values.py writes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from serving.engines.base import Arrays

NUMBERS_SUFFIX = ".numbers"
KINDS_SUFFIX = ".kinds"


class UnstorableValuesError(ValueError):
    """An object array holding something other than strings, floats and NaN, or a string numpy
    cannot store as it is."""


def is_missing(value: object) -> bool:
    """NaN, as scikit-learn's is_scalar_nan sees it."""
    return isinstance(value, float) and value != value


def _kind(value: object) -> str:
    if isinstance(value, str):
        return "s"
    # Not mutated, equivalent: a NaN stored as a number ("f") reads back as NaN too (`objects`).
    if is_missing(value):  # pragma: no mutate
        return "n"
    if isinstance(value, float):
        return "f"
    return type(value).__name__


def object_arrays(values: NDArray[Any], key: str, what: str) -> dict[str, NDArray[Any]]:
    """An object array of strings, floats and NaN as plain arrays; anything else (or a string
    ending in NUL, which numpy's string arrays drop) raises UnstorableValuesError naming `what`
    holds it."""
    kinds = [_kind(value) for value in values]
    others = sorted(set(kinds) - {"s", "f", "n"})
    if others:
        listed = ", ".join(others)
        raise UnstorableValuesError(f"{what} holds values of type {listed}; only strings, floats and NaN compile")
    # Not mutated, equivalent: `kinds` has one entry per value, so `strict` never fires.
    pairs = list(zip(values, kinds, strict=True))  # pragma: no mutate
    if any(kind == "s" and value.endswith("\0") for value, kind in pairs):
        # numpy's string arrays drop trailing NULs: "a\0" would come back as "a".
        raise UnstorableValuesError(f"{what} holds a string ending in NUL; numpy's string arrays drop it")
    # Not mutated, equivalent: numpy infers the same dtypes from these lists (never empty: classes and categories
    # are not), and `objects` reads no placeholder ("", 0.0) back: it puts the entry of the other kind there.
    # pragma: no mutate start
    return {
        key: np.array([value if kind == "s" else "" for value, kind in pairs], dtype=str),
        key + NUMBERS_SUFFIX: np.array([value if kind == "f" else 0.0 for value, kind in pairs], dtype=np.float64),
        key + KINDS_SUFFIX: np.array(kinds, dtype="<U1"),
    }
    # pragma: no mutate end


def label_arrays(classes: NDArray[Any], key: str) -> dict[str, NDArray[Any]]:
    """Class labels: numbers and numpy strings as they are, an object array as one."""
    if classes.dtype == object:
        return object_arrays(classes, key, "classes_")
    return {key: classes}


def objects(arrays: Arrays, key: str) -> NDArray[np.object_]:
    """The object array stored under `key`: Python strings, floats, and float NaN."""
    values: NDArray[np.object_] = arrays[key].astype(object)
    kinds = arrays[key + KINDS_SUFFIX]
    numbers = kinds == "f"
    values[numbers] = arrays[key + NUMBERS_SUFFIX][numbers].tolist()
    values[kinds == "n"] = np.nan
    return values


def labels(arrays: Arrays, key: str) -> NDArray[Any]:
    """Class labels as the estimator holds them: an object array if it was stored as one."""
    if key + KINDS_SUFFIX in arrays:
        return objects(arrays, key)
    return arrays[key]
