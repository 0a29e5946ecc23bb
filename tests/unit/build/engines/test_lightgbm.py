"""LightGBM models compiled to the tree format answer bit for bit as LightGBM's own wrappers do."""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from build.engines import lightgbm as compile_lightgbm
from build.engines.base import UnsupportedEstimatorError
from build.engines.trees import probe_rows
from serving.engines.tree_engine import TreeEngine
from serving.engines.trees import ZERO_THRESHOLD
from tests.shared import examples
from tests.unit.build.engines.bitwise import assert_same, grid_rows, through_arrays

CLASSIFIER_OBJECTIVES = ["binary", "multiclass", "multiclassova"]
REGRESSOR_OBJECTIVES = ["regression", "regression_l1", "poisson", "huber", "gamma", "tweedie"]
GRID = [np.nan, -0.0, 0.0, 0.1, 0.25, 1.0, 1.5, 2.0, 3.3, -2.5, 1e-36, -ZERO_THRESHOLD, 7.0]
CATEGORY_GRID = [np.nan, 0.0, 1.0, 2.0, 3.0, 5.0, 9.0, 40.0]


def compiled(estimator: Any) -> TreeEngine:
    return through_arrays(compile_lightgbm.ensemble(estimator))


@st.composite
def datasets(draw: st.DrawFn) -> tuple[NDArray[np.float64], int]:
    """Grid rows whose last column holds category codes (or NaN)."""
    rows, seed = draw(grid_rows(GRID, n_features=(2, 4), n_rows=(40, 80)))
    rows[:, -1] = draw(st.lists(st.sampled_from(CATEGORY_GRID), min_size=len(rows), max_size=len(rows)))
    return rows, seed


@settings(max_examples=examples(0.8), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=datasets(),
    objective=st.sampled_from(CLASSIFIER_OBJECTIVES + REGRESSOR_OBJECTIVES),
    n_estimators=st.integers(1, 8),
    num_leaves=st.integers(2, 8),
    use_missing=st.booleans(),
    zero_as_missing=st.booleans(),
    categorical=st.booleans(),
    random_forest=st.booleans(),
    extra=st.lists(
        st.sampled_from([*GRID, np.inf, -np.inf, -1.0, -0.5, 2.5, 1e300, 3e9, ZERO_THRESHOLD]), min_size=4, max_size=40
    ),
)
def test_compiled_lightgbm_answers_bitwise_as_the_wrapper(
    data: tuple[NDArray[np.float64], int],
    objective: str,
    n_estimators: int,
    num_leaves: int,
    use_missing: bool,
    zero_as_missing: bool,
    categorical: bool,
    random_forest: bool,
    extra: list[float],
) -> None:
    rows, seed = data
    rng = np.random.default_rng(seed)
    params: dict[str, Any] = {
        "objective": objective,
        "n_estimators": n_estimators,
        "num_leaves": num_leaves,
        "use_missing": use_missing,
        "zero_as_missing": zero_as_missing,
        "min_child_samples": 2,
        "min_data_per_group": 2,
        "cat_smooth": 1.0,
        "n_jobs": 1,
        "verbose": -1,
        "random_state": seed,
    }
    if random_forest:
        params |= {"boosting_type": "rf", "bagging_freq": 1, "bagging_fraction": 0.8}
    signal = np.nan_to_num(rows[:, 0], nan=1.0) + np.nan_to_num(rows[:, -1], nan=0.0) % 3
    if objective in CLASSIFIER_OBJECTIVES:
        n_classes = 2 if objective == "binary" else 3
        target: NDArray[Any] = np.array(["a", "b", "c"])[(np.arange(len(rows)) + (signal > 1)) % n_classes]
        estimator: Any = lightgbm.LGBMClassifier(**params)
    else:
        target = np.abs(signal + rng.normal(size=len(rows))) + 0.1
        estimator = lightgbm.LGBMRegressor(**params)
    estimator.fit(rows, target, categorical_feature=[rows.shape[1] - 1] if categorical else "auto")
    drawn = np.resize(np.array(extra), (len(extra) // rows.shape[1] or 1) * rows.shape[1]).reshape(-1, rows.shape[1])
    probes = probe_rows(compile_lightgbm.ensemble(estimator), rows)
    assert_same(estimator, compiled(estimator), np.vstack([rows, drawn, probes]))


def test_values_the_c_api_reads_as_zero_meet_thresholds_as_zero_does() -> None:
    # Zeros in the data put thresholds at +-1e-35f; -1e-35f itself is read as 0.0 by LightGBM.
    rng = np.random.default_rng(1)
    rows = np.where(rng.random((400, 1)) < 0.5, 0.0, rng.normal(size=(400, 1)))
    target = (rows[:, 0] < 0).astype(float) * 3 + (rows[:, 0] == 0) + rng.normal(scale=0.01, size=400)
    estimator = lightgbm.LGBMRegressor(n_estimators=3, num_leaves=4, verbose=-1, n_jobs=1).fit(rows, target)
    raw_thresholds = [
        float(value)
        for tree in compile_lightgbm.read_model(estimator).trees
        for value in tree.get("threshold", "").split()
    ]
    assert -ZERO_THRESHOLD in raw_thresholds or ZERO_THRESHOLD in raw_thresholds
    near_zero = np.array(
        [[-ZERO_THRESHOLD], [ZERO_THRESHOLD], [-1e-36], [0.0], [-0.0], [np.nextafter(-ZERO_THRESHOLD, -1)]]
    )
    assert_same(estimator, compiled(estimator), near_zero)


def test_early_stopping_serves_the_trees_up_to_best_iteration() -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(300, 4))
    target = rows[:, 0] + rng.normal(scale=2, size=300)
    estimator = lightgbm.LGBMRegressor(n_estimators=300, num_leaves=7, verbose=-1, n_jobs=1)
    estimator.fit(
        rows[:200], target[:200], eval_X=(rows[200:],), eval_y=(target[200:],),
        callbacks=[lightgbm.early_stopping(3, verbose=False)],
    )  # fmt: skip
    assert 0 < estimator.best_iteration_ < 300
    assert_same(estimator, compiled(estimator), rows)


def test_linear_trees_are_refused() -> None:
    rows = np.random.default_rng(2).normal(size=(60, 2))
    estimator = lightgbm.LGBMRegressor(n_estimators=2, linear_tree=True, verbose=-1, n_jobs=1).fit(rows, rows[:, 0])
    with pytest.raises(UnsupportedEstimatorError, match=r"^LightGBM linear trees are not compiled$"):
        compile_lightgbm.ensemble(estimator)


def test_text_model_is_parsed_exactly() -> None:
    rows = np.random.default_rng(7).normal(size=(80, 3))
    estimator = lightgbm.LGBMRegressor(n_estimators=3, verbose=-1, n_jobs=1).fit(rows, rows[:, 1] / 3)
    model = compile_lightgbm.parse_text_model(estimator.booster_.model_to_string())
    dumped = estimator.booster_.dump_model()["tree_info"][0]["tree_structure"]
    assert float(model.trees[0]["threshold"].split()[0]) == dumped["threshold"]
    assert model.objective[0] == "regression"


def test_pandas_categorical_features_are_refused() -> None:
    import pandas as pd

    frame = pd.DataFrame({"colour": pd.Categorical(["red", "blue", "green"] * 20), "size": np.arange(60.0)})
    estimator = lightgbm.LGBMRegressor(n_estimators=2, min_child_samples=2, verbose=-1, n_jobs=1)
    estimator.fit(frame, np.arange(60.0))
    with pytest.raises(UnsupportedEstimatorError, match="pandas"):
        compile_lightgbm.ensemble(estimator)


def test_an_unfitted_wrapper_is_not_claimed_until_it_has_a_booster() -> None:
    """The build asks each compiler whether it serves a model: a LightGBM wrapper that was never
    fitted has no booster yet, and its answer is no (not LightGBM's not-fitted error)."""
    assert not compile_lightgbm.supports(lightgbm.LGBMRegressor())
    rows = np.random.default_rng(3).normal(size=(40, 2))
    assert compile_lightgbm.supports(lightgbm.LGBMRegressor(n_estimators=2, verbose=-1).fit(rows, rows[:, 0]))
