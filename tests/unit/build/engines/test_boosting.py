"""GradientBoosting and HistGradientBoosting models compiled to a TreeEnsemble answer byte for byte
as scikit-learn does, on models fitted to generated data of many shapes (categories, missing
values, string labels, every loss), and the gate sees any change to what they compute."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from sklearn._loss.loss import HalfBinomialLoss
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from threadpoolctl import threadpool_limits

from build.engines import (
    ExactnessError,
    UnsupportedEstimatorError,
    boosting,
    check_exactness,
    compile_estimator,
    compiler_for,
)
from build.engines.base import serialize
from serving.engines import load_engine
from tests.shared import examples

PREFIX = "steps/2/"
GB_REGRESSOR_LOSSES = ["squared_error", "absolute_error", "huber", "quantile"]
HGB_REGRESSOR_LOSSES = ["squared_error", "absolute_error", "quantile", "poisson", "gamma"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """HistGradientBoosting predicts with OpenMP threads, which crawl on a busy shared machine."""
    with threadpool_limits(1):
        yield


def round_trip(arrays: dict[str, Any]) -> dict[str, Any]:
    with np.load(io.BytesIO(serialize(arrays)), allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def dataset(
    rng: np.random.Generator, n_classes: int, categorical: list[int], missing: float
) -> tuple[NDArray[np.float64], NDArray[Any]]:
    """Rows with `categorical` columns of small integer codes (some negative, some not integers
    seen only at prediction), a fraction `missing` of NaN, and a target that depends on them:
    `n_classes` labels (strings for some), or a positive number for regression (0 classes)."""
    n_rows = int(rng.integers(120, 300))
    n_features = max(int(rng.integers(1, 6)), max(categorical, default=-1) + 1)
    rows = rng.normal(0, float(rng.choice([1e-3, 1.0, 1e4])), size=(n_rows, n_features))
    for column in categorical:
        rows[:, column] = rng.integers(-1, int(rng.integers(2, 12)), n_rows)
    rows[rng.random(rows.shape) < missing] = np.nan
    signal = np.nansum(rows * rng.normal(size=n_features), axis=1) + rng.normal(0, 0.1, n_rows)
    if n_classes == 0:
        return rows, np.exp((signal - signal.mean()) / (signal.std() + 1e-12))
    labels = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, n_classes + 1)[1:-1]))
    labels[:n_classes] = np.arange(n_classes)  # every class present
    return rows, (np.array([f"class {label}" for label in labels]) if rng.random() < 0.3 else labels)


def assert_exact(estimator: Any, rows: NDArray[np.float64], target: NDArray[Any]) -> Any:
    """Fit on most rows, compile through an .npz, and pass the gate on training, held-out and probe rows."""
    held_out = len(rows) // 4
    estimator.fit(rows[held_out:], target[held_out:])
    engine = load_engine(round_trip(compile_estimator(estimator, PREFIX)), PREFIX)
    probes = compiler_for(estimator).probe_rows(estimator, rows[held_out:])
    datasets = {"training": rows[held_out:], "held-out": rows[:held_out], "probes": probes}

    assert check_exactness(estimator, engine, datasets) == len(rows) + len(probes)
    assert engine.n_features == rows.shape[1]
    if hasattr(estimator, "classes_"):
        assert engine.classes is not None
        assert engine.classes.tolist() == estimator.classes_.tolist()
    else:
        assert engine.classes is None
    return engine


def expected_guarantee(estimator: Any) -> str:
    uses_exp = hasattr(estimator, "classes_") or estimator.loss in ("poisson", "gamma")
    return "bitwise-same-libraries" if uses_exp else "bitwise-anywhere"


@settings(max_examples=examples(0.4), deadline=None)
@given(seed=st.integers(0, 2**31))
def test_gradient_boosting_is_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_classes = int(rng.choice([0, 2, 3, 5]))
    params: dict[str, Any] = {
        "n_estimators": int(rng.integers(1, 15)),
        "max_depth": int(rng.integers(1, 5)),
        "learning_rate": float(rng.uniform(0.05, 1.0)),
        "subsample": float(rng.choice([1.0, 0.7])),
        "init": rng.choice([None, "zero"]),
        "random_state": seed,
    }
    if n_classes == 0:
        estimator: Any = GradientBoostingRegressor(loss=str(rng.choice(GB_REGRESSOR_LOSSES)), **params)
    else:
        loss = str(rng.choice(["log_loss", "exponential"])) if n_classes == 2 else "log_loss"
        estimator = GradientBoostingClassifier(loss=loss, **params)
    rows, target = dataset(rng, n_classes, categorical=[], missing=0.0)

    assert_exact(estimator, rows, target)
    assert compiler_for(estimator).guarantee(estimator) == expected_guarantee(estimator)


@settings(max_examples=examples(0.4), deadline=None)
@given(seed=st.integers(0, 2**31))
def test_hist_gradient_boosting_is_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_classes = int(rng.choice([0, 2, 3, 9]))
    categorical = sorted({int(c) for c in rng.integers(0, 4, size=int(rng.integers(0, 3)))})
    params: dict[str, Any] = {
        "max_iter": int(rng.integers(1, 12)),
        "max_leaf_nodes": int(rng.choice([2, 8, 31, 80])),
        "min_samples_leaf": int(rng.choice([1, 5, 20])),
        "learning_rate": float(rng.uniform(0.05, 1.0)),
        "categorical_features": categorical or None,
        "early_stopping": False,
        "random_state": seed,
    }
    if n_classes == 0:
        loss = str(rng.choice(HGB_REGRESSOR_LOSSES))
        quantile = float(rng.uniform(0.1, 0.9)) if loss == "quantile" else None
        estimator: Any = HistGradientBoostingRegressor(loss=loss, quantile=quantile, **params)
    else:
        estimator = HistGradientBoostingClassifier(**params)
    rows, target = dataset(rng, n_classes, categorical, missing=float(rng.choice([0.0, 0.1, 0.4])))

    assert_exact(estimator, rows, target)
    assert compiler_for(estimator).guarantee(estimator) == expected_guarantee(estimator)


@pytest.mark.parametrize(
    "estimator",
    [
        GradientBoostingRegressor(n_estimators=3, max_depth=8, random_state=0),
        HistGradientBoostingRegressor(max_iter=3, max_leaf_nodes=200, min_samples_leaf=1, max_depth=None),
    ],
)
def test_trees_of_more_than_64_leaves_are_exact(estimator: Any) -> None:
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(600, 3))
    estimator.fit(rows, rng.normal(size=600))
    engine = load_engine(round_trip(compile_estimator(estimator)))

    probes = compiler_for(estimator).probe_rows(estimator, rows)
    check_exactness(estimator, engine, {"rows": rows, "probes": probes})


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(200, 4))
    rows[:, 0] = rng.integers(0, 5, 200)
    rows[:, 1:][rng.random((200, 3)) < 0.1] = np.nan
    finite = np.nan_to_num(rows)
    # Unequal classes, so that no baseline is zero (a one-ulp change to zero vanishes in any sum).
    signal = finite @ rng.normal(size=4)
    target = np.digitize(signal, np.quantile(signal, [0.2, 0.7]))
    return {
        "gb-classifier": (GradientBoostingClassifier(n_estimators=10, random_state=0).fit(finite, target), finite),
        "gb-regressor": (GradientBoostingRegressor(n_estimators=10, random_state=0).fit(finite, finite[:, 0]), finite),
        "hgb-classifier": (
            HistGradientBoostingClassifier(max_iter=10, categorical_features=[0]).fit(rows, target),
            rows,
        ),
        "hgb-regressor": (HistGradientBoostingRegressor(max_iter=10).fit(rows, np.nan_to_num(rows[:, -1])), rows),
    }


@pytest.mark.parametrize("model", ["gb-classifier", "gb-regressor", "hgb-classifier", "hgb-regressor"])
@pytest.mark.parametrize("key", ["leaf_values", "base_score"])
def test_gate_catches_a_one_ulp_change(fitted: dict[str, Any], model: str, key: str) -> None:
    estimator, rows = fitted[model]
    arrays = compile_estimator(estimator)
    check_exactness(estimator, load_engine(arrays), {"rows": rows})
    # One ulp on every leaf value, or on the first output's baseline (the same change to every
    # class's baseline would cancel in softmax).
    changed = np.arange(arrays[key].size) == 0 if key == "base_score" else True
    arrays[key] = np.where(changed, np.nextafter(arrays[key], np.inf), arrays[key])

    with pytest.raises(ExactnessError, match=r"rows: predict(_proba)? differs"):
        check_exactness(estimator, load_engine(arrays), {"rows": rows})


def test_engine_refuses_what_scikit_learn_refuses(fitted: dict[str, Any]) -> None:
    classifier, rows = fitted["gb-classifier"]
    engine = load_engine(compile_estimator(classifier))
    for value in (np.nan, np.inf, 1e39):
        with pytest.raises(ValueError, match="NaN or infinity, or a value too large for float32"):
            engine.predict(np.full((1, rows.shape[1]), value))
    with pytest.raises(ValueError, match=rf"expected rows of {rows.shape[1]} features, got shape \(1, 99\)"):
        engine.predict(np.zeros((1, 99)))
    regressor, rows = fitted["hgb-regressor"]
    with pytest.raises(TypeError, match="only defined for classifiers"):
        load_engine(compile_estimator(regressor)).predict_proba(rows)


def test_unsupported_configurations_name_the_parameter() -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(60, 3))
    target = rng.random(60)
    custom_init = GradientBoostingRegressor(n_estimators=2, init=DummyRegressor()).fit(rows, target)
    refused = (
        "GradientBoostingRegressor with init=DummyRegressor: only init=None (scikit-learn's default) or"
        " init='zero' can be compiled"
    )
    with pytest.raises(UnsupportedEstimatorError, match=f"^{re.escape(refused)}$"):
        compile_estimator(custom_init)

    custom_loss = HistGradientBoostingRegressor(max_iter=2, loss=HalfBinomialLoss()).fit(rows, target)
    refused = "HistGradientBoostingRegressor with loss=HalfBinomialLoss: no compiled engine for its output mapping"
    with pytest.raises(UnsupportedEstimatorError, match=f"^{re.escape(refused)}$"):
        compile_estimator(custom_loss)

    words = np.array([["red", "blue"][i % 2] for i in range(60)], dtype=object)
    text_rows = np.column_stack([words, rows[:, 0]])
    text_categories = HistGradientBoostingRegressor(max_iter=2, categorical_features=[0]).fit(text_rows, target)
    refused = (
        "HistGradientBoostingRegressor with categorical_features: the categories of column 0 are object values;"
        " only numeric categories can be compiled"
    )
    with pytest.raises(UnsupportedEstimatorError, match=f"^{re.escape(refused)}$"):
        compile_estimator(text_categories)


class OwnGradientBoosting(GradientBoostingRegressor):
    """A subclass may answer otherwise than scikit-learn's class (its own predict, say)."""


def test_a_subclass_of_a_gradient_boosting_model_is_not_compiled_as_one() -> None:
    rows = np.random.default_rng(1).normal(size=(30, 2))
    subclassed = OwnGradientBoosting(n_estimators=2).fit(rows, rows[:, 0])
    with pytest.raises(UnsupportedEstimatorError, match=r"^no compiled engine for OwnGradientBoosting$"):
        compiler_for(subclassed)
    refused = "OwnGradientBoosting is not a scikit-learn gradient boosting model"
    with pytest.raises(UnsupportedEstimatorError, match=f"^{re.escape(refused)}$"):
        boosting.ensemble(subclassed)


def test_serving_needs_numpy_alone(fitted: dict[str, Any], tmp_path: Path) -> None:
    estimator, rows = fitted["hgb-classifier"]
    (tmp_path / "model.npz").write_bytes(serialize(compile_estimator(estimator)))
    np.save(tmp_path / "rows.npy", rows)
    script = """
import sys
import numpy as np
from serving.engines import load_engine
with np.load(sys.argv[1] + "/model.npz", allow_pickle=False) as stored:
    engine = load_engine({name: stored[name] for name in stored.files})
np.save(sys.argv[1] + "/proba.npy", engine.predict_proba(np.load(sys.argv[1] + "/rows.npy")))
print(sorted({"sklearn", "scipy", "joblib"} & {name.split(".")[0] for name in sys.modules}))
"""
    serving_dir = Path(__file__).parents[4] / "functions" / "predict"
    env = {**os.environ, "PYTHONPATH": str(serving_dir)}
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert np.load(tmp_path / "proba.npy").tobytes() == estimator.predict_proba(rows).tobytes()
