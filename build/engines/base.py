"""What a compiler provides, and the errors of compiling."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from serving.engines.base import WORD_BITS
from serving.manifest import Guarantee

CompiledArrays = dict[str, NDArray[Any]]


class UnsupportedEstimatorError(Exception):
    """The estimator (or a step of it) cannot be compiled; it is served by scikit-learn instead."""


class ExactnessError(Exception):
    """The compiled model's answers differ from the estimator's."""


MAX_MASK_BYTES = 64 * 1024 * 1024
"""The most a tree engine's leaf masks may take (its largest arrays): a larger model is served by
scikit-learn instead, whose trees take far less than their masks."""


def mask_layout(max_leaves: int) -> tuple[np.dtype[Any], int]:
    """The leaf masks' dtype and words a tree, for trees of at most `max_leaves` leaves: one word of
    the fewest bits that holds them, else words of 64 bits."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_leaves <= np.iinfo(dtype).bits:
            return np.dtype(dtype), 1
    return np.dtype(np.uint64), -(-max_leaves // WORD_BITS)


def check_mask_bytes(estimator: Any, mask_bytes: int) -> None:
    """Refuse (for scikit-learn to serve) a tree model whose leaf masks would take too much."""
    if mask_bytes > MAX_MASK_BYTES:
        raise UnsupportedEstimatorError(
            f"{type(estimator).__name__}: leaf masks would take {mask_bytes:,} bytes, "
            f"more than the {MAX_MASK_BYTES:,} a compiled model may hold"
        )


@dataclass(frozen=True)
class Compiler:
    """How to compile one family of estimators."""

    name: str
    supports: Callable[[Any], bool]
    """Whether the estimator is of this compiler's family; `compile` refuses what it cannot do
    with an UnsupportedEstimatorError that says why."""
    compile: Callable[[Any, str], CompiledArrays]
    """The estimator's arrays under a key prefix, `<prefix>engine` naming the engine kind."""
    guarantee: Callable[[Any], Guarantee]
    probe_rows: Callable[[Any, NDArray[Any]], NDArray[Any]]
    """Rows in the estimator's input space that stress it most (split thresholds and their float
    neighbours, every category, missing values, extremes), given reference rows such as the
    training rows."""


def serialize(arrays: dict[str, NDArray[Any]]) -> bytes:
    """The arrays as an uncompressed .npz, byte-for-byte reproducible (fixed member timestamps).

    It is read with allow_pickle=False: loading the model never unpickles anything.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            # ZipInfo's own date_time is a fixed 1980-01-01, never the time of the build.
            member = zipfile.ZipInfo(f"{name}.npy")
            with archive.open(member, "w", force_zip64=True) as stream:
                np.lib.format.write_array(stream, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()
