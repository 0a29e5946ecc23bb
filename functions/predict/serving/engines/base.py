"""The interface every compiled engine implements, and the layout of its arrays."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

ENGINE_KEY = "engine"
"""`<prefix>engine` holds the kind of the engine stored under that prefix."""

Arrays = Mapping[str, NDArray[Any]]

KINDS = ("classifier", "regressor")
"""What `kind` holds in the arrays of an engine that serves either."""


class Engine(Protocol):
    """What every compiled engine offers: the estimator's own interface, numpy only."""

    n_features: int
    classes: NDArray[Any] | None
    """The estimator's `classes_` for a classifier; None for a regressor."""

    def predict(self, rows: NDArray[Any]) -> NDArray[Any]: ...

    def predict_proba(self, rows: NDArray[Any]) -> NDArray[np.float64]:
        """Class probabilities, columns in `classes` order; a regressor raises TypeError."""
        ...


def check_width(rows: NDArray[Any], n_features: int) -> None:
    """Refuse rows that are not a 2-d array `n_features` wide, naming the shape they have."""
    if rows.ndim != 2 or rows.shape[1] != n_features:
        raise ValueError(f"expected rows of {n_features} features, got shape {rows.shape}")


def check_format_version(arrays: Arrays, prefix: str, engine: str, expected: int) -> None:
    """Refuse arrays written in a format this code does not read: a package built by another
    version of the build, whose arrays could mean something else."""
    stored = arrays[prefix + "format_version"]
    # Not mutated, equivalent: a dtype's kind is one character, and none is "X".
    if stored.ndim != 0 or stored.dtype.kind not in "iu":  # pragma: no mutate
        raise ValueError(f"compiled {engine} format_version is a {stored.ndim}-d {stored.dtype} array, not an integer")
    found = int(stored)
    if found != expected:
        raise ValueError(f"compiled {engine} format {found}, expected {expected}: rebuild the package")


def unprefixed(arrays: Arrays, prefix: str) -> dict[str, NDArray[Any]]:
    """The arrays stored under `prefix`, with the prefix taken off their keys."""
    return {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}
