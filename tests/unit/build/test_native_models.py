"""Native XGBoost and LightGBM model files become the estimators their wrappers would be."""

from __future__ import annotations

import re
from pathlib import Path

import lightgbm
import numpy as np
import pytest
import xgboost
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from build.engines import lightgbm as compile_lightgbm
from build.engines import xgboost as compile_xgboost
from build.native_models import is_native, load_native, model_libraries
from build.package import lambda_requirements
from build.spec import SpecError
from serving.engines.tree_engine import TreeEngine
from tests.unit.build.conftest import NativeSpec
from tests.unit.build.engines.bitwise import same_bits

ROWS = np.random.default_rng(0).normal(size=(120, 3))
LABELS = (ROWS[:, 0] > 0).astype(int) + (ROWS[:, 1] > 1).astype(int)


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
def test_xgboost_booster_file_serves_as_its_wrapper(native_spec: NativeSpec, tmp_path: Path, suffix: str) -> None:
    trained = xgboost.XGBClassifier(n_estimators=5, max_depth=3, n_jobs=1).fit(ROWS, LABELS)
    path = tmp_path / f"model{suffix}"
    trained.get_booster().save_model(str(path))
    assert is_native(path)
    loaded = load_native(path, native_spec("classification", n_classes=3))
    assert isinstance(loaded, xgboost.XGBClassifier)
    assert same_bits(loaded.predict_proba(ROWS), trained.predict_proba(ROWS))
    engine = TreeEngine.from_arrays(compile_xgboost.ensemble(loaded).to_arrays())
    assert same_bits(engine.predict_proba(ROWS), trained.predict_proba(ROWS))


def test_lightgbm_text_file_serves_as_its_wrapper(native_spec: NativeSpec, tmp_path: Path) -> None:
    trained = lightgbm.LGBMClassifier(n_estimators=5, num_leaves=5, n_jobs=1, verbose=-1).fit(ROWS, LABELS)
    path = tmp_path / "model.txt"
    trained.booster_.save_model(str(path))
    loaded = load_native(path, native_spec("classification", n_classes=3))
    assert loaded.classes_.tolist() == [0, 1, 2]
    assert same_bits(loaded.predict_proba(ROWS), trained.predict_proba(ROWS))
    assert same_bits(loaded.predict(ROWS), trained.predict(ROWS))
    engine = TreeEngine.from_arrays(compile_lightgbm.ensemble(loaded).to_arrays())
    assert same_bits(engine.predict_proba(ROWS), trained.predict_proba(ROWS))
    assert same_bits(engine.predict(ROWS), trained.predict(ROWS))


def test_lightgbm_binary_text_file_gives_two_probability_columns(native_spec: NativeSpec, tmp_path: Path) -> None:
    binary = (LABELS > 0).astype(int)
    trained = lightgbm.LGBMClassifier(n_estimators=4, num_leaves=4, n_jobs=1, verbose=-1).fit(ROWS, binary)
    path = tmp_path / "model.txt"
    trained.booster_.save_model(str(path))
    loaded = load_native(path, native_spec("classification", n_classes=2))
    assert same_bits(loaded.predict_proba(ROWS), trained.predict_proba(ROWS))


def test_lightgbm_regressor_text_file_serves_as_its_wrapper(native_spec: NativeSpec, tmp_path: Path) -> None:
    """A reg_sqrt model: its values are squared back on the way out, by LightGBM and the engine alike."""
    target = np.abs(ROWS[:, 0]) * 10
    trained = lightgbm.LGBMRegressor(n_estimators=5, num_leaves=5, reg_sqrt=True, n_jobs=1, verbose=-1)
    trained.fit(ROWS, target)
    path = tmp_path / "model.txt"
    trained.booster_.save_model(str(path))
    loaded = load_native(path, native_spec("regression"))
    assert loaded.n_features_in_ == 3
    assert same_bits(loaded.predict(ROWS), trained.predict(ROWS))
    engine = TreeEngine.from_arrays(compile_lightgbm.ensemble(loaded).to_arrays())
    assert same_bits(engine.predict(ROWS), trained.predict(ROWS))


def test_a_native_model_whose_objective_disagrees_with_the_task_is_refused(
    native_spec: NativeSpec, tmp_path: Path
) -> None:
    trained = lightgbm.LGBMRegressor(n_estimators=2, n_jobs=1, verbose=-1).fit(ROWS, ROWS[:, 0])
    path = tmp_path / "model.txt"
    trained.booster_.save_model(str(path))
    expected = "`task` is 'classification', but model.txt's objective 'regression' is for regression"
    with pytest.raises(SpecError, match=re.escape(expected)):
        load_native(path, native_spec("classification", n_classes=3))


def test_a_file_that_is_not_a_model_is_refused_in_one_line(native_spec: NativeSpec, tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text("{}")
    with pytest.raises(SpecError, match=re.escape("model.json is not an XGBoost model")) as raised:
        load_native(path, native_spec("regression"))
    assert "\n" not in str(raised.value)


def test_models_name_the_library_packages_they_predict_through() -> None:
    booster_model = xgboost.XGBRegressor(n_estimators=1).fit(ROWS, ROWS[:, 0])
    assert model_libraries(make_pipeline(StandardScaler(), booster_model)) == ["xgboost-cpu"]
    assert model_libraries(StandardScaler()) == []


def test_the_fallback_package_installs_the_build_environments_library_pin(tmp_path: Path) -> None:
    function_pins = tmp_path / "requirements.txt"
    function_pins.write_text("numpy==2.5.5\nscikit-learn==1.9.1\n")
    build_pins = tmp_path / "requirements-dev.txt"
    build_pins.write_text("lightgbm==4.7.0      # via -r requirements-dev.in\nxgboost-cpu==3.4.1\n")
    out = tmp_path / "out"
    out.mkdir()
    written = lambda_requirements(function_pins, out, "scikit-learn", False, ["lightgbm"], build_pins)
    assert written.read_text().splitlines() == ["numpy==2.5.5", "scikit-learn==1.9.1", "lightgbm==4.7.0"]
