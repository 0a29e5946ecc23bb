"""The links that turn a model's raw scores into its answers, each computed exactly as its
library computes it: the one place every compiled engine takes them from.

Why by hand: the libraries' own functions are not in the package (scipy, scikit-learn), or are
C++ (XGBoost, LightGBM), and "the same formula" is not enough: numpy's vectorised `exp` is not
libm's `exp`, which scipy's `expit` calls per element, so each link names the function it uses.

A tree link maps the scores, shape (rows, outputs) in the library's memory order, and a
parameter (LightGBM's `sigmoid`; 1.0 where unused) to a regressor's values (one column) or a
classifier's probabilities (a column per class). LINKS registers them by the name the tree
format (serving/engines/trees.py) stores.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Below this |x| the complex exp is libm's exp (glibc scales arguments above ~709).
COMPLEX_EXP_LIMIT = 700.0

Link = Callable[[NDArray[Any], float], NDArray[Any]]


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
    exponent = np.zeros(decision.shape, dtype=np.complex128)
    np.negative(decision, out=exponent.real)
    with np.errstate(over="ignore", invalid="ignore"):
        np.exp(exponent, out=exponent)
        result: NDArray[np.float64] = np.divide(1.0, exponent.real + 1.0)
    flat = result.reshape(-1)
    for index in np.flatnonzero(~(np.abs(decision.reshape(-1)) < COMPLEX_EXP_LIMIT)):
        flat[index] = 1.0 / (1.0 + libm_exp(-float(decision.reshape(-1)[index])))
    return result


def softmax_in_place(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """scikit-learn's softmax (utils.extmath.softmax, and its multinomial loss): subtract each row's
    maximum, numpy's `exp`, divide by the row's sum, all in place; the sums' order follows the
    array's memory order, as scikit-learn's do."""
    with np.errstate(over="ignore", invalid="ignore"):
        scores -= np.max(scores, axis=1).reshape(-1, 1)
        np.exp(scores, out=scores)
        scores /= np.sum(scores, axis=1).reshape(-1, 1)
    return scores


def binary_columns(positive: NDArray[np.float64]) -> NDArray[np.float64]:
    """scikit-learn's two probability columns from the positive class's: `[1 - p, p]`."""
    proba = np.empty((positive.shape[0], 2), dtype=positive.dtype)
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
    return softmax_in_place(scores.copy(order="K"))


def _exp(scores: NDArray[np.float64], _: float) -> NDArray[np.float64]:
    """LogLink.inverse (Poisson, Gamma, Tweedie): numpy's exp."""
    with np.errstate(over="ignore"):
        return np.exp(scores)


LINKS: dict[str, Link] = {
    "identity": _identity,
    "expit": _expit,
    "exponential_loss": _exponential_loss,
    "softmax": _softmax,
    "exp": _exp,
}
"""Every link by its stored name. scikit-learn's are above; XGBoost's and LightGBM's register
here too (their sigmoid, softmax, one-vs-rest sigmoid and exp, each with its library's own
arithmetic: float32 `expf` for XGBoost, double `exp` for LightGBM)."""
