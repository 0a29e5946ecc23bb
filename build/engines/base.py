"""What a compiler provides, and the errors of compiling."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from serving.manifest import Guarantee

CompiledArrays = dict[str, NDArray[Any]]


class UnsupportedEstimatorError(Exception):
    """The estimator (or a step of it) cannot be compiled; it is served by scikit-learn instead."""


class ExactnessError(Exception):
    """The compiled model's answers differ from the estimator's."""


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
