"""scikit-learn's forests and single trees compiled to a TreeEnsemble answer bit for bit as
scikit-learn does, -0.0 leaves included; what cannot be compiled is refused by name."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from sklearn.datasets import load_iris
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from build.engines import UnsupportedEstimatorError, check_exactness, compile_estimator, compiler_for
from build.engines.base import serialize
from build.engines.forest import ensemble
from serving.engines import load_engine
from serving.engines.tree_engine import TreeEngine
from tests.shared import examples

IRIS = load_iris()
FAMILIES = [
    RandomForestClassifier,
    ExtraTreesClassifier,
    DecisionTreeClassifier,
    ExtraTreeClassifier,
    RandomForestRegressor,
    ExtraTreesRegressor,
    DecisionTreeRegressor,
    ExtraTreeRegressor,
]


def round_trip(estimator: Any, prefix: str = "") -> Any:
    """The estimator compiled, written and read back as the function reads its model file."""
    with np.load(io.BytesIO(serialize(compile_estimator(estimator, prefix))), allow_pickle=False) as stored:
        return load_engine({name: stored[name] for name in stored.files}, prefix)


def generated(seed: int, n_classes: int, missing: float) -> tuple[NDArray[np.float64], NDArray[Any]]:
    """Rows on scales from 1e-3 to 1e4 (values that float32 rounds), some NaN; a target of
    `n_classes` labels, or numbers (0 classes)."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(
        0, float(rng.choice([1e-3, 1.0, 1e4])), size=(int(rng.integers(30, 200)), int(rng.integers(1, 6)))
    )
    signal = rows @ rng.normal(size=rows.shape[1])
    rows[rng.random(rows.shape) < missing] = np.nan
    if n_classes == 0:
        return rows, signal
    labels = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return rows, np.array(["a", "b", "c", "d"])[labels] if seed % 3 == 0 else labels


@settings(max_examples=examples(0.8), deadline=None)
@given(
    family=st.sampled_from(FAMILIES),
    seed=st.integers(0, 2**31),
    n_estimators=st.integers(1, 6),
    max_depth=st.sampled_from([None, 1, 3]),
    missing=st.sampled_from([0.0, 0.1]),
)
def test_every_forest_and_tree_is_exact_on_its_rows_and_probes(
    family: type, seed: int, n_estimators: int, max_depth: int | None, missing: float
) -> None:
    """Generated models of every family, fitted with and without NaN, compared with scikit-learn on
    the training rows and on probes: every threshold, its float32 and float64 neighbours and the
    values halfway to them, NaN where accepted, signed zeros, float32's extremes."""
    is_classifier = family.__name__.endswith("Classifier")
    rows, target = generated(seed, int(seed % 3) + 2 if is_classifier else 0, missing)
    options: dict[str, Any] = {"random_state": seed % 1000, "max_depth": max_depth}
    if family in (RandomForestClassifier, ExtraTreesClassifier, RandomForestRegressor, ExtraTreesRegressor):
        options["n_estimators"] = n_estimators
    estimator = family(**options).fit(rows, target)
    engine = round_trip(estimator, "final/")
    probes = compiler_for(estimator).probe_rows(estimator, rows)

    assert check_exactness(estimator, engine, {"rows": rows, "probes": probes}) == len(rows) + len(probes)
    assert engine.n_features == rows.shape[1]


def test_labels_and_probabilities_are_the_estimators_arrays() -> None:
    estimator = RandomForestClassifier(n_estimators=10, random_state=0).fit(
        IRIS.data, np.array([-1, 10, 7])[IRIS.target]
    )
    engine = round_trip(estimator)

    assert engine.predict(IRIS.data).dtype == estimator.predict(IRIS.data).dtype
    assert engine.predict(IRIS.data).tobytes() == estimator.predict(IRIS.data).tobytes()
    assert engine.predict_proba(IRIS.data).tobytes() == estimator.predict_proba(IRIS.data).tobytes()
    assert engine.classes.tolist() == [-1, 7, 10]


def test_large_batches_walk_in_blocks_with_the_same_bits() -> None:
    estimator = RandomForestRegressor(n_estimators=30, random_state=0).fit(IRIS.data, IRIS.target)
    rows = np.random.default_rng(1).normal(4, 2, size=(7_000, 4))

    assert round_trip(estimator).predict(rows).tobytes() == estimator.predict(rows).tobytes()


# Half the targets -0.0: a median leaf (criterion="absolute_error") holds -0.0 itself.
SIGNED_ZERO_ROWS = np.arange(40, dtype=np.float64).reshape(20, 2)
SIGNED_ZERO_TARGET = np.where(np.arange(20) < 10, -0.0, 5.0)


@pytest.mark.parametrize(
    "estimator",
    [
        DecisionTreeRegressor(criterion="absolute_error", random_state=0),
        ExtraTreeRegressor(criterion="absolute_error", random_state=0),
        RandomForestRegressor(n_estimators=5, criterion="absolute_error", bootstrap=False, random_state=0),
        ExtraTreesRegressor(n_estimators=5, criterion="absolute_error", random_state=0),
        RandomForestRegressor(n_estimators=1, criterion="absolute_error", bootstrap=False, random_state=0),
    ],
    ids=["tree", "extra-tree", "forest", "extra-trees", "forest-of-one-tree"],
)
@pytest.mark.parametrize("n_rows", [1, 20, 30_000])
def test_a_negative_zero_leaf_answers_as_scikit_learn_does(estimator: Any, n_rows: int) -> None:
    """A tree answers its -0.0 leaf as it is; a forest, even of one tree, adds its trees' values to
    +0.0, so 0.0: the tree starts its sum at -0.0, the forest at +0.0."""
    estimator.fit(SIGNED_ZERO_ROWS, SIGNED_ZERO_TARGET)
    rows = np.resize(SIGNED_ZERO_ROWS, (n_rows, 2))
    expected = estimator.predict(rows)
    assert (expected == 0).any()

    assert round_trip(estimator).predict(rows).tobytes() == expected.tobytes()


def test_a_forest_that_never_splits_answers_its_one_value() -> None:
    estimator = RandomForestRegressor(n_estimators=3, random_state=0).fit(IRIS.data, np.full(150, 2.5))
    compiled = ensemble(estimator)

    assert compiled.n_nodes == 0
    assert TreeEngine(compiled).predict(IRIS.data[:3]).tolist() == [2.5, 2.5, 2.5]


def test_nan_goes_where_the_tree_sends_it_and_infinity_is_refused() -> None:
    """scikit-learn's trees accept NaN (sent by missing_go_to_left, even when fitted without any)
    and refuse infinity, as does the engine."""
    estimator = DecisionTreeRegressor(random_state=0).fit(IRIS.data, IRIS.target)
    rows = np.where(np.eye(4, dtype=bool), np.nan, IRIS.data[:4])
    engine = round_trip(estimator)

    assert engine.predict(rows).tobytes() == estimator.predict(rows).tobytes()
    with pytest.raises(ValueError, match="infinity, or a value too large for float32"):
        engine.predict(np.array([[1e39, 1.0, 1.0, 1.0]]))


def test_a_tree_that_refuses_nan_is_compiled_to_refuse_it() -> None:
    # An extra tree that splits as a decision tree does ("best") takes no missing values.
    estimator = ExtraTreeRegressor(splitter="best", random_state=0).fit(IRIS.data, IRIS.target)
    rows = np.array([[np.nan, 1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="NaN"):
        estimator.predict(rows)
    engine = round_trip(estimator)
    refused = "input contains NaN or infinity, or a value too large for float32, which this model does not accept"
    with pytest.raises(ValueError, match=f"^{re.escape(refused)}$"):
        engine.predict(rows)
    assert engine.predict(IRIS.data).tobytes() == estimator.predict(IRIS.data).tobytes()


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (
            LogisticRegression(max_iter=1000).fit(IRIS.data, IRIS.target),
            "LogisticRegression is not a scikit-learn forest",
        ),
        (
            RandomForestClassifier(n_estimators=2, random_state=0).fit(IRIS.data, np.c_[IRIS.target, IRIS.target % 2]),
            "RandomForestClassifier with 2 outputs: only single-output trees compile",
        ),
    ],
    ids=["not-a-forest", "two-outputs"],  # plain ids, by which mutmut selects each test
)
def test_what_is_not_a_single_output_forest_is_refused_by_name(estimator: Any, message: str) -> None:
    with pytest.raises(UnsupportedEstimatorError, match=message):
        ensemble(estimator)


def test_the_compiled_file_is_reproducible_and_pickle_free() -> None:
    estimator = RandomForestClassifier(n_estimators=5, random_state=0).fit(IRIS.data, IRIS.target)

    first, second = serialize(compile_estimator(estimator)), serialize(compile_estimator(estimator))

    assert first == second
    with np.load(io.BytesIO(first), allow_pickle=False) as stored:
        assert all(stored[name].dtype != object for name in stored.files)


def test_float32_models_store_float32_thresholds() -> None:
    estimator = RandomForestClassifier(n_estimators=5, random_state=0).fit(IRIS.data, IRIS.target)

    arrays = compile_estimator(estimator)

    assert arrays["threshold"].dtype == np.float32
    assert arrays["feature"].dtype == arrays["children"].dtype == np.int32
