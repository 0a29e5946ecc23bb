"""The links that turn a model's raw scores into its answers, each computed exactly as its
library computes it: the one place every compiled engine takes them from.

Why by hand: the libraries' own functions are not in the package (scipy, scikit-learn), or are
C++ (XGBoost, LightGBM), and "the same formula" is not enough: numpy's vectorised `exp` is not
libm's `exp`, which scipy's `expit` calls per element, so each link names the function it uses.

A tree link maps the scores, shape (rows, outputs) in the library's memory order, and a
parameter (LightGBM's `sigmoid`; NO_PARAMETER where unused) to a regressor's values (one column) or a
classifier's probabilities (a column per class). LINKS registers them by the name the tree
format (serving/engines/trees.py) stores.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Below this |x| the complex exp is libm's exp (glibc scales arguments above ~709).
COMPLEX_EXP_LIMIT = 700.0

Link = Callable[[NDArray[Any], float], NDArray[Any]]
# The parameter given to (and stored for) a link that reads none.
NO_PARAMETER = 1.0


def libm_exp(value: float) -> float:
    """libm's exp of one double, inf where it overflows (math.exp raises instead)."""
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


def expit(decision: NDArray[np.float64]) -> NDArray[np.float64]:
    """scipy.special.expit, bit for bit: `1 / (1 + exp(-d))` with libm's exp, element by element.

    numpy's complex exp calls libm's `exp` for the real part of a real argument (checked against
    math.exp where this was written, and by the build gate on every build), in one vectorised
    pass; near overflow, where the complex exp scales its argument, each value goes through
    math.exp itself."""
    # Not mutated: a float64 array takes numpy's real exp, which is libm's on CPUs without AVX-512
    # (such as the one the audit ran on), so no test there tells them apart; the build gate does elsewhere.
    exponent = np.zeros(decision.shape, dtype=np.complex128)  # pragma: no mutate
    np.negative(decision, out=exponent.real)
    # The complex exp of a real argument raises no invalid flag (NaN passes quietly), nor does 1 / (1 + e).
    with np.errstate(over="ignore"):
        np.exp(exponent, out=exponent)
        result: NDArray[np.float64] = np.divide(1.0, exponent.real + 1.0)
    flat, flat_decision = result.ravel(), decision.ravel()
    # Not mutated, equivalent: at the limit itself both ways give libm's exp (the complex exp scales above ~709).
    within = np.abs(flat_decision) < COMPLEX_EXP_LIMIT  # pragma: no mutate
    for index in np.flatnonzero(~within):
        flat[index] = 1.0 / (1.0 + libm_exp(-float(flat_decision[index])))
    return result


def softmax_in_place(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """scikit-learn's softmax (utils.extmath.softmax, and its multinomial loss): subtract each row's
    maximum, numpy's `exp`, divide by the row's sum, all in place; the sums' order follows the
    array's memory order, as scikit-learn's do."""
    with np.errstate(over="ignore", invalid="ignore"):
        scores -= np.max(scores, axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= np.sum(scores, axis=1, keepdims=True)
    return scores


def binary_columns(positive: NDArray[np.float64]) -> NDArray[np.float64]:
    """scikit-learn's two probability columns from the positive class's: `[1 - p, p]`."""
    # Not mutated, equivalent: scikit-learn's links pass float64, numpy's default dtype.
    proba = np.empty((positive.shape[0], 2), dtype=positive.dtype)  # pragma: no mutate
    proba[:, 1] = positive
    proba[:, 0] = 1 - proba[:, 1]
    return proba


def _identity(scores: NDArray[Any], _: float) -> NDArray[Any]:
    return scores


def _expit(scores: NDArray[np.float64], _: float) -> NDArray[np.float64]:
    """HalfBinomialLoss.predict_proba."""
    return binary_columns(expit(scores[:, 0]))


def _exponential_loss(scores: NDArray[np.float64], _: float) -> NDArray[np.float64]:
    """ExponentialLoss.predict_proba: expit of twice the score."""
    return binary_columns(expit(2 * scores[:, 0]))


def _softmax(scores: NDArray[np.float64], _: float) -> NDArray[np.float64]:
    """HalfMultinomialLoss.predict_proba: softmax of a copy in the scores' memory order."""
    # Not mutated, equivalent: numpy reads the order's letter in either case.
    return softmax_in_place(scores.copy(order="K"))  # pragma: no mutate


def _exp(scores: NDArray[np.float64], _: float) -> NDArray[np.float64]:
    """LogLink.inverse (Poisson, Gamma, Tweedie): numpy's exp."""
    with np.errstate(over="ignore"):
        return np.exp(scores)


# XGBoost: float32 scores and glibc's float `expf` ------------------------------------------------

_LIBM = ctypes.CDLL("libm.so.6")
_LIBM.expf.restype = ctypes.c_float
_LIBM.expf.argtypes = [ctypes.c_float]
# float32 inputs whose expf is a normal float32: outside them every value goes through libm itself.
EXPF_DIRECT_RANGE = (-87.0, 88.8)
# A float64 carries 29 bits below a float32's last bit. When exp's float64 value is this many
# float64 units or more from the midpoint between two float32s, rounding it gives glibc's expf.
EXPF_MIDPOINT = 1 << 28
EXPF_MIDPOINT_MARGIN = 1 << 22
EXPF_LOW_BITS = (1 << 29) - 1
XGBOOST_EXP_CAP = np.float32(88.7)


def expf(values: NDArray[np.float32]) -> NDArray[np.float32]:
    """glibc's `expf` (the C library XGBoost calls) of each float32, bit for bit, vectorised.

    Calling libm per element through ctypes costs microseconds a value. Instead numpy's float64
    `exp` is rounded to float32; that is glibc's answer wherever the float64 value is not near
    the midpoint between two float32s: checked exhaustively, for all 2,237,634,970 float32 inputs
    in EXPF_DIRECT_RANGE, against glibc 2.36 with a margin 4x narrower than EXPF_MIDPOINT_MARGIN
    (glibc's expf, unchanged since 2.28, is within 0.502 ulp, so it can only differ from the
    correctly rounded value that close to a midpoint). The few values near a midpoint (about 0.4
    %) and those outside the range go to libm's expf itself."""
    # Only overflow can happen: exp's underflow is ignored by numpy's default, and exp of NaN or
    # infinity is not an invalid operation.
    with np.errstate(over="ignore"):
        wide = np.exp(values, dtype=np.float64)
        result = wide.astype(np.float32)
    low_bits = wide.view(np.int64) & EXPF_LOW_BITS
    low, high = EXPF_DIRECT_RANGE
    distance = np.abs(low_bits - EXPF_MIDPOINT)
    # Not mutated, equivalent: at the margin itself, and at the range's ends, rounding numpy's exp
    # gives glibc's expf too (tests/unit/serving/engines/test_links.py checks the ends).
    direct = (distance >= EXPF_MIDPOINT_MARGIN) & (values > low) & (values < high)  # pragma: no mutate
    flat_values, flat_result = values.ravel(), result.ravel()
    for index in np.flatnonzero(~direct):
        flat_result[index] = _LIBM.expf(float(flat_values[index]))
    return result


def xgboost_sigmoid(scores: NDArray[np.float32]) -> NDArray[np.float32]:
    """XGBoost's common::Sigmoid in float: `1 / (expf(min(-x, 88.7)) + 1 + 1e-16)`. Its 1e-16 is
    not added: in float32 it is below half a unit of any denominator (each is at least 1)."""
    capped = np.minimum(-scores, XGBOOST_EXP_CAP)
    return np.float32(1) / (expf(capped) + np.float32(1))


def _xgboost_logistic(scores: NDArray[np.float32], _: float) -> NDArray[np.float32]:
    """A regressor's binary:logistic / reg:logistic values."""
    return xgboost_sigmoid(scores)


def _xgboost_binary(scores: NDArray[np.float32], _: float) -> NDArray[np.float32]:
    """XGBClassifier.predict_proba of binary:logistic: the sigmoid, and `1.0 - p` before it in numpy."""
    positive = xgboost_sigmoid(scores[:, 0])
    return np.vstack((1.0 - positive, positive)).transpose()


def _xgboost_raw_binary(scores: NDArray[np.float32], _: float) -> NDArray[np.float32]:
    """XGBClassifier.predict_proba of binary:logitraw: the margin itself, and `1.0 - margin` before it."""
    margin = scores[:, 0]
    return np.vstack((1.0 - margin, margin)).transpose()


def _xgboost_softprob(scores: NDArray[np.float32], _: float) -> NDArray[np.float32]:
    """XGBoost's common::Softmax per row: the float max (fmaxf, in class order), expf of the
    float differences, their sum in double in class order, each divided by the sum as a float."""
    top = scores[:, 0].copy()
    # Not mutated, equivalent: starting at column 0 compares the first column with itself.
    for column in range(1, scores.shape[1]):  # pragma: no mutate
        np.fmax(scores[:, column], top, out=top)
    exponentials = expf(scores - top[:, None])
    # Not mutated, equivalent: float64 is numpy's default dtype.
    total = np.zeros(scores.shape[0], dtype=np.float64)  # pragma: no mutate
    for column in range(scores.shape[1]):
        total += exponentials[:, column]
    result: NDArray[np.float32] = exponentials / total.astype(np.float32)[:, None]
    return result


def _xgboost_margin_softmax(scores: NDArray[np.float32], _: float) -> NDArray[np.float32]:
    """XGBClassifier.predict_proba of multi:softmax: scipy.special.softmax of the float32 margins
    (numpy's max, exp and sum, in float32)."""
    shifted = np.exp(scores - np.max(scores, axis=1, keepdims=True))
    result: NDArray[Any] = shifted / np.sum(shifted, axis=1, keepdims=True)
    return result


def _xgboost_exp(scores: NDArray[np.float32], _: float) -> NDArray[np.float32]:
    """count:poisson, reg:gamma, reg:tweedie: expf of the margin."""
    return expf(scores)


# LightGBM: float64 scores and libm's double `exp` ---------------------------------------------


def exp_libm(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """libm's `exp` of each double, as `expit` computes it (numpy's complex exp)."""
    # Not mutated, as in expit: numpy's real exp is libm's on the CPU the audit ran on.
    exponent = np.zeros(values.shape, dtype=np.complex128)  # pragma: no mutate
    exponent.real = values
    # The complex exp of a real argument raises no invalid flag (NaN passes quietly).
    with np.errstate(over="ignore"):
        np.exp(exponent, out=exponent)
    result = np.ascontiguousarray(exponent.real)
    flat_values, flat_result = values.ravel(), result.ravel()
    # Not mutated, equivalent: at the limit itself both ways give libm's exp (the complex exp scales above ~709).
    within = np.abs(flat_values) < COMPLEX_EXP_LIMIT  # pragma: no mutate
    for index in np.flatnonzero(~within):
        flat_result[index] = libm_exp(float(flat_values[index]))
    return result


def lightgbm_sigmoid(scores: NDArray[np.float64], sigmoid: float) -> NDArray[np.float64]:
    """LightGBM's binary and one-vs-rest ConvertOutput: `1 / (1 + exp(-sigmoid * x))` in double."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + exp_libm(-sigmoid * scores))


def _lightgbm_binary(scores: NDArray[np.float64], sigmoid: float) -> NDArray[np.float64]:
    """LGBMClassifier.predict_proba of a binary model: `np.vstack((1.0 - p, p)).transpose()`."""
    positive = lightgbm_sigmoid(scores[:, 0], sigmoid)
    return np.vstack((1.0 - positive, positive)).transpose()


def _lightgbm_softmax(scores: NDArray[np.float64], _: float) -> NDArray[np.float64]:
    """LightGBM's Common::Softmax per row: max in class order, libm exp of the differences, their
    sum in class order from 0, each divided by it."""
    top = scores[:, 0].copy()
    # Not mutated, equivalent: starting at column 0 compares the first column with itself.
    for column in range(1, scores.shape[1]):  # pragma: no mutate
        # Not mutated, equivalent: `<=` also copies an equal value (0.0 for -0.0: exp(x - top) is the same).
        np.copyto(top, scores[:, column], where=top < scores[:, column])  # pragma: no mutate
    exponentials = exp_libm(scores - top[:, None])
    # Not mutated, equivalent: float64 is numpy's default dtype.
    total = np.zeros(scores.shape[0], dtype=np.float64)  # pragma: no mutate
    for column in range(scores.shape[1]):
        total += exponentials[:, column]
    result: NDArray[np.float64] = exponentials / total[:, None]
    return result


def _lightgbm_exp(scores: NDArray[np.float64], _: float) -> NDArray[np.float64]:
    """poisson, gamma, tweedie: libm's exp."""
    return exp_libm(scores)


def _lightgbm_square(scores: NDArray[np.float64], _: float) -> NDArray[np.float64]:
    """reg_sqrt: `Sign(x) * x * x`, Sign an int in {-1, 0, 1}."""
    # Not mutated, equivalent: `>= 0` for `> 0` (x * x is 0.0 at either zero), float64 as numpy's default.
    sign = (scores > 0).astype(np.float64) - (scores < 0)  # pragma: no mutate
    result: NDArray[np.float64] = sign * scores * scores
    return result


LINKS: dict[str, Link] = {
    "identity": _identity,
    "expit": _expit,
    "exponential_loss": _exponential_loss,
    "softmax": _softmax,
    "exp": _exp,
    "xgboost_logistic": _xgboost_logistic,
    "xgboost_binary": _xgboost_binary,
    "xgboost_raw_binary": _xgboost_raw_binary,
    "xgboost_softprob": _xgboost_softprob,
    "xgboost_margin_softmax": _xgboost_margin_softmax,
    "xgboost_exp": _xgboost_exp,
    "lightgbm_sigmoid": lightgbm_sigmoid,
    "lightgbm_binary": _lightgbm_binary,
    "lightgbm_softmax": _lightgbm_softmax,
    "lightgbm_exp": _lightgbm_exp,
    "lightgbm_square": _lightgbm_square,
}
"""Every link by its stored name. scikit-learn's are above; XGBoost's and LightGBM's register
here too (their sigmoid, softmax, one-vs-rest sigmoid and exp, each with its library's own
arithmetic: float32 `expf` for XGBoost, double `exp` for LightGBM)."""
