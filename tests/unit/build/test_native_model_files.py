"""A native XGBoost or LightGBM model file answers as the object that saved it: a wrapper's file as
that wrapper, a Booster's file as `Booster.predict` of the Booster loaded from it, compiled or not."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightgbm
import numpy as np
import pytest
import xgboost
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from build.engines import lightgbm as compile_lightgbm
from build.engines import xgboost as compile_xgboost
from build.engines.base import UnsupportedEstimatorError
from build.engines.trees import probe_rows
from build.native_models import load_native
from serving.engines.tree_engine import TreeEngine
from tests.shared import examples
from tests.unit.build.conftest import NativeSpec
from tests.unit.build.engines.bitwise import same_bits

ROWS = np.random.default_rng(0).normal(size=(240, 3))
ROWS[np.random.default_rng(1).random(ROWS.shape) < 0.1] = np.nan
LABELS = (np.nan_to_num(ROWS[:, 0]) + np.random.default_rng(2).normal(size=240) > 0).astype(int)


def booster_proba(booster: xgboost.Booster, rows: NDArray[np.float64]) -> NDArray[np.float32]:
    """Booster.predict of a binary:logistic model, as the two columns the served model answers."""
    positive = booster.predict(xgboost.DMatrix(rows))
    return np.vstack((1.0 - positive, positive)).transpose()


def early_stopped_booster() -> xgboost.Booster:
    train, valid = xgboost.DMatrix(ROWS[:160], LABELS[:160]), xgboost.DMatrix(ROWS[160:], LABELS[160:])
    params = {"objective": "binary:logistic", "eta": 0.9, "nthread": 1}
    booster = xgboost.train(params, train, 200, evals=[(valid, "valid")], early_stopping_rounds=2, verbose_eval=False)
    assert booster.best_iteration + 1 < booster.num_boosted_rounds()
    return booster


@settings(max_examples=examples(0.25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    suffix=st.sampled_from([".json", ".ubj"]),
    extra=st.lists(st.sampled_from([np.nan, 0.0, -0.0, 1e30, -3.0, 0.25]), min_size=3, max_size=30),
)
def test_an_early_stopped_booster_file_answers_as_booster_predict_with_every_tree(
    native_spec: NativeSpec, tmp_path_factory: pytest.TempPathFactory, suffix: str, extra: list[float]
) -> None:
    path = tmp_path_factory.mktemp("native") / f"model{suffix}"
    early_stopped_booster().save_model(str(path))
    reloaded = xgboost.Booster(model_file=str(path))
    loaded = load_native(path, native_spec("classification"))
    engine = TreeEngine.from_arrays(compile_xgboost.ensemble(loaded).to_arrays())
    drawn = np.resize(np.array(extra), (len(extra) // 3 or 1) * 3).reshape(-1, 3)
    rows = np.vstack([ROWS, drawn, probe_rows(compile_xgboost.ensemble(loaded), ROWS)])
    # DMatrix refuses what float32 cannot hold; the served model takes it as the wrapper does.
    rows = rows[~(np.abs(rows) > np.finfo(np.float32).max).any(axis=1)]
    assert same_bits(loaded.predict_proba(rows), booster_proba(reloaded, rows))
    assert same_bits(engine.predict_proba(rows), booster_proba(reloaded, rows))


def test_an_early_stopped_wrapper_file_answers_as_the_wrapper_up_to_best_iteration(
    native_spec: NativeSpec, tmp_path: Path
) -> None:
    wrapper = xgboost.XGBClassifier(n_estimators=200, learning_rate=0.9, n_jobs=1, early_stopping_rounds=2)
    wrapper.fit(ROWS[:160], LABELS[:160], eval_set=[(ROWS[160:], LABELS[160:])], verbose=False)
    path = tmp_path / "model.ubj"
    wrapper.save_model(str(path))
    loaded = load_native(path, native_spec("classification"))
    engine = TreeEngine.from_arrays(compile_xgboost.ensemble(loaded).to_arrays())
    assert loaded.best_iteration == wrapper.best_iteration
    assert same_bits(engine.predict_proba(ROWS), wrapper.predict_proba(ROWS))
    assert same_bits(engine.predict(ROWS), wrapper.predict(ROWS))


def test_a_regressors_file_with_a_binary_objective_is_a_regressor(native_spec: NativeSpec, tmp_path: Path) -> None:
    # XGBRegressor(objective="binary:logistic") predicts probabilities as values: the file says
    # which wrapper saved it, which the objective alone would read as a classifier.
    regressor = xgboost.XGBRegressor(objective="binary:logistic", n_estimators=5, n_jobs=1).fit(ROWS, LABELS)
    path = tmp_path / "model.json"
    regressor.save_model(str(path))
    loaded = load_native(path, native_spec("regression"))
    assert isinstance(loaded, xgboost.XGBRegressor)
    engine = TreeEngine.from_arrays(compile_xgboost.ensemble(loaded).to_arrays())
    assert same_bits(engine.predict(ROWS), regressor.predict(ROWS))


def test_a_booster_file_without_trees_is_served_through_xgboost(native_spec: NativeSpec, tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(ROWS, LABELS), 0).save_model(str(path))
    loaded = load_native(path, native_spec("classification"))
    with pytest.raises(UnsupportedEstimatorError, match="without trees"):
        compile_xgboost.ensemble(loaded)


def test_a_lightgbm_file_answers_as_booster_predict_of_the_trees_it_holds(
    native_spec: NativeSpec, tmp_path: Path
) -> None:
    train = lightgbm.Dataset(ROWS[:160], LABELS[:160])
    valid = lightgbm.Dataset(ROWS[160:], LABELS[160:], reference=train)
    params = {"objective": "binary", "learning_rate": 0.5, "num_leaves": 7, "verbose": -1, "num_threads": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        booster = lightgbm.train(
            params, train, 200, valid_sets=[valid], callbacks=[lightgbm.early_stopping(2, verbose=False)]
        )
    path = tmp_path / "model.txt"
    booster.save_model(str(path))
    loaded = load_native(path, native_spec("classification"))
    engine = TreeEngine.from_arrays(compile_lightgbm.ensemble(loaded).to_arrays())
    positive = lightgbm.Booster(model_file=str(path)).predict(ROWS)
    assert same_bits(engine.predict_proba(ROWS)[:, 1], positive)
