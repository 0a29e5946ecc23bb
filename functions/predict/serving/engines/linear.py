"""Linear models (LogisticRegression, LinearRegression, Ridge, Lasso, ElasticNet...) with
numpy alone, bit for bit as scikit-learn 1.9 computes them.

How scikit-learn computes them: the rows are checked (2-D, finite) and kept as float64;
a regressor returns `X @ coef_ + intercept_` (coef_ 1-D); a classifier's decision is
`X @ coef_.T + intercept_` (coef_ 2-D). A binary classifier predicts classes_[1] where the
decision is > 0 and its probability is scipy's `expit`, which is `1 / (1 + exp(-d))` with
libm's `exp`; a multiclass one predicts the first maximum and its probabilities are a
softmax computed in place: subtract the row maximum, `np.exp`, divide by the row sum.

The same numpy calls on arrays of the same shape and layout give the same bits (BLAS picks
its kernel from those). numpy's own `exp` is not libm's: expit and softmax are serving/engines/links.py's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from serving.engines.base import KINDS, Arrays, check_format_version, check_width
from serving.engines.errors import NonFiniteInputError
from serving.engines.links import expit, softmax_in_place
from serving.engines.values import labels

FORMAT_VERSION = 1


def finite_float_rows(rows: NDArray[Any], n_features: int) -> NDArray[Any]:
    """The rows as scikit-learn's check_array leaves them for a linear model: float (object
    arrays converted to float64, layout kept), 2-D, `n_features` wide, finite."""
    # Not mutated, equivalent: float rows reach a linear engine as float64 (the API's, or a step's output): converting
    # them changes nothing.
    features = rows if rows.dtype.kind == "f" else np.asarray(rows, dtype=np.float64)  # pragma: no mutate
    check_width(features, n_features)
    if not np.isfinite(features).all():
        raise NonFiniteInputError("NaN or infinity")
    return features


class LinearEngine:
    """A linear regressor, or a logistic regression classifier, as arrays."""

    def __init__(self, arrays: Arrays) -> None:
        check_format_version(arrays, "", "linear", FORMAT_VERSION)
        self.coef: NDArray[np.float64] = arrays["coef"]
        self.intercept: NDArray[np.float64] = arrays["intercept"]
        self.n_features = int(self.coef.shape[-1])
        kind = str(arrays["kind"])
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not one of {KINDS}")
        self.classes: NDArray[Any] | None = labels(arrays, "classes") if kind == "classifier" else None

    def _decision(self, rows: NDArray[Any]) -> NDArray[np.float64]:
        features = finite_float_rows(rows, self.n_features)
        # Huge finite inputs overflow to inf (and inf - inf to NaN) as they do in scikit-learn.
        # Not mutated, equivalent: no decision makes exp or the division invalid: ±inf and NaN pass silently, warnings
        # as errors; after the row maximum is subtracted every exponent is <= 0 or NaN: nothing here can overflow.
        with np.errstate(over="ignore", invalid="ignore"):  # pragma: no mutate
            if self.classes is None:
                decision: NDArray[np.float64] = features @ self.coef + self.intercept
            else:
                decision = features @ self.coef.T + self.intercept
        return decision

    def predict(self, rows: NDArray[Any]) -> NDArray[Any]:
        decision = self._decision(rows)
        if self.classes is None:
            return decision
        binary = decision.shape[1] == 1
        indices = (decision[:, 0] > 0).astype(np.intp) if binary else np.argmax(decision, axis=1)
        # Not mutated, equivalent: classes is 1-d: take along axis None or 0 picks the same labels.
        return self.classes.take(indices, axis=0)  # pragma: no mutate

    def predict_proba(self, rows: NDArray[Any]) -> NDArray[np.float64]:
        if self.classes is None:
            raise TypeError("predict_proba is only defined for classifiers")
        decision = self._decision(rows)
        if decision.shape[1] == 1:
            # Not mutated, equivalent: numpy reads any negative size as the unknown one.
            positive = expit(decision.reshape(-1))  # pragma: no mutate
            return np.stack([1 - positive, positive], axis=1)
        return softmax_in_place(decision)
