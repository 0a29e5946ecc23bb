"""What the compiled engines refuse: arrays of another format version, an engine kind or a
preprocessing step this function does not know (each refusal names what it found and what it
reads, so an operator knows to rebuild the package), and rows scikit-learn itself refuses."""

from __future__ import annotations

import io
import re
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from build.engines import compile_estimator
from build.engines.base import serialize
from serving.engines import load_engine

IRIS = load_iris()
# The engine kinds and preprocessing steps this version reads, and the names its messages give
# them (docs/design.md lists the supported models).
ENGINE_NAMES = {"trees": "tree ensemble", "linear": "linear", "pipeline": "pipeline"}
STEP_KINDS = ["columns", "elementwise", "encoder", "imputer", "passthrough", "sequence"]
# numpy's unicode arrays drop trailing NUL characters: a kind is stored without them.
KINDS = st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=12)
ESTIMATORS = {
    "forest": RandomForestClassifier(n_estimators=3, random_state=0),
    "boosted_trees": GradientBoostingClassifier(n_estimators=3, random_state=0),
    "linear": LogisticRegression(max_iter=500),
    "pipeline": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
}


def stored(estimator: Any, rows: np.ndarray = IRIS.data) -> dict[str, Any]:
    """The estimator fitted on `rows` with Iris's classes, compiled, written and read back as the
    function reads it."""
    estimator.fit(rows, IRIS.target)
    with np.load(io.BytesIO(serialize(compile_estimator(estimator))), allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


PIPELINE_ARRAYS = stored(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)))
# Fitted and compiled once, not per generated example: only the stored kind varies.
LINEAR_ARRAYS = stored(ESTIMATORS["linear"])


@pytest.fixture(scope="module", params=sorted(ESTIMATORS))
def compiled(request: pytest.FixtureRequest) -> dict[str, Any]:
    return stored(ESTIMATORS[request.param])


def test_every_engine_refuses_another_format_version(compiled: dict[str, Any]) -> None:
    versioned = [key for key in compiled if key.endswith("format_version")]
    assert versioned, "every compiled engine records its format version"
    for key in versioned:
        prefix = key.removesuffix("format_version")
        written = int(compiled[key])
        for found in (written - 1, written + 1, 0, 2**31 - 1):
            tampered = {**compiled, key: np.array(found)}
            name = ENGINE_NAMES[str(compiled[prefix + "engine"])]
            expected = f"compiled {name} format {found}, expected {written}: rebuild the package"
            with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
                load_engine(tampered)


@given(kind=KINDS.filter(lambda kind: kind not in ENGINE_NAMES))
def test_an_unknown_engine_kind_is_refused_naming_the_known_ones(kind: str) -> None:
    arrays = {"engine": np.array(kind)}
    known = sorted(ENGINE_NAMES)
    expected = f"unknown compiled engine {kind!r}; this function knows {known}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        load_engine(arrays)


@given(kind=KINDS.filter(lambda kind: kind not in ("classifier", "regressor")))
def test_a_linear_model_of_an_unknown_kind_is_refused(kind: str) -> None:
    """A linear model is a classifier or a regressor; any other word (a typo, another case) is a
    package this function cannot read, not a regressor."""
    arrays = {**LINEAR_ARRAYS, "kind": np.array(kind)}
    expected = f"kind {kind!r} is not one of ('classifier', 'regressor')"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        load_engine(arrays)


ENCODER_ARRAYS = stored(
    make_pipeline(OneHotEncoder(sparse_output=False, handle_unknown="ignore"), LogisticRegression(max_iter=500)),
    np.round(IRIS.data),
)


@given(kind=KINDS.filter(lambda kind: kind not in ("number", "string")))
def test_an_encoder_column_of_an_unknown_category_kind_is_refused(kind: str) -> None:
    """An encoder's categories are numbers or strings; any other word is a package this function
    cannot read, not strings."""
    arrays = {**ENCODER_ARRAYS, "steps/0/kind_2": np.array(kind)}
    expected = f"encoder category kinds [{kind!r}] are not among ('number', 'string'): rebuild the package"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        load_engine(arrays)


IMPUTER_ARRAYS = stored(make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)))


@given(conversion=KINDS.filter(lambda conversion: conversion not in ("float", "keep", "object")))
def test_an_imputer_of_an_unknown_conversion_is_refused(conversion: str) -> None:
    arrays = {**IMPUTER_ARRAYS, "steps/0/conversion": np.array(conversion)}
    expected = f"imputer conversion {conversion!r} is not among ('float', 'keep', 'object'): rebuild the package"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        load_engine(arrays)


@given(kind=KINDS.filter(lambda kind: kind not in STEP_KINDS))
def test_an_unknown_preprocessing_step_is_refused_naming_the_known_ones(kind: str) -> None:
    arrays = dict(PIPELINE_ARRAYS)
    arrays["steps/0/step"] = np.array(kind)
    expected = f"unknown preprocessing step {kind!r}; this function knows {STEP_KINDS}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        load_engine(arrays)


def test_an_imputer_that_drops_an_empty_column_answers_as_scikit_learn() -> None:
    """SimpleImputer drops a column with no observed value at fit time; the model after it sees
    one feature fewer, and so must the compiled pipeline."""
    rng = np.random.default_rng(7)
    rows = np.column_stack([IRIS.data[:, :2], np.full(len(IRIS.data), np.nan), IRIS.data[:, 2:]])
    rows[rng.random(rows.shape) < 0.1] = np.nan
    pipeline = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=1000))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipping features without any observed values", UserWarning)
        arrays = stored(pipeline, rows)
        expected_classes = pipeline.predict(rows)
        expected_proba = pipeline.predict_proba(rows)

    engine = load_engine(arrays)

    assert pipeline[-1].n_features_in_ == 4
    assert engine.predict(rows).tolist() == expected_classes.tolist()
    assert engine.predict_proba(rows).tobytes() == expected_proba.tobytes()


@pytest.mark.parametrize(
    "rows", [IRIS.data[0], IRIS.data[:2, :3], np.hstack([IRIS.data[:2], IRIS.data[:2]]), IRIS.data[None, :2]]
)
@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_every_engine_refuses_rows_that_are_not_a_table_of_its_width_naming_their_shape(
    compiled: dict[str, Any], rows: np.ndarray, method: str
) -> None:
    engine = load_engine(compiled)

    refused = f"expected rows of 4 features, got shape {rows.shape}"
    with pytest.raises(ValueError, match=f"^{re.escape(refused)}$"):
        getattr(engine, method)(rows)
