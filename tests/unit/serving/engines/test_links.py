"""The links compute what their libraries compute, to the bit."""

from __future__ import annotations

import ctypes
import math
from collections.abc import Iterable

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st
from scipy.special import expit as scipy_expit
from sklearn._loss.link import LogLink
from sklearn.utils.extmath import softmax as sklearn_softmax

from serving.engines.links import EXPF_DIRECT_RANGE, LINKS, exp_libm, expf, expit


def test_expit_is_scipys_to_the_bit() -> None:
    rng = np.random.default_rng(0)
    # Around 0, where both tails saturate, where libm's exp overflows (-709.78), subnormals, NaN.
    edges = np.array(
        [0.0, -0.0, 5e-324, -5e-324, 36.7, -36.7, 699.9, 700.0, 709.78, -709.78, -709.79, -745.2, 1e308, -1e308, np.nan]
    )
    raw = np.concatenate([edges, rng.normal(0, 1, 2000), rng.normal(0, 300, 2000)])

    assert expit(raw).tobytes() == scipy_expit(raw).tobytes()
    assert expit(raw.reshape(-1, 1)).tobytes() == scipy_expit(raw.reshape(-1, 1)).tobytes()
    assert expit(raw.reshape(-1, 5)).tobytes() == scipy_expit(raw.reshape(-1, 5)).tobytes()


def test_softmax_is_scikit_learns_in_either_memory_order() -> None:
    """Nine classes: numpy sums eight or more values pairwise along a row in C order, one column at
    a time in F order; the link keeps the scores' order, as scikit-learn's losses do."""
    scores = np.random.default_rng(1).normal(0, 5, size=(500, 9))
    for ordered in (np.ascontiguousarray(scores), np.asfortranarray(scores)):
        expected = sklearn_softmax(ordered.copy(order="K"), copy=False)
        assert LINKS["softmax"](ordered, 1.0).tobytes() == expected.tobytes()


def test_softmax_of_scores_too_far_apart_to_subtract_answers_without_a_warning() -> None:
    """A row whose scores differ by more than the largest double: scikit-learn's subtraction
    overflows (and warns); the link gives the same probabilities quietly."""
    scores = np.array([[1e308, -1e308, 0.0], [-1e308, 1e308, 1e308], [0.0, 1.0, 2.0]])
    with np.errstate(over="ignore"):
        expected = sklearn_softmax(scores.copy(), copy=False)
    assert LINKS["softmax"](scores.copy(), 1.0).tobytes() == expected.tobytes()


def test_binary_links_give_both_columns_as_scikit_learn_does() -> None:
    scores = np.random.default_rng(2).normal(0, 3, size=(100, 1))

    proba = LINKS["expit"](scores, 1.0)
    assert proba[:, 1].tobytes() == scipy_expit(scores[:, 0]).tobytes()
    assert proba[:, 0].tobytes() == (1 - scipy_expit(scores[:, 0])).tobytes()
    assert LINKS["exponential_loss"](scores, 1.0)[:, 1].tobytes() == scipy_expit(2 * scores[:, 0]).tobytes()


LIBM = ctypes.CDLL("libm.so.6")
LIBM.expf.restype = ctypes.c_float
LIBM.expf.argtypes = [ctypes.c_float]

float32s = st.floats(width=32, allow_nan=False)


def libm_expf(values: np.ndarray) -> np.ndarray:
    return np.array([LIBM.expf(float(value)) for value in values], dtype=np.float32)


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


def test_expf_at_the_ends_of_its_direct_range_is_glibcs_expf() -> None:
    """The range's ends, and the float32s either side of them, in any shape of array."""
    ends = np.array(EXPF_DIRECT_RANGE, dtype=np.float32)
    values = np.concatenate([ends, np.nextafter(ends, np.float32(-np.inf)), np.nextafter(ends, np.float32(np.inf))])
    assert expf(values).tobytes() == libm_expf(values).tobytes()
    assert expf(values.reshape(2, 3)).tobytes() == libm_expf(values).tobytes()


@given(st.lists(st.floats(allow_nan=False), min_size=1, max_size=30))
def test_exp_libm_is_maths_exp(values: list[float]) -> None:
    assert exp_libm(np.array(values)).tobytes() == maths_exp(values).tobytes()


def maths_exp(values: Iterable[float]) -> np.ndarray:
    """math.exp of each value, infinity where it overflows."""
    expected = []
    for value in values:
        try:
            expected.append(math.exp(value))
        except OverflowError:
            expected.append(math.inf)
    return np.array(expected)


def test_exp_libm_is_maths_exp_where_the_complex_exp_scales_its_argument() -> None:
    """Beyond |x| ~ 709 numpy's complex exp scales its argument and differs from libm's exp in the
    last bit; those values go to libm itself, in any shape of array."""
    values = np.concatenate([np.linspace(699.0, 712.0, 5001), np.linspace(-760.0, -699.0, 5001)])
    expected = maths_exp(values)
    assert exp_libm(values).tobytes() == expected.tobytes()
    assert exp_libm(values.reshape(2, -1)).tobytes() == expected.tobytes()


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


@given(st.floats(allow_nan=False), st.floats(0.1, 3.0))
@example(score=1e308, sigmoid=2.0)  # -sigmoid * score overflows to -inf: no warning, p = 1
def test_lightgbm_binary_is_one_over_one_plus_exp(score: float, sigmoid: float) -> None:
    positive = 1.0 / (1.0 + maths_exp([-sigmoid * score])[0])
    proba = LINKS["lightgbm_binary"](np.array([[score]]), sigmoid)
    assert proba.tolist() == [[1.0 - positive, positive]]


def test_exp_is_scikit_learns_log_link_inverse_to_the_bit() -> None:
    """Poisson and Gamma models' values: numpy's exp, infinity past overflow without a warning."""
    raw = np.concatenate(
        [[0.0, -0.0, 709.78, 710.0, 1e300, -1e300, -745.2], np.random.default_rng(3).normal(0, 50, 500)]
    )
    scores = raw.reshape(-1, 1)
    with np.errstate(over="ignore"):
        expected = LogLink().inverse(scores)

    assert LINKS["exp"](scores, 1.0).tobytes() == expected.tobytes()


def test_lightgbm_square_is_sign_times_the_score_squared() -> None:
    """reg_sqrt models: LightGBM's `Sign(x) * x * x`, with Sign an int, so -0.0 and 0.0 give 0.0."""
    scores = np.array([[-3.5], [-1e-200], [-0.0], [0.0], [0.5], [1.0], [2.0], [1e150], [-np.inf]])

    expected = [(1 if x > 0 else -1 if x < 0 else 0) * x * x for x in scores[:, 0].tolist()]

    assert LINKS["lightgbm_square"](scores, 1.0)[:, 0].tobytes() == np.array(expected).tobytes()
