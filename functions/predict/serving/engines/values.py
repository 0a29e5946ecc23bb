"""Arrays of Python objects (labels, categories, fill values) stored without pickle.

An object array of strings and NaN is stored as a unicode array under `key`, with a bool
mask under `key.missing` marking the NaN entries; build/engines/values.py writes it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from serving.engines.base import Arrays

MISSING_SUFFIX = ".missing"


def objects(arrays: Arrays, key: str) -> NDArray[np.object_]:
    """The object array stored under `key`: Python strings, and float NaN where it was missing."""
    values: NDArray[np.object_] = arrays[key].astype(object)
    values[arrays[key + MISSING_SUFFIX]] = np.nan
    return values


def labels(arrays: Arrays, key: str) -> NDArray[Any]:
    """Class labels as the estimator holds them: an object array if it was stored as one."""
    if key + MISSING_SUFFIX in arrays:
        return objects(arrays, key)
    return arrays[key]
