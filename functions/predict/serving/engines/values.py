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
