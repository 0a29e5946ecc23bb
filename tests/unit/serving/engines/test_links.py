"""XGBoost's and LightGBM's links compute what the C libraries compute, bit for bit."""

from __future__ import annotations

import ctypes
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.engines.links import LINKS, exp_libm, expf

LIBM = ctypes.CDLL("libm.so.6")
LIBM.expf.restype = ctypes.c_float
LIBM.expf.argtypes = [ctypes.c_float]

float32s = st.floats(width=32, allow_nan=False)


def libm_expf(values: np.ndarray) -> np.ndarray:
    return np.array([LIBM.expf(float(value)) for value in values], dtype=np.float32)


@settings(max_examples=200)
@given(st.lists(st.one_of(float32s, st.floats(-90, 90, width=32)), min_size=1, max_size=50))
def test_expf_is_glibcs_expf(values: list[float]) -> None:
    array = np.array(values, dtype=np.float32)
    assert expf(array).tobytes() == libm_expf(array).tobytes()


def test_expf_near_float32_midpoints_is_glibcs_expf() -> None:
    # Inputs whose exact exp lies close to the midpoint of two float32s: where rounding numpy's
    # float64 exp could differ from glibc's expf, which the function hands to libm.
    candidates = np.random.default_rng(0).uniform(-87, 88, size=400_000).astype(np.float32)
    wide = np.exp(candidates.astype(np.float64))
    low_bits = (wide.view(np.uint64) & np.uint64((1 << 29) - 1)).astype(np.int64)
    near = candidates[np.abs(low_bits - (1 << 28)) < (1 << 22)]
    assert near.size > 1000
    assert expf(near).tobytes() == libm_expf(near).tobytes()


@given(st.lists(st.floats(allow_nan=False), min_size=1, max_size=30))
def test_exp_libm_is_maths_exp(values: list[float]) -> None:
    expected = []
    for value in values:
        try:
            expected.append(math.exp(value))
        except OverflowError:
            expected.append(math.inf)
    assert exp_libm(np.array(values)).tobytes() == np.array(expected).tobytes()


@given(st.lists(st.floats(-50, 50, width=32), min_size=3, max_size=3))
def test_xgboost_softprob_rows_sum_in_double_and_divide_in_float(scores: list[float]) -> None:
    row = np.array([scores], dtype=np.float32)
    top = np.float32(max(scores))
    exponentials = [np.float32(LIBM.expf(float(np.float32(value) - top))) for value in row[0]]
    total = 0.0
    for value in exponentials:
        total += float(value)
    expected = np.array([[value / np.float32(total) for value in exponentials]], dtype=np.float32)
    assert LINKS["xgboost_softprob"](row, 1.0).tobytes() == expected.tobytes()


@given(st.floats(-40, 40), st.floats(0.1, 3.0))
def test_lightgbm_binary_is_one_over_one_plus_exp(score: float, sigmoid: float) -> None:
    positive = 1.0 / (1.0 + math.exp(-sigmoid * score))
    proba = LINKS["lightgbm_binary"](np.array([[score]]), sigmoid)
    assert proba.tolist() == [[1.0 - positive, positive]]
