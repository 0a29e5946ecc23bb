"""XGBoost models compiled to the tree format answer bit for bit as XGBoost's own wrappers do."""

from __future__ import annotations

import json
import re
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
from build.engines.trees import probe_rows
from serving.engines.tree_engine import TreeEngine
from tests.shared import examples
from tests.unit.build.engines.bitwise import assert_same, grid_rows, through_arrays

CLASSIFIER_OBJECTIVES = ["binary:logistic", "multi:softprob", "multi:softmax"]
REGRESSOR_OBJECTIVES = ["reg:squarederror", "reg:absoluteerror", "count:poisson", "reg:gamma", "reg:logistic"]
# Values the rows are drawn from: repeats make thresholds land on them; NaN is missing.
GRID = [np.nan, -0.0, 0.0, 0.1, 0.25, 1.0, 1.5, 2.0, 3.3, -2.5, 1e-7, 7.0]


def compiled(estimator: Any) -> TreeEngine:
    return through_arrays(compile_xgboost.ensemble(estimator))


def fit(objective: str, rows: NDArray[np.float64], seed: int, params: dict[str, Any]) -> Any:
    rng = np.random.default_rng(seed)
    signal = np.nan_to_num(rows[:, 0], nan=1.0)
    if objective in CLASSIFIER_OBJECTIVES:
        n_classes = 2 if objective == "binary:logistic" else 3
        target = (np.arange(len(rows)) + (signal > 1)) % n_classes
        model: Any = xgboost.XGBClassifier(objective=objective, **params)
    else:
        target = np.abs(signal + rng.normal(size=len(rows))) + 0.1
        if objective == "reg:logistic":
            target = (target > np.median(target)).astype(float)
        model = xgboost.XGBRegressor(objective=objective, **params)
    with warnings.catch_warnings(), xgboost.config_context(verbosity=0):
        warnings.simplefilter("ignore")
        return model.fit(rows, target)


@settings(max_examples=examples(0.8), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=grid_rows(GRID, n_features=(1, 4), n_rows=(24, 60)),
    objective=st.sampled_from(CLASSIFIER_OBJECTIVES + REGRESSOR_OBJECTIVES),
    n_estimators=st.integers(1, 8),
    max_depth=st.integers(1, 4),
    base_score=st.one_of(st.none(), st.floats(0.2, 0.8)),
    extra=st.lists(st.sampled_from([*GRID, np.inf, -np.inf, 1e300, -1e-45, 3.4e38]), min_size=4, max_size=40),
)
def test_compiled_xgboost_answers_bitwise_as_the_wrapper(
    data: tuple[NDArray[np.float64], int],
    objective: str,
    n_estimators: int,
    max_depth: int,
    base_score: float | None,
    extra: list[float],
) -> None:
    rows, seed = data
    params = {"n_estimators": n_estimators, "max_depth": max_depth, "n_jobs": 1, "random_state": seed}
    if base_score is not None and not objective.startswith("multi"):
        params["base_score"] = base_score
    estimator = fit(objective, rows, seed, params)
    engine = compiled(estimator)
    drawn = np.resize(np.array(extra), (len(extra) // rows.shape[1] or 1) * rows.shape[1]).reshape(-1, rows.shape[1])
    probes = probe_rows(compile_xgboost.ensemble(estimator), rows)
    assert_same(estimator, engine, np.vstack([rows, drawn, probes]))


def test_early_stopping_serves_the_trees_up_to_best_iteration() -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(300, 4))
    target = (rows[:, 0] + rng.normal(scale=2, size=300) > 0).astype(int)
    estimator = xgboost.XGBClassifier(n_estimators=200, max_depth=3, n_jobs=1, early_stopping_rounds=3)
    estimator.fit(rows[:200], target[:200], eval_set=[(rows[200:], target[200:])], verbose=False)
    assert estimator.best_iteration + 1 < estimator.get_booster().num_boosted_rounds()
    assert_same(estimator, compiled(estimator), rows)


def test_vector_base_score_per_class() -> None:
    rows = np.random.default_rng(4).normal(size=(90, 3))
    target = np.arange(90) % 3
    estimator = xgboost.XGBClassifier(n_estimators=4, max_depth=2, n_jobs=1, base_score=[0.2, -0.5, 0.3])
    estimator.fit(rows, target)
    assert compile_xgboost.ensemble(estimator).base_score.tolist() == pytest.approx([0.2, -0.5, 0.3])
    assert_same(estimator, compiled(estimator), rows)


def test_dart_tree_weights_are_applied() -> None:
    rows = np.random.default_rng(5).normal(size=(120, 3))
    target = rows[:, 0] * 3 + rows[:, 1]
    estimator = xgboost.XGBRegressor(n_estimators=20, max_depth=3, n_jobs=1, rate_drop=0.4, random_state=2)
    with warnings.catch_warnings(), xgboost.config_context(verbosity=0):
        warnings.simplefilter("ignore")
        estimator.fit(rows, target)
    assert_same(estimator, compiled(estimator), rows)


# XGBoost's deprecation notices (gblinear) arrive through its C log callback, which warns.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: xgboost.XGBRegressor(booster="gblinear", n_estimators=2), "booster 'gblinear'"),
        (lambda: xgboost.XGBRegressor(n_estimators=2, missing=0.0), "missing=0.0"),
        (lambda: xgboost.XGBClassifier(n_estimators=2, objective="binary:hinge"), "binary:hinge"),
        (
            lambda: xgboost.XGBRegressor(n_estimators=2, objective="survival:cox"),
            "^XGBRegressor objective 'survival:cox' is not compiled$",
        ),
    ],
    # Plain test ids: mutmut selects each test by its id.
    ids=["gblinear", "missing", "binary-hinge", "survival-cox"],
)
def test_what_does_not_compile_is_refused_with_the_reason(make: Any, reason: str) -> None:
    rows = np.random.default_rng(6).normal(size=(40, 2))
    target = (rows[:, 0] > 0).astype(int)
    with warnings.catch_warnings(), xgboost.config_context(verbosity=0):
        warnings.simplefilter("ignore")
        estimator = make().fit(rows, target)
    with pytest.raises(UnsupportedEstimatorError, match=reason):
        compile_xgboost.ensemble(estimator)


def test_categorical_splits_are_refused() -> None:
    rows = np.array([[float(i % 4), float(i % 7)] for i in range(80)])
    target = (rows[:, 0] == 2).astype(int)
    estimator = xgboost.XGBClassifier(
        n_estimators=2, max_depth=2, n_jobs=1, feature_types=["c", "q"], enable_categorical=True
    ).fit(rows, target)
    with pytest.raises(UnsupportedEstimatorError, match=r"^XGBoost categorical splits are not compiled$"):
        compile_xgboost.ensemble(estimator)


def test_base_score_text_must_be_float32_values() -> None:
    assert compile_xgboost.parse_base_score("[5E-1,2.5E0]").tolist() == [0.5, 2.5]
    with pytest.raises(UnsupportedEstimatorError, match="float32"):
        compile_xgboost.parse_base_score("0.1000000000001")


class NotXGBoost:
    """A model of another library that also has a get_booster method."""

    def get_booster(self) -> None:
        return None


def test_only_xgboost_s_own_wrappers_are_taken_for_xgboost_models() -> None:
    assert compile_xgboost.supports(xgboost.XGBRegressor())
    assert not compile_xgboost.supports(NotXGBoost())
    assert not compile_xgboost.supports(xgboost.Booster())


@pytest.mark.parametrize("base_score", [1e-7, 0.9999999])
@pytest.mark.parametrize("make", [xgboost.XGBRegressor, xgboost.XGBClassifier])
def test_a_base_score_beyond_xgboosts_clamp_is_clamped_as_xgboost_does(make: Any, base_score: float) -> None:
    # XGBoost clamps a logistic base_score to [1e-6, 1 - 1e-6] before it takes its margin.
    rows = np.random.default_rng(7).normal(size=(60, 2))
    target = np.full(60, int(base_score > 0.5))
    target[:2] = 1 - target[:2]
    estimator = make(objective="binary:logistic", base_score=base_score, n_estimators=2, max_depth=2, n_jobs=1)
    with warnings.catch_warnings(), xgboost.config_context(verbosity=0):
        warnings.simplefilter("ignore")
        estimator.fit(rows, target)
    assert_same(estimator, compiled(estimator), rows)


def reloaded(estimator: Any, edit: Any, wrapper: Any = None) -> Any:
    """`estimator`'s model saved as a JSON file, edited, and loaded into a new wrapper (its own type unless told)."""
    document = json.loads(bytes(estimator.get_booster().save_raw("json")))
    edit(document["learner"])
    loaded = (wrapper or type(estimator))()
    loaded.load_model(bytearray(json.dumps(document).encode()))
    return loaded


def three_class_model() -> Any:
    rows = np.random.default_rng(8).normal(size=(60, 2))
    return xgboost.XGBClassifier(n_estimators=2, max_depth=2, n_jobs=1).fit(rows, np.arange(60) % 3)


def test_the_scalar_base_score_of_an_older_multiclass_model_is_served_as_xgboost_expands_it() -> None:
    def scalar(learner: dict[str, Any]) -> None:
        learner["learner_model_param"]["base_score"] = "4E-1"

    estimator = reloaded(three_class_model(), scalar)
    assert compile_xgboost.ensemble(estimator).base_score.tolist() == pytest.approx([0.4, 0.4, 0.4])
    assert_same(estimator, compiled(estimator), np.random.default_rng(9).normal(size=(40, 2)))


def swap_the_first_trees_children(learner: dict[str, Any]) -> None:
    tree = learner["gradient_booster"]["model"]["trees"][0]
    tree["left_children"], tree["right_children"] = tree["right_children"], tree["left_children"]


def to_squared_error(learner: dict[str, Any]) -> None:
    learner["objective"] = {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}}


def test_models_edited_into_shapes_xgboost_serves_but_the_compiler_does_not_are_refused_with_the_reason() -> None:
    rows = np.random.default_rng(10).normal(size=(60, 2))
    regressor = xgboost.XGBRegressor(n_estimators=2, max_depth=3, n_jobs=1).fit(rows, rows[:, 0])
    swapped = reloaded(regressor, swap_the_first_trees_children)
    message = "an XGBoost tree's right child is not its left child + 1"
    with pytest.raises(UnsupportedEstimatorError, match=f"^{re.escape(message)}$"):
        compile_xgboost.ensemble(swapped)
    # Three outputs read through the regressor's wrapper.
    outputs = reloaded(three_class_model(), to_squared_error, wrapper=xgboost.XGBRegressor)
    assert outputs.predict(rows).shape == (60, 3)
    message = "XGBRegressor with reg:squarederror and 3 outputs is not compiled"
    with pytest.raises(UnsupportedEstimatorError, match=f"^{re.escape(message)}$"):
        compile_xgboost.ensemble(outputs)


def test_a_two_class_softprob_model_is_refused_as_its_wrapper_answers_with_one_label_a_class() -> None:
    # For two classes and two outputs the wrapper's predict marks each class above 0.5 (a multi-label answer).
    rows = np.random.default_rng(11).normal(size=(60, 2))
    estimator = xgboost.XGBClassifier(objective="multi:softprob", num_class=2, n_estimators=2, n_jobs=1)
    estimator.fit(rows, (rows[:, 0] > 0).astype(int))
    assert estimator.predict(rows).shape == (60, 2)
    message = "XGBClassifier with 'multi:softprob' and 2 classes is not compiled"
    with pytest.raises(UnsupportedEstimatorError, match=f"^{re.escape(message)}$"):
        compile_xgboost.ensemble(estimator)
