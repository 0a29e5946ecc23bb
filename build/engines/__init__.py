"""Compile fitted scikit-learn estimators into the arrays that functions/predict/serving/engines/
evaluates, and prove the result exact.

Each compiler (build/engines/base.py) turns one family of estimators into a flat dict of
arrays under a key prefix and says which rows stress it most. The exactness gate compares the
compiled engine with the estimator itself, `predict` and (for classifiers) `predict_proba`,
byte for byte, on the datasets it is given: any difference, however small, is an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from build.engines import boosting, forest
from build.engines import lightgbm as compile_lightgbm
from build.engines import xgboost as compile_xgboost
from build.engines.base import CompiledArrays, Compiler, ExactnessError, UnsupportedEstimatorError
from build.engines.linear import LINEAR
from build.engines.pipeline import PIPELINE
from build.engines.trees import TreeCompiler
from serving.engines import Engine
from serving.engines.base import ENGINE_KEY
from serving.manifest import Guarantee

__all__ = [
    "CompiledArrays",
    "Compiler",
    "ExactnessError",
    "Guarantee",
    "UnsupportedEstimatorError",
    "check_exactness",
    "compile_estimator",
]


# Tried in order; the first that supports the estimator compiles it.
COMPILERS: list[Compiler] = [
    TreeCompiler("forest", forest.supports, forest.ensemble).compiler,
    LINEAR,
    PIPELINE,
    TreeCompiler("boosted_trees", boosting.supports, boosting.ensemble).compiler,
    TreeCompiler("xgboost", compile_xgboost.supports, compile_xgboost.ensemble).compiler,
    TreeCompiler("lightgbm", compile_lightgbm.supports, compile_lightgbm.ensemble).compiler,
]


def compiler_for(estimator: Any) -> Compiler:
    """The compiler for `estimator`, or UnsupportedEstimatorError naming what is not supported."""
    for compiler in COMPILERS:
        if compiler.supports(estimator):
            return compiler
    raise UnsupportedEstimatorError(f"no compiled engine for {type(estimator).__name__}")


def compile_estimator(estimator: Any, prefix: str = "") -> CompiledArrays:
    """The estimator's arrays under `prefix`, with `<prefix>engine` naming the engine kind."""
    arrays = compiler_for(estimator).compile(estimator, prefix)
    if prefix + ENGINE_KEY not in arrays:
        raise TypeError(f"the {compiler_for(estimator).name} compiler did not name its engine kind")
    return arrays


def identical(expected: NDArray[Any], actual: NDArray[Any]) -> bool:
    """Same shape, dtype and bytes; for object arrays (string labels), whose bytes are pointers,
    the same type and value element by element."""
    if expected.shape != actual.shape or expected.dtype != actual.dtype:
        return False
    if expected.dtype != object:
        return expected.tobytes() == actual.tobytes()
    # Not mutated, equivalent: the shapes were found equal just before: the two ravels always have the same length.
    # pragma: no mutate start
    return all(type(a) is type(b) and a == b for a, b in zip(expected.ravel(), actual.ravel(), strict=True))
    # pragma: no mutate end


def check_exactness(estimator: Any, engine: Engine, datasets: dict[str, NDArray[Any]]) -> int:
    """Raise ExactnessError naming every dataset on which the engine differs from the estimator;
    return the number of rows checked."""
    problems = []
    checked = 0
    for name, rows in datasets.items():
        checked += len(rows)
        # scikit-learn's finiteness check sums all rows at once: +max and -max make a harmless NaN.
        with np.errstate(invalid="ignore", over="ignore"):
            expected = np.asarray(estimator.predict(rows))
            expected_proba = estimator.predict_proba(rows) if engine.classes is not None else None
        actual = engine.predict(rows)
        if not identical(expected, actual):
            # Row by row as `identical` compares: -0.0 differs from 0.0, which `!=` would not count.
            same_shape = expected.shape == actual.shape
            differs = [
                not same_shape or not identical(expected[i : i + 1], actual[i : i + 1]) for i in range(len(rows))
            ]
            differing = np.flatnonzero(differs)
            problems.append(f"{name}: predict differs on {differing.size} of {len(rows)} rows, first {differing[:5]}")
        if expected_proba is not None:
            actual_proba = engine.predict_proba(rows)
            if expected_proba.shape != actual_proba.shape or expected_proba.tobytes() != actual_proba.tobytes():
                same_shape = expected_proba.shape == actual_proba.shape
                # Not mutated, equivalent: float() reads "nan" in any case: "NAN" is the same NaN.
                # pragma: no mutate start
                worst = float(np.max(np.abs(expected_proba - actual_proba))) if same_shape else float("nan")
                # pragma: no mutate end
                problems.append(f"{name}: predict_proba differs (largest difference {worst:.3g})")
    if problems:
        raise ExactnessError("the compiled model is not exact: " + "; ".join(problems))
    return checked
