"""XGBoost and LightGBM models build from specs: compiled behind the gate, or served through
their library with the reason said and the library recorded for the package."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from build import PROJECT_ROOT
from build.bake import bake_model
from build.engines import check_exactness, compile_estimator, compiler_for
from build.spec import SpecError, load_spec
from serving.engines import load_engine
from serving.manifest import COMPILED, SCIKIT_LEARN
from tests.unit.build.conftest import gblinear_spec


@pytest.mark.parametrize(
    ("spec_file", "kind", "library"),
    [("xgboost-wine.toml", "xgboost", "xgboost-cpu"), ("lightgbm-penguins.toml", "lightgbm", "lightgbm")],
)
def test_example_specs_compile_exactly(tmp_path: Path, spec_file: str, kind: str, library: str) -> None:
    baked = bake_model(tmp_path / "package", "auto", tmp_path / "cache", load_spec(PROJECT_ROOT / "models" / spec_file))
    assert baked.serving_engine.name == COMPILED
    assert baked.serving_engine.kind == kind
    assert baked.serving_engine.guarantee == "bitwise-same-libraries"
    assert library in baked.libraries
    assert not (tmp_path / "package" / "model" / "model.joblib").exists()


def test_a_native_model_that_does_not_compile_is_served_through_its_library(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = gblinear_spec(tmp_path)
    with caplog.at_level(logging.INFO), xgboost.config_context(verbosity=0):
        baked = bake_model(tmp_path / "package", "auto", tmp_path / "cache", load_spec(spec))
    assert baked.serving_engine.name == SCIKIT_LEARN
    assert baked.serving_engine.libraries == ["xgboost-cpu"]
    assert "XGBoost booster 'gblinear' is not compiled" in caplog.text


def test_a_pipeline_ending_in_xgboost_compiles_with_its_final_step() -> None:
    rows = np.random.default_rng(1).normal(size=(200, 3)) * [1, 100, 0.01]
    labels = (rows[:, 0] + rows[:, 1] / 100 > 0).astype(int)
    pipeline = make_pipeline(StandardScaler(), xgboost.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1))
    pipeline.fit(rows, labels)
    engine = load_engine(compile_estimator(pipeline))
    probes = compiler_for(pipeline).probe_rows(pipeline, rows)
    assert check_exactness(pipeline, engine, {"rows": rows, "probes": probes}) == len(rows) + len(probes)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_a_model_fitted_on_pandas_categorical_columns_is_refused_in_one_line(tmp_path: Path, library: str) -> None:
    import joblib
    import lightgbm
    import pandas as pd

    frame = pd.DataFrame({"size": np.arange(60.0), "colour": pd.Categorical(["red", "green", "blue"] * 20)})
    labels = (frame["colour"] == "red").astype(int).to_numpy()
    if library == "xgboost":
        model = xgboost.XGBClassifier(n_estimators=2, enable_categorical=True, n_jobs=1).fit(frame, labels)
    else:
        model = lightgbm.LGBMClassifier(n_estimators=2, min_child_samples=2, verbose=-1, n_jobs=1).fit(frame, labels)
    joblib.dump(model, tmp_path / "model.joblib")
    rows = "\n".join(
        f"{size},{colour},{label}" for size, colour, label in zip(frame["size"], frame["colour"], labels, strict=True)
    )
    (tmp_path / "rows.csv").write_text("size,colour,target\n" + rows + "\n")
    (tmp_path / "spec.toml").write_text(
        'name = "categorical"\ntask = "classification"\nestimator_file = "model.joblib"\nsample_data = "rows.csv"\n'
        '[[features]]\nname = "size"\n[[features]]\nname = "colour"\ntype = "category"\n'
        'categories = ["red", "green", "blue"]\n'
    )
    with pytest.raises(SpecError, match="fitted on pandas categorical columns") as raised:
        bake_model(tmp_path / "package", "auto", tmp_path / "cache", load_spec(tmp_path / "spec.toml"))
    assert "\n" not in str(raised.value)
    assert type(model).__name__ in str(raised.value)


def test_a_model_of_several_outputs_per_row_is_refused_in_one_line(tmp_path: Path) -> None:
    import joblib

    rows = np.random.default_rng(2).normal(size=(60, 2))
    with xgboost.config_context(verbosity=0):
        model = xgboost.XGBRegressor(objective="reg:quantileerror", quantile_alpha=[0.1, 0.9], n_estimators=2)
        model.fit(rows, rows[:, 0])
    joblib.dump(model, tmp_path / "model.joblib")
    np.savetxt(tmp_path / "rows.csv", np.c_[rows, rows[:, 0]], delimiter=",", header="a,b,target", comments="")
    (tmp_path / "spec.toml").write_text(
        'name = "quantiles"\ntask = "regression"\nestimator_file = "model.joblib"\nsample_data = "rows.csv"\n'
        '[[features]]\nname = "a"\n[[features]]\nname = "b"\n'
    )
    with pytest.raises(SpecError, match="predicts 2 values per row; a model spec serves one"):
        bake_model(tmp_path / "package", "auto", tmp_path / "cache", load_spec(tmp_path / "spec.toml"))


def _fresh_rows(rows: np.ndarray, seed: int) -> np.ndarray:
    """Rows like the model's own with cells made missing, signed zeros, tiny, huge or far outside."""
    rng = np.random.default_rng(seed)
    fresh = rows[rng.integers(len(rows), size=200)].copy()
    odd = np.array([np.nan, 0.0, -0.0, 1e-300, -1e-40, 1e-36, 3.5e38, -1e300, 1e300, 99.0, -7.0])
    changed = rng.random(fresh.shape) < 0.3
    fresh[changed] = rng.choice(odd, size=int(changed.sum()))
    return np.vstack([rows, fresh])


@pytest.mark.parametrize("form", ["xgboost-wrapper", "xgboost-booster-ubj", "lightgbm-text", "imputer-lightgbm"])
def test_a_spec_of_each_form_serves_the_librarys_answers_bit_for_bit(tmp_path: Path, form: str) -> None:
    import joblib
    import lightgbm
    from sklearn.impute import SimpleImputer

    from serving.model import load_model

    rng = np.random.default_rng(5)
    rows = rng.normal(size=(200, 3)) * [1, 100, 1e-3]
    rows[rng.random(rows.shape) < 0.15] = np.nan
    labels = (np.nan_to_num(rows[:, 0]) + np.nan_to_num(rows[:, 1]) / 100 > 0).astype(int) + (rows[:, 2] > 0)
    params = {"n_estimators": 8, "n_jobs": 1, "random_state": 0}
    if form.startswith("xgboost"):
        model: Any = xgboost.XGBClassifier(max_depth=3, **params).fit(rows, labels)
    elif form == "lightgbm-text":
        model = lightgbm.LGBMClassifier(num_leaves=7, verbose=-1, **params).fit(rows, labels)
    else:
        model = make_pipeline(SimpleImputer(), lightgbm.LGBMClassifier(num_leaves=7, verbose=-1, **params))
        model.fit(rows, labels)
    file_name = {"xgboost-booster-ubj": "model.ubj", "lightgbm-text": "model.txt"}.get(form, "model.joblib")
    if form == "xgboost-booster-ubj":
        model.get_booster().save_model(str(tmp_path / file_name))
    elif form == "lightgbm-text":
        model.booster_.save_model(str(tmp_path / file_name))
    else:
        joblib.dump(model, tmp_path / file_name)
    lines = [
        ",".join("" if np.isnan(v) else repr(float(v)) for v in row) + f",{y}"
        for row, y in zip(rows, labels, strict=True)
    ]
    (tmp_path / "rows.csv").write_text("a,b,c,target\n" + "\n".join(lines) + "\n")
    features = "".join(f'[[features]]\nname = "{name}"\nallow_missing = true\n' for name in "abc")
    (tmp_path / "spec.toml").write_text(
        f'name = "forms"\ntask = "classification"\nestimator_file = "{file_name}"\nsample_data = "rows.csv"\n{features}'
    )
    with xgboost.config_context(verbosity=0):
        baked = bake_model(tmp_path / "package", "auto", tmp_path / "cache", load_spec(tmp_path / "spec.toml"))
    assert baked.serving_engine.name == COMPILED
    served = load_model(tmp_path / "package" / "model")
    fresh = _fresh_rows(rows, seed=len(form))
    expected_proba = model.predict_proba(fresh)
    expected = model.predict(fresh)
    proba = served.engine.predict_proba(fresh)
    assert (proba.dtype, proba.shape, proba.tobytes()) == (
        expected_proba.dtype,
        expected_proba.shape,
        expected_proba.tobytes(),
    )
    assert served.engine.predict(fresh).tolist() == expected.tolist()
