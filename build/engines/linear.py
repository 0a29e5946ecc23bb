"""Compile fitted linear models into the arrays serving/engines/linear.py evaluates."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import (
    ARDRegression,
    BayesianRidge,
    ElasticNet,
    ElasticNetCV,
    HuberRegressor,
    Lasso,
    LassoCV,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    Ridge,
    RidgeCV,
    SGDRegressor,
)

from build.engines.base import CompiledArrays, Compiler, UnsupportedEstimatorError
from build.engines.values import label_arrays
from serving.engines.linear import FORMAT_VERSION
from serving.engines.links import COMPLEX_EXP_LIMIT

CLASSIFIERS = (LogisticRegression, LogisticRegressionCV)
# Every one predicts with LinearModel._decision_function (SGDRegressor with the same product).
REGRESSORS = (
    LinearRegression,
    Ridge,
    RidgeCV,
    Lasso,
    LassoCV,
    ElasticNet,
    ElasticNetCV,
    SGDRegressor,
    HuberRegressor,
    BayesianRidge,
    ARDRegression,
)
PROBE_SEED = 0


def supports(estimator: Any) -> bool:
    return type(estimator) in CLASSIFIERS + REGRESSORS and hasattr(estimator, "coef_")


def _float64(value: Any, name: str) -> NDArray[np.float64]:
    array = np.asarray(value)
    if array.dtype != np.float64:
        # A float32 fit keeps float32 coefficients; their product promotes differently.
        raise UnsupportedEstimatorError(f"{name} is {array.dtype}, only float64 compiles")
    return array


def compile_linear(estimator: Any, prefix: str) -> CompiledArrays:
    if not supports(estimator):
        raise UnsupportedEstimatorError(f"{type(estimator).__name__} is not a supported linear model")
    is_classifier = type(estimator) in CLASSIFIERS
    coef = _float64(estimator.coef_, "coef_")
    if coef.ndim != (2 if is_classifier else 1):
        raise UnsupportedEstimatorError(f"{type(estimator).__name__} with coef_ of shape {coef.shape} (multi-output)")
    arrays: CompiledArrays = {
        "engine": np.array("linear"),
        "format_version": np.array(FORMAT_VERSION),
        "kind": np.array("classifier" if is_classifier else "regressor"),
        "coef": coef,
        "intercept": _float64(estimator.intercept_, "intercept_"),
    }
    if is_classifier:
        arrays |= label_arrays(np.asarray(estimator.classes_), "classes")
    return {prefix + key: value for key, value in arrays.items()}


def linear_probes(estimator: Any, reference_rows: NDArray[Any]) -> NDArray[np.float64]:
    """Rows around the reference rows, extremes, and rows along each coefficient vector whose
    decisions sweep both sides of zero and of the exp path's switch (|d| = 700)."""
    rng = np.random.default_rng(PROBE_SEED)
    reference = np.asarray(reference_rows, dtype=np.float64)
    n_features = reference.shape[1]
    center = reference.mean(axis=0)
    spread = reference.std(axis=0) + 1.0
    rows = [reference, center + rng.normal(size=(500, n_features)) * 3 * spread]
    for extreme in (0.0, -0.0, 1e10, -1e10, 1e300, -1e300):
        for feature in range(n_features):
            row = center.copy()
            row[feature] = extreme
            rows.append(row[None, :])
    coef = np.atleast_2d(estimator.coef_)
    # Every 20 from -800 to 800 (zero among them), and the exp path's switch.
    targets = np.concatenate([np.linspace(-800, 800, 81), [-COMPLEX_EXP_LIMIT, COMPLEX_EXP_LIMIT]])
    for weights in coef:
        norm = float(weights @ weights)
        if norm > 0:
            base = center - (center @ weights) * weights / norm
            rows.append(base + np.outer(targets, weights / norm))
    return np.vstack(rows)


LINEAR = Compiler(
    name="linear",
    supports=supports,
    compile=compile_linear,
    guarantee=lambda _: "bitwise-same-libraries",
    probe_rows=linear_probes,
)
