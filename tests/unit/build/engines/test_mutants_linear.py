"""The linear compiler's refusals, each naming what it cannot compile: an estimator of another
family handed to it directly (the Compiler contract: compile refuses what it cannot do, saying
why), and an intercept that is not float64 beside float64 coefficients."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_regression
from sklearn.linear_model import Ridge
from sklearn.svm import LinearSVR

from build.engines import UnsupportedEstimatorError
from build.engines.linear import LINEAR

ROWS, TARGET = make_regression(n_samples=40, n_features=3, random_state=0)


def test_an_estimator_of_another_family_is_refused_by_name() -> None:
    svr = LinearSVR().fit(ROWS, TARGET)

    assert not LINEAR.supports(svr)
    with pytest.raises(UnsupportedEstimatorError) as refused:
        LINEAR.compile(svr, "")
    assert str(refused.value) == "LinearSVR is not a supported linear model"


def test_an_intercept_that_is_not_float64_is_refused_by_name() -> None:
    ridge = Ridge().fit(ROWS, TARGET)
    ridge.intercept_ = np.float32(ridge.intercept_)

    with pytest.raises(UnsupportedEstimatorError) as refused:
        LINEAR.compile(ridge, "")
    assert str(refused.value) == "intercept_ is float32, only float64 compiles"
