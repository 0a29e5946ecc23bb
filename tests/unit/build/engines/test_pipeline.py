"""Pipelines of scalers, imputers and encoders compiled to numpy answer bit for bit as
scikit-learn does, refuse what they cannot reproduce, and report unknown categories clearly."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
)
from sklearn.svm import SVC

from build.engines import ExactnessError, UnsupportedEstimatorError, check_exactness, compile_estimator, compiler_for
from build.engines.base import serialize
from build.engines.pipeline import PIPELINE, unsupported_reason
from serving.engines import load_engine
from serving.engines.errors import NonFiniteInputError, UnknownCategoryError

COLORS = ["red", "green", "blue", "teal"]
SIZES = ["S", "M", "L"]


def round_trip(arrays: dict[str, Any]) -> dict[str, Any]:
    with np.load(io.BytesIO(serialize(arrays)), allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def mixed_rows(seed: int, count: int) -> np.ndarray:
    """Three numbers and two categories per row, as the API passes them: an object array of
    floats and Python strings, NaN where a value is missing."""
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(count, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, -50.0]
    numbers[rng.random((count, 3)) < 0.1] = np.nan
    colors = rng.choice(COLORS, size=count, p=[0.5, 0.3, 0.15, 0.05]).astype(object)
    colors[rng.random(count) < 0.1] = np.nan
    rows = np.empty((count, 5), dtype=object)
    rows[:, :3] = numbers
    rows[:, 3] = colors
    rows[:, 4] = rng.choice(SIZES, size=count).astype(object)
    return rows


def target(rows: np.ndarray, task: str) -> np.ndarray:
    score = np.nan_to_num(rows[:, 0].astype(float)) + (rows[:, 4] == "L") - (rows[:, 3] == "red")
    if task == "regression":
        return score * 3.0 + np.nan_to_num(rows[:, 1].astype(float))
    if task == "binary":
        return (score > 0).astype(int)
    return np.digitize(score, [-0.5, 0.5])


def preprocessor(encoder: Any, scaler: Any) -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), scaler), [0, 1]),
            ("color", make_pipeline(SimpleImputer(strategy="most_frequent"), encoder), [3]),
            ("size", OrdinalEncoder(), [4]),
        ],
        remainder=make_pipeline(SimpleImputer(strategy="constant", fill_value=0.0), MinMaxScaler(clip=True)),
        sparse_threshold=0,
    )


ENCODERS = [
    OneHotEncoder(handle_unknown="ignore"),
    OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=25, sparse_output=False),
    OneHotEncoder(drop="first", sparse_output=False, max_categories=3),
    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2),
]
SCALERS = [StandardScaler(), RobustScaler(), MaxAbsScaler(), MinMaxScaler()]


def assert_exact(pipeline: Pipeline, train: np.ndarray, held_out: np.ndarray) -> None:
    engine = load_engine(round_trip(compile_estimator(pipeline, "model/")), "model/")
    probes = compiler_for(pipeline).probe_rows(pipeline, train)
    datasets = {"train": train, "held-out": held_out, "probes": probes}
    assert check_exactness(pipeline, engine, datasets) == sum(len(rows) for rows in datasets.values())
    assert engine.n_features == train.shape[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("task", "final"),
    [
        ("binary", LogisticRegression(max_iter=1000)),
        ("multiclass", LogisticRegression(max_iter=1000)),
        ("regression", Ridge()),
        ("multiclass", RandomForestClassifier(n_estimators=5, random_state=0)),
        ("regression", RandomForestRegressor(n_estimators=5, random_state=0)),
    ],
    ids=["binary-logistic", "multiclass-logistic", "ridge", "forest-classifier", "forest-regressor"],
)
def test_column_transformer_pipelines_are_exact(seed: int, task: str, final: Any) -> None:
    rows = mixed_rows(seed, 300)
    pipeline = Pipeline([("prepare", preprocessor(ENCODERS[seed % 4], SCALERS[seed % 4])), ("model", final)])
    pipeline.fit(rows[:200], target(rows[:200], task))

    assert_exact(pipeline, rows[:200], rows[200:])
    expected = "bitwise-same-libraries" if isinstance(final, LogisticRegression | Ridge) else "bitwise-anywhere"
    assert compiler_for(pipeline).guarantee(pipeline) == expected


@pytest.mark.parametrize("encoder", ENCODERS[1:], ids=lambda encoder: repr(encoder).replace("\n", ""))
def test_every_encoder_configuration_is_exact(encoder: Any) -> None:
    rows = mixed_rows(3, 300)
    prepare = ColumnTransformer([("color", encoder, [3, 4])], remainder=SimpleImputer(), sparse_threshold=0)
    pipeline = make_pipeline(prepare, LogisticRegression(max_iter=1000)).fit(rows[:200], target(rows[:200], "binary"))

    assert_exact(pipeline, rows[:200], rows[200:])


@pytest.mark.parametrize("scaler", [*SCALERS, StandardScaler(with_mean=False), MaxAbsScaler(clip=True)], ids=repr)
def test_numeric_pipelines_take_float_rows(scaler: Any) -> None:
    rows = mixed_rows(4, 300)[:, :3].astype(np.float64)
    rows[:, 2] = 7.0  # a constant column: zero variance, zero range
    pipeline = make_pipeline(SimpleImputer(strategy="mean"), scaler, Ridge())
    pipeline.fit(rows[:200], np.nan_to_num(rows[:200, 0]) * 2)

    assert_exact(pipeline, rows[:200], rows[200:])


def test_unknown_category_is_refused_with_the_feature_value_and_known_categories() -> None:
    rows = mixed_rows(5, 200)
    prepare = ColumnTransformer([("categories", OneHotEncoder(sparse_output=False), [3, 4])], sparse_threshold=0)
    pipeline = make_pipeline(prepare, LogisticRegression()).fit(rows, target(rows, "binary"))
    engine = load_engine(compile_estimator(pipeline))
    unseen = rows[:3].copy()
    unseen[1, 4] = "XXL"

    with pytest.raises(ValueError, match="Found unknown categories"):
        pipeline.predict(unseen)
    with pytest.raises(UnknownCategoryError) as refused:
        engine.predict(unseen)
    assert str(refused.value) == "unknown category 'XXL' for feature 'column 4'; known: 'L', 'M', 'S'"


def test_unknown_category_message_is_bounded() -> None:
    categories = np.array([[f"category-{index:03d}-{'x' * 50}"] for index in range(40)], dtype=object)
    pipeline = make_pipeline(OrdinalEncoder(), Ridge()).fit(categories, np.arange(40.0))
    engine = load_engine(compile_estimator(pipeline))

    with pytest.raises(UnknownCategoryError) as refused:
        engine.predict(np.array([["y" * 10_000]], dtype=object))
    message = str(refused.value)
    assert message.startswith("unknown category 'yyyy")
    assert "for feature 'column 0'; known: 'category-000-xxx..., 'category-001-xxx..., " in message
    assert message.endswith(" and 30 more")
    assert len(message) < 400


def test_a_tampered_step_is_caught_by_the_gate() -> None:
    rows = mixed_rows(6, 200)
    pipeline = Pipeline([("prepare", preprocessor(ENCODERS[0], StandardScaler())), ("model", LogisticRegression())])
    pipeline.fit(rows, target(rows, "binary"))
    arrays = compile_estimator(pipeline)
    arrays["steps/0/branches/0/steps/1/operand_0"] = np.nextafter(arrays["steps/0/branches/0/steps/1/operand_0"], 0)

    with pytest.raises(ExactnessError, match="rows: predict_proba differs"):
        check_exactness(pipeline, load_engine(arrays), {"rows": rows})


NUMBERS = np.random.default_rng(0).normal(size=(60, 3))
LABELS = (NUMBERS[:, 0] > 0).astype(int)


@pytest.mark.parametrize(
    ("pipeline", "reason"),
    [
        (
            make_pipeline(QuantileTransformer(n_quantiles=10), LogisticRegression()),
            "step 'quantiletransformer' (QuantileTransformer): no compiled engine for this step; supported: "
            "ColumnTransformer, MaxAbsScaler, MinMaxScaler, OneHotEncoder, OrdinalEncoder, Pipeline, RobustScaler, "
            "SimpleImputer, StandardScaler, passthrough, drop",
        ),
        (
            make_pipeline(
                ColumnTransformer([("poly", make_pipeline(StandardScaler(), PolynomialFeatures()), [0, 1])]),
                LogisticRegression(),
            ),
            "step 'columntransformer/poly/polynomialfeatures' (PolynomialFeatures): no compiled engine",
        ),
        (make_pipeline(StandardScaler(), MinMaxScaler(), SVC()), "final step 'svc' (SVC): no compiled engine for it"),
        (
            make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression()),
            "step 'onehotencoder' (OneHotEncoder): sparse_output=True feeds a sparse matrix to the next step",
        ),
        (
            make_pipeline(ColumnTransformer([("one", OneHotEncoder(), [0])]), LogisticRegression()),
            "step 'columntransformer' (ColumnTransformer): its output is a sparse matrix",
        ),
        (
            make_pipeline(ColumnTransformer([("s", StandardScaler(), [0])], transformer_weights={"s": 2}), Ridge()),
            "step 'columntransformer' (ColumnTransformer): transformer_weights are not compiled",
        ),
        (
            make_pipeline(SimpleImputer(missing_values=-1.0), Ridge()),
            "step 'simpleimputer' (SimpleImputer): missing_values=-1.0; only NaN compiles",
        ),
        (
            make_pipeline(OrdinalEncoder(dtype=np.float32), Ridge()),
            "step 'ordinalencoder' (OrdinalEncoder): dtype=float32; only float64 compiles",
        ),
        (make_pipeline(StandardScaler(), "passthrough"), "the pipeline ends in 'passthrough'"),
    ],
    ids=["quantile", "nested", "svc", "sparse-one-hot", "sparse-columns", "weights", "minus-one", "float32", "end"],
)
def test_unsupported_steps_are_refused_by_name(pipeline: Pipeline, reason: str) -> None:
    features = np.round(NUMBERS * 2) if "Encoder" in repr(pipeline) else NUMBERS
    pipeline.fit(features, LABELS if not isinstance(pipeline.steps[-1][1], Ridge) else NUMBERS[:, 0])

    assert reason in (unsupported_reason(pipeline) or "")
    assert PIPELINE.supports(pipeline)
    with pytest.raises(UnsupportedEstimatorError, match=re.escape(reason)):
        PIPELINE.compile(pipeline, "")
    with pytest.raises(UnsupportedEstimatorError, match=re.escape(reason)):
        compile_estimator(pipeline)


@pytest.mark.parametrize("seed", [0, 1])
def test_encoded_numbers_and_most_frequent_numbers_are_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = np.column_stack([rng.integers(0, 4, 300).astype(float), rng.normal(size=300)])
    rows[rng.random(300) < 0.1, 0] = np.nan
    prepare = ColumnTransformer(
        [
            ("codes", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [0]),
            ("levels", make_pipeline(SimpleImputer(strategy="most_frequent"), OrdinalEncoder()), [0]),
        ],
        remainder="passthrough",
    )
    pipeline = make_pipeline(prepare, LogisticRegression()).fit(rows[:200], (rows[:200, 1] > 0).astype(int))
    assert_exact(pipeline, rows[:200], rows[200:])

    engine = load_engine(compile_estimator(pipeline))
    unseen = rows[:2].copy()
    unseen[0, 0] = 9.0  # ignored by the one-hot encoder, refused by the ordinal one
    with pytest.raises(ValueError, match="Found unknown categories"):
        pipeline.predict(unseen)
    with pytest.raises(UnknownCategoryError) as refused:
        engine.predict(unseen)
    assert str(refused.value) == "unknown category 9.0 for feature 'column 0'; known: 0.0, 1.0, 2.0, 3.0"
    unseen[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        pipeline.predict(unseen)
    with pytest.raises(NonFiniteInputError, match="input contains infinity"):
        engine.predict(unseen)
