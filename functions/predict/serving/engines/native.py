"""The tree engine's walk and sums in C (tree_walk.c), loaded with ctypes when the package has it.

Why by hand, and why C: the walk is the product (no library walks XGBoost's, LightGBM's and
scikit-learn's trees bit for bit without the library itself), and in numpy each level of a walk
costs several passes over memory where a C loop costs one: on large batches of deep forests
numpy stays 1.2-2x behind the libraries' own C, which the numpy walk cannot close. The C walk
makes the same comparisons and the same additions in the same order as the numpy walk (the tests
hold the two bit for bit equal over generated ensembles), and nothing else: no exp, no
reassociation (built without fast-math or contraction), so the answer does not depend on it.

How it is built: build/native.py compiles tree_walk.c with the build machine's C compiler, beside
this module, when the build machine runs the Lambda architecture (the build's exactness gate then
runs the very library that ships); it needs no libc (-nostdlib), so it loads on any Linux of that
architecture. Without a compiler, or for another architecture, the package has no library and
the numpy walk serves: slower on large batches, the same answers.

ctypes releases the GIL around the call, so the tree engine's threads score their rows at once.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("tree_walk.c")
LIBRARY = Path(__file__).with_name("_tree_walk.so")
SCORE_FUNCTIONS = ("score_f32_f32", "score_f32_f64", "score_f64_f32", "score_f64_f64")
"""score_f<input bits>_f<sum bits>(ensemble, features, n_rows, n_features, total, row_stride, output_stride)"""
SCORE_ARGUMENTS = [
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_int64,
    ctypes.c_int64,
    ctypes.c_void_p,
    ctypes.c_int64,
    ctypes.c_int64,
]
# tree_walk.c's flag.
COMPARISON_LESS = 1


class Ensemble(ctypes.Structure):
    """tree_walk.c's ensemble_t: pointers into arrays the TreeEngine keeps alive."""

    _fields_ = [
        ("nodes", ctypes.c_void_p),
        ("roots", ctypes.c_void_p),
        ("n_trees", ctypes.c_int64),
        ("default_right", ctypes.c_void_p),
        ("missing", ctypes.c_void_p),
        ("category", ctypes.c_void_p),
        ("bitsets", ctypes.c_void_p),
        ("category_offsets", ctypes.c_void_p),
        ("flags", ctypes.c_int32),
        ("leaf_values", ctypes.c_void_p),
        ("width", ctypes.c_int64),
        ("tree_output", ctypes.c_void_p),
        ("depth", ctypes.c_void_p),
    ]


def _address(array: NDArray[Any] | None) -> int | None:
    return None if array is None else int(array.ctypes.data)


class NativeWalk:
    """One ensemble's scoring function in the C library: `add(features, total, ...)` adds every
    tree's leaf values to `total`, as TreeEngine._fill does with numpy."""

    def __init__(self, library: ctypes.CDLL, arrays: dict[str, Any], input_dtype: np.dtype[Any]) -> None:
        # Kept: the structure points into them.
        self._arrays = arrays
        self.structure = Ensemble(
            nodes=_address(arrays["nodes"]),
            roots=_address(arrays["roots"]),
            n_trees=arrays["roots"].size,
            default_right=_address(arrays["default_right"]),
            missing=_address(arrays["missing"]),
            category=_address(arrays["category"]),
            bitsets=_address(arrays["bitsets"]),
            category_offsets=_address(arrays["category_offsets"]),
            flags=arrays["flags"],
            leaf_values=_address(arrays["leaf_values"]),
            width=arrays["leaf_values"].shape[1],
            tree_output=_address(arrays["tree_output"]),
            depth=_address(arrays["depth"]),
        )
        sum_bits = arrays["leaf_values"].itemsize * 8
        self.function = getattr(library, f"score_f{input_dtype.itemsize * 8}_f{sum_bits}")
        self.pointer = ctypes.byref(self.structure)

    def add(self, features: NDArray[Any], total: NDArray[Any], first_row: int, stop_row: int, by_output: bool) -> None:
        """Adds the leaf values of rows first_row..stop_row of `features` (C order) to `total`:
        (outputs, rows) when `by_output`, else (rows, outputs), both C order."""
        n_rows = stop_row - first_row  # none: the C walk's loops do nothing
        n_features = features.shape[1]
        itemsize = total.itemsize
        if by_output:
            start = total.ctypes.data + first_row * itemsize
            row_stride, output_stride = 1, total.shape[1]
        else:
            start = total.ctypes.data + first_row * total.shape[1] * itemsize
            row_stride, output_stride = total.shape[1], 1
        # Plain ints: the function's argtypes (SCORE_ARGUMENTS) make them pointers and int64s.
        self.function(
            self.pointer,
            features.ctypes.data + first_row * n_features * features.itemsize,
            n_rows,
            n_features,
            start,
            row_stride,
            output_stride,
        )


def load(path: Path) -> ctypes.CDLL | None:
    """The compiled walk at `path`, or None (the numpy walk serves) when there is none or it does
    not load here (said in the log)."""
    if not path.exists():
        return None
    try:
        loaded = ctypes.CDLL(str(path))
        functions = [getattr(loaded, name) for name in SCORE_FUNCTIONS]
    except (OSError, AttributeError) as error:
        log.warning("the tree engine walks with numpy: %s does not load here (%s)", path.name, error)
        return None
    for function in functions:
        function.restype = None
        function.argtypes = SCORE_ARGUMENTS
    return loaded


@functools.cache
def library() -> ctypes.CDLL | None:
    """The compiled walk beside this module, loaded once (None where the package has none)."""
    return load(LIBRARY)
