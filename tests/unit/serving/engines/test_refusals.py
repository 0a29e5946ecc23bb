"""What the compiled engines refuse: arrays of another format version, an engine kind or a
preprocessing step this function does not know (each refusal names what it found and what it
reads, so an operator knows to rebuild the package), and rows scikit-learn itself refuses."""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
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
ENGINE_NAMES = {"forest": "forest", "boosted_trees": "boosted trees", "linear": "linear", "pipeline": "pipeline"}
STEP_KINDS = ["columns", "elementwise", "encoder", "imputer", "passthrough", "sequence"]
# numpy's unicode arrays drop trailing NUL characters: a kind is stored without them.
KINDS = st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=12)
EXAMPLES = settings(max_examples=50, derandomize=True, database=None, deadline=None)
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


BOOSTING = (ESTIMATORS["boosted_trees"], load_engine(stored(ESTIMATORS["boosted_trees"])))
PIPELINE_ARRAYS = stored(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)))


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


@EXAMPLES
@given(kind=KINDS.filter(lambda kind: kind not in ENGINE_NAMES))
def test_an_unknown_engine_kind_is_refused_naming_the_known_ones(kind: str) -> None:
    arrays = {"engine": np.array(kind)}
    known = sorted(ENGINE_NAMES)
    expected = f"unknown compiled engine {kind!r}; this function knows {known}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        load_engine(arrays)


@EXAMPLES
@given(kind=KINDS.filter(lambda kind: kind not in ("classifier", "regressor")))
def test_a_linear_model_of_an_unknown_kind_is_refused(kind: str) -> None:
    """A linear model is a classifier or a regressor; any other word (a typo, another case) is a
    package this function cannot read, not a regressor."""
    arrays = {**stored(ESTIMATORS["linear"]), "kind": np.array(kind)}
    expected = f"kind {kind!r} is not one of ('classifier', 'regressor')"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        load_engine(arrays)


ENCODER_ARRAYS = stored(
    make_pipeline(OneHotEncoder(sparse_output=False, handle_unknown="ignore"), LogisticRegression(max_iter=500)),
    np.round(IRIS.data),
)


@EXAMPLES
@given(kind=KINDS.filter(lambda kind: kind not in ("number", "string")))
def test_an_encoder_column_of_an_unknown_category_kind_is_refused(kind: str) -> None:
    """An encoder's categories are numbers or strings; any other word is a package this function
    cannot read, not strings."""
    arrays = {**ENCODER_ARRAYS, "steps/0/kind_2": np.array(kind)}
    expected = f"encoder category kinds [{kind!r}] are not among ('number', 'string'): rebuild the package"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        load_engine(arrays)


IMPUTER_ARRAYS = stored(make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)))


@EXAMPLES
@given(conversion=KINDS.filter(lambda conversion: conversion not in ("float", "keep", "object")))
def test_an_imputer_of_an_unknown_conversion_is_refused(conversion: str) -> None:
    arrays = {**IMPUTER_ARRAYS, "steps/0/conversion": np.array(conversion)}
    expected = f"imputer conversion {conversion!r} is not among ('float', 'keep', 'object'): rebuild the package"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        load_engine(arrays)


@EXAMPLES
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


@EXAMPLES
@given(bad=st.sampled_from([np.nan, np.inf, -np.inf, 3.5e38, -1e300]), column=st.integers(0, 3))
def test_gradient_boosting_refuses_the_rows_scikit_learn_refuses(bad: float, column: int) -> None:
    """GradientBoosting reads rows as float32: NaN, infinity and values beyond float32's range
    are refused, as scikit-learn refuses them, with a message that says which kinds of value."""
    estimator, engine = BOOSTING
    row = IRIS.data[:1].copy()
    row[0, column] = bad
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning)
        with pytest.raises(ValueError, match=r"^Input X contains"):
            estimator.predict(row)

    refused = "the rows contain NaN or infinity, or a value too large for float32"
    with pytest.raises(ValueError, match=f"^{re.escape(refused)}$"):
        engine.predict(row)


def test_a_forest_of_one_feature_is_read() -> None:
    """The smallest forest the build writes: one feature, so two arrays for it besides the rest."""
    estimator = RandomForestClassifier(n_estimators=2, random_state=0).fit(IRIS.data[:, :1], IRIS.target)
    with np.load(io.BytesIO(serialize(compile_estimator(estimator))), allow_pickle=False) as arrays:
        engine = load_engine({name: arrays[name] for name in arrays.files})

    assert engine.predict(IRIS.data[:, :1]).tolist() == estimator.predict(IRIS.data[:, :1]).tolist()


def test_a_forest_of_one_class_is_read() -> None:
    """A classifier fitted on one class is still a classifier: its one class, with probability 1."""
    estimator = RandomForestClassifier(n_estimators=2, random_state=0).fit(IRIS.data, np.full(len(IRIS.data), 7))
    with np.load(io.BytesIO(serialize(compile_estimator(estimator))), allow_pickle=False) as arrays:
        engine = load_engine({name: arrays[name] for name in arrays.files})

    assert engine.predict(IRIS.data).tolist() == estimator.predict(IRIS.data).tolist()
    assert engine.predict_proba(IRIS.data).tobytes() == estimator.predict_proba(IRIS.data).tobytes()


def _as_int16(arrays: dict[str, Any]) -> dict[str, Any]:
    return {name: array.astype(np.int16) for name, array in arrays.items() if name.startswith("leaf_masks_")}


# The Iris forest of ESTIMATORS: 4 features, 3 trees of 7, 8 and 10 leaves (25), masks of one 16-bit word;
# a change to None removes the array.
@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        (lambda a: {"n_trees": np.array(3.0)}, "n_trees is a 0-d float64 array"),
        (lambda a: {"n_features": np.array([4])}, "n_features is a 1-d int64 array"),
        (lambda a: {"kind": np.array(1)}, "kind is a 0-d int64 array"),
        (lambda a: {"n_trees": np.array(0)}, "n_trees and words must be at least 1"),
        (lambda a: {"words": None}, "words is missing"),
        (lambda a: {"feature_names": np.array([1, 2, 3, 4])}, "feature_names is a 1-d int64 array"),
        (lambda a: {"classes": np.array([0.0, 1.0, 2.0])}, "classes is a 1-d float64 array"),
        (lambda a: {"class_names": np.array([0, 1, 2])}, "class_names is a 1-d int64 array"),
        (lambda a: {"surprise": np.array(1)}, "arrays ['surprise'] are missing or unexpected"),
        (lambda a: {"n_features": np.array(1000)}, "n_features 1000 does not match the 18 arrays"),
        # Within the bound (18 arrays, 9 features at most), but without the arrays of features 4 to 6.
        (
            lambda a: {"n_features": np.array(7)},
            "arrays ['leaf_masks_4', 'leaf_masks_5', 'leaf_masks_6', 'thresholds_4', 'thresholds_5', 'thresholds_6']"
            " are missing or unexpected",
        ),
        (lambda a: {"classes": np.array([0, 0, 1])}, "classes must be unique"),
        (
            lambda a: {"classes": np.array([], dtype=np.int64), "class_names": np.array([], dtype=str)},
            "classes must be unique",
        ),
        # One class is a classifier's least: refused here only for the leaf values of three.
        (
            lambda a: {"classes": np.array([0]), "class_names": np.array(["0"])},
            "leaf_values is float64 (25, 3), expected float64 (leaves, 1)",
        ),
        (lambda a: {"class_names": np.array(["a", "b"])}, "2 class_names for 3 classes"),
        (lambda a: {"leaf_values": np.zeros(25)}, "leaf_values is a 1-d float64 array"),
        (
            lambda a: {"leaf_values": a["leaf_values"].astype(np.float32)},
            "leaf_values is float32 (25, 3), expected float64 (leaves, 3)",
        ),
        (lambda a: {"leaf_values": np.where(a["leaf_values"] > 0, np.nan, 0.0)}, "leaf_values are not all finite"),
        (lambda a: {"leaf_offsets": a["leaf_offsets"].astype(np.float64)}, "leaf_offsets is a 1-d float64 array"),
        (
            lambda a: {"leaf_offsets": np.array([0, 0, 15])},
            "leaf_offsets must start at 0 and give each of the 3 trees at least one of the 25 leaves",
        ),
        # Trees of 1, 1 and 23 leaves: one leaf is a tree's least, 23 more than a 16-bit word holds.
        (lambda a: {"leaf_offsets": np.array([0, 1, 2])}, "a tree has more leaves than 1 words of 16 bits"),
        (_as_int16, "leaf masks are int16"),
        (lambda a: {"words": np.array(2)}, "leaf masks are uint16"),
        (lambda a: {"thresholds_0": a["thresholds_0"].astype(np.float32)}, "thresholds_0 is not 1-d float64"),
        (
            lambda a: {"thresholds_0": np.repeat(a["thresholds_0"][:1], a["thresholds_0"].size)},
            "thresholds_0 are not finite and strictly increasing",
        ),
        (
            lambda a: {"leaf_masks_0": a["leaf_masks_0"][:-1]},
            "leaf_masks_0 is uint16 (2, 3, 1), expected uint16 (3, 3, 1)",
        ),
    ],
)
def test_inconsistent_forest_arrays_are_refused_by_their_message(
    changes: Callable[[dict[str, Any]], dict[str, Any]], refused: str
) -> None:
    arrays = stored(ESTIMATORS["forest"])
    assert np.diff([*arrays["leaf_offsets"], len(arrays["leaf_values"])]).tolist() == [7, 8, 10]
    assert arrays["leaf_masks_0"].dtype == np.uint16
    changed = {name: array for name, array in {**arrays, **changes(arrays)}.items() if array is not None}
    with pytest.raises(ValueError, match=f"^{re.escape(refused)}$"):
        load_engine(changed)


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
