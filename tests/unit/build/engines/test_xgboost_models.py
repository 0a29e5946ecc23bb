"""XGBoost models beyond the common objectives compile exactly, and what cannot is refused with the reason."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import xgboost
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from build.engines import xgboost as compile_xgboost
from build.engines.base import UnsupportedEstimatorError
from build.engines.trees import guarantee, probe_rows
from serving.engines.tree_engine import TreeEngine
from tests.shared import examples

GRID = [np.nan, -0.0, 0.0, 0.1, 1.0, 1.5, -2.5, 1e-7, 7.0, 1e30]


def same_answers(estimator: Any, rows: NDArray[np.float64]) -> None:
    engine = TreeEngine.from_arrays(compile_xgboost.ensemble(estimator).to_arrays())
    expected, actual = np.asarray(estimator.predict(rows)), engine.predict(rows)
    assert (expected.dtype, expected.tobytes()) == (actual.dtype, actual.tobytes())
    if engine.classes is not None:
        expected_proba, actual_proba = estimator.predict_proba(rows), engine.predict_proba(rows)
        assert expected_proba.shape == actual_proba.shape
        assert (expected_proba.dtype, expected_proba.tobytes()) == (actual_proba.dtype, actual_proba.tobytes())


def fitted(make: Any, rows: NDArray[np.float64], target: NDArray[Any]) -> Any:
    with warnings.catch_warnings(), xgboost.config_context(verbosity=0):
        warnings.simplefilter("ignore")
        return make().fit(rows, target)


@settings(max_examples=examples(0.5), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(st.sampled_from(GRID), min_size=90, max_size=90),
    seed=st.integers(0, 2**16),
    kind=st.sampled_from(["logitraw-classifier", "logitraw-regressor", "quantile", "random-forest", "lossguide"]),
)
def test_more_xgboost_models_answer_bitwise_as_the_wrapper(cells: list[float], seed: int, kind: str) -> None:
    rows = np.array(cells).reshape(30, 3)
    rows = np.vstack([rows, np.random.default_rng(seed).normal(size=(40, 3))])
    labels = (np.nan_to_num(rows[:, 0]) + np.arange(len(rows)) % 3 > 1).astype(int)
    common = {"n_estimators": 6, "n_jobs": 1, "random_state": seed}
    makers = {
        "logitraw-classifier": lambda: xgboost.XGBClassifier(objective="binary:logitraw", max_depth=3, **common),
        "logitraw-regressor": lambda: xgboost.XGBRegressor(objective="binary:logitraw", max_depth=3, **common),
        "quantile": lambda: xgboost.XGBRegressor(objective="reg:quantileerror", quantile_alpha=0.8, **common),
        "random-forest": lambda: xgboost.XGBRFRegressor(max_depth=3, **common),
        "lossguide": lambda: xgboost.XGBRegressor(max_depth=0, grow_policy="lossguide", max_leaves=9, **common),
    }
    estimator = fitted(makers[kind], rows, labels)
    same_answers(estimator, np.vstack([rows, probe_rows(compile_xgboost.ensemble(estimator), rows)]))


def test_a_logitraw_classifier_is_exact_on_any_cpu() -> None:
    rows = np.random.default_rng(0).normal(size=(60, 2))
    estimator = fitted(lambda: xgboost.XGBClassifier(objective="binary:logitraw", n_estimators=3), rows, rows[:, 0] > 0)
    # Its "probabilities" are the margin and 1 - margin: sums and a subtraction, no exp.
    assert guarantee(compile_xgboost.ensemble(estimator)) == "bitwise-anywhere"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: xgboost.XGBRegressor(n_estimators=0), "^an XGBoost model without trees is not compiled$"),
        (
            lambda: xgboost.XGBRegressor(objective="reg:quantileerror", quantile_alpha=[0.2, 0.8], n_estimators=2),
            "^XGBoost models of several targets are not compiled$",
        ),
    ],
    # Plain test ids: mutmut selects each test by its id.
    ids=["no-trees", "several-targets"],
)
def test_xgboost_models_that_do_not_compile_say_why(make: Any, reason: str) -> None:
    rows = np.random.default_rng(6).normal(size=(40, 2))
    estimator = fitted(make, rows, rows[:, 0])
    with pytest.raises(UnsupportedEstimatorError, match=reason):
        compile_xgboost.ensemble(estimator)
