"""The compiled forest: numpy-only, bit for bit the estimator's answers, or refused at build time."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_regression
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from build.engines import ExactnessError, UnsupportedEstimatorError, check_exactness
from build.engines import base as compiler_base
from build.engines.base import serialize
from build.engines.forest import compile_estimator, probes
from serving.engines.forest import FORMAT_VERSION, GATHERED_SUM_LIMIT, CompiledForest, lowest_bit_positions

IRIS = load_iris()
X_REGRESSION, Y_REGRESSION = make_regression(n_samples=300, n_features=5, noise=3.0, random_state=0)
ESTIMATORS = {
    "random-forest": (RandomForestClassifier(n_estimators=100, random_state=42), IRIS.data, IRIS.target),
    "extra-trees": (ExtraTreesClassifier(n_estimators=25, random_state=1), IRIS.data, IRIS.target),
    "decision-tree": (DecisionTreeClassifier(random_state=0), IRIS.data, IRIS.target),
    "extra-tree": (ExtraTreeClassifier(random_state=0), IRIS.data, IRIS.target),
    "forest-regressor": (RandomForestRegressor(n_estimators=15, random_state=0), X_REGRESSION, Y_REGRESSION),
    "extra-trees-regressor": (ExtraTreesRegressor(n_estimators=8, random_state=0), X_REGRESSION, Y_REGRESSION),
    "tree-regressor": (DecisionTreeRegressor(random_state=0), X_REGRESSION, Y_REGRESSION),
    "extra-tree-regressor": (ExtraTreeRegressor(random_state=0), X_REGRESSION, Y_REGRESSION),
    "shallow-forest": (RandomForestClassifier(n_estimators=7, max_depth=2, random_state=3), IRIS.data, IRIS.target),
}


@pytest.fixture(scope="module", params=sorted(ESTIMATORS))
def fitted(request: pytest.FixtureRequest) -> tuple[Any, np.ndarray]:
    estimator, x, y = ESTIMATORS[request.param]
    return estimator.fit(x, y), x


def round_trip(estimator: Any, names: list[str] | None = None, classes: list[str] | None = None) -> CompiledForest:
    """The estimator compiled, written and read back as the function reads its model file."""
    with np.load(io.BytesIO(serialize(compile_estimator(estimator, names, classes))), allow_pickle=False) as stored:
        return CompiledForest({name: stored[name] for name in stored.files})


def test_exact_on_training_rows_and_probes(fitted: tuple[Any, np.ndarray]) -> None:
    estimator, x = fitted

    checked = check_exactness(estimator, round_trip(estimator), {"training": x, "probes": probes(estimator)})

    assert checked > len(x)


def test_outputs_are_identical_arrays(fitted: tuple[Any, np.ndarray]) -> None:
    estimator, x = fitted
    compiled = round_trip(estimator)

    assert compiled.predict(x).dtype == estimator.predict(x).dtype
    assert compiled.predict(x).tobytes() == estimator.predict(x).tobytes()
    if compiled.is_classifier:
        assert compiled.predict_proba(x).tobytes() == estimator.predict_proba(x).tobytes()
        labels, proba = compiled.predict_with_proba(x)
        assert labels.tobytes() == estimator.predict(x).tobytes()
        assert proba.tobytes() == estimator.predict_proba(x).tobytes()


def test_large_batches_sum_tree_by_tree_identically() -> None:
    estimator, x, y = ESTIMATORS["random-forest"]
    estimator.fit(x, y)
    rows = np.random.default_rng(1).normal(4, 2, size=(GATHERED_SUM_LIMIT // 100 + 500, 4))

    assert round_trip(estimator).predict_proba(rows).tobytes() == estimator.predict_proba(rows).tobytes()


def test_trees_with_more_than_64_leaves_use_several_words() -> None:
    estimator = DecisionTreeRegressor(random_state=0).fit(X_REGRESSION, Y_REGRESSION)
    arrays = compile_estimator(estimator)

    assert estimator.get_n_leaves() > 64
    assert int(arrays["words"]) == -(-estimator.get_n_leaves() // 64)
    check_exactness(estimator, CompiledForest(arrays), {"probes": probes(estimator)})


def test_serialized_model_is_reproducible_and_pickle_free() -> None:
    estimator = ESTIMATORS["random-forest"][0].fit(IRIS.data, IRIS.target)

    first, second = serialize(compile_estimator(estimator)), serialize(compile_estimator(estimator))

    assert first == second
    with np.load(io.BytesIO(first), allow_pickle=False) as stored:
        assert all(stored[name].dtype != object for name in stored.files)


def test_gate_reports_a_one_ulp_difference() -> None:
    estimator = RandomForestClassifier(n_estimators=5, random_state=0).fit(IRIS.data, IRIS.target)
    arrays = compile_estimator(estimator)
    arrays["leaf_values"] = np.nextafter(arrays["leaf_values"], 2.0)

    with pytest.raises(ExactnessError, match=r"iris: predict_proba differs \(largest difference"):
        check_exactness(estimator, CompiledForest(arrays), {"iris": IRIS.data})


def test_gate_reports_wrong_classes() -> None:
    estimator = DecisionTreeClassifier(random_state=0).fit(IRIS.data, IRIS.target)
    arrays = compile_estimator(estimator)
    arrays["classes"] = arrays["classes"][::-1].copy()

    with pytest.raises(ExactnessError, match=r"iris: predict differs on 100 of 150 rows, first \[0 1 2 3 4\]"):
        check_exactness(estimator, CompiledForest(arrays), {"iris": IRIS.data})


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(max_iter=1000).fit(IRIS.data, IRIS.target),
        RandomForestClassifier(n_estimators=2, random_state=0).fit(IRIS.data, np.c_[IRIS.target, IRIS.target % 2]),
    ],
)
def test_other_estimators_are_not_compiled(estimator: Any) -> None:
    with pytest.raises(UnsupportedEstimatorError, match="is not a single-output tree ensemble"):
        compile_estimator(estimator)


def test_masks_over_the_memory_cap_are_not_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler_base, "MAX_MASK_BYTES", 100)

    with pytest.raises(UnsupportedEstimatorError, match="leaf masks would take"):
        compile_estimator(ESTIMATORS["random-forest"][0].fit(IRIS.data, IRIS.target))


def test_rows_of_the_wrong_width_are_refused() -> None:
    compiled = round_trip(DecisionTreeClassifier(random_state=0).fit(IRIS.data, IRIS.target))

    with pytest.raises(ValueError, match=r"expected rows of 4 features, got shape \(2, 3\)"):
        compiled.predict(np.zeros((2, 3)))


def test_unknown_format_version_is_refused() -> None:
    arrays = compile_estimator(DecisionTreeClassifier(random_state=0).fit(IRIS.data, IRIS.target))
    arrays["format_version"] = np.array(99)

    with pytest.raises(ValueError, match=f"compiled forest format 99, expected {FORMAT_VERSION}: rebuild the package"):
        CompiledForest(arrays)


def test_regressors_have_no_probabilities() -> None:
    compiled = round_trip(DecisionTreeRegressor(random_state=0).fit(X_REGRESSION, Y_REGRESSION))

    with pytest.raises(TypeError, match="only defined for classifiers"):
        compiled.predict_proba(X_REGRESSION[:2])


def test_the_compiled_model_records_its_interface() -> None:
    estimator = RandomForestClassifier(n_estimators=3, random_state=0).fit(IRIS.data, IRIS.target)
    names, classes = ["a", "b", "c", "d"], ["setosa", "versicolor", "virginica"]

    compiled = round_trip(estimator, names, classes)

    assert (compiled.feature_names, compiled.class_names) == (names, classes)
    assert compiled.classes.tolist() == estimator.classes_.tolist()


def test_without_names_the_interface_is_scikit_learns_default() -> None:
    estimator = DecisionTreeRegressor(random_state=0).fit(X_REGRESSION, Y_REGRESSION)

    compiled = round_trip(estimator)

    assert compiled.feature_names == [f"x{i}" for i in range(X_REGRESSION.shape[1])]
    assert compiled.class_names == []


def test_without_class_names_a_classifier_names_its_classes_by_their_labels() -> None:
    labels = np.array([-1, 10, 7])[IRIS.target]
    estimator = RandomForestClassifier(n_estimators=2, random_state=0).fit(IRIS.data, labels)

    assert round_trip(estimator).class_names == ["-1", "7", "10"]


def test_names_that_contradict_the_estimator_are_refused() -> None:
    estimator = DecisionTreeClassifier(random_state=0).fit(IRIS.data, IRIS.target)
    estimator.feature_names_in_ = np.array(["a", "b", "c", "d"], dtype=object)

    with pytest.raises(ValueError, match=r"feature names \['d', 'c', 'b', 'a'\] differ from the estimator's own"):
        compile_estimator(estimator, ["d", "c", "b", "a"])
    with pytest.raises(ValueError, match="3 feature names for the estimator's 4 features"):
        compile_estimator(DecisionTreeClassifier(random_state=0).fit(IRIS.data, IRIS.target), ["a", "b", "c"])
    with pytest.raises(ValueError, match="2 class names for the estimator's 3 classes"):
        compile_estimator(DecisionTreeClassifier(random_state=0).fit(IRIS.data, IRIS.target), None, ["a", "b"])


@pytest.mark.parametrize("bits", [8, 16])
def test_the_lowest_bit_table_names_each_words_lowest_set_bit(bits: int) -> None:
    words = np.arange(1, 1 << bits)
    positions = lowest_bit_positions(bits)[1:]

    assert ((words >> positions) & 1 == 1).all()
    assert (words & ((1 << positions) - 1) == 0).all()


@pytest.mark.parametrize(("leaves", "by_table"), [(6, True), (16, True), (24, False), (60, False)])
def test_one_word_masks_are_read_by_table_or_computed_with_the_same_answers(leaves: int, by_table: bool) -> None:
    estimator = RandomForestRegressor(n_estimators=10, max_leaf_nodes=leaves, random_state=leaves)
    estimator.fit(X_REGRESSION, Y_REGRESSION)
    rows = np.random.default_rng(leaves).normal(0, 2, size=(3_000, X_REGRESSION.shape[1]))
    compiled = round_trip(estimator)

    assert compiled.words == 1
    assert (compiled.lowest_bit is not None) == by_table
    assert compiled.predict(rows).tobytes() == estimator.predict(rows).tobytes()


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
    ],
    ids=lambda estimator: type(estimator).__name__,
)
@pytest.mark.parametrize("n_rows", [1, GATHERED_SUM_LIMIT // 5, GATHERED_SUM_LIMIT // 5 + 1, 30_000])
def test_a_negative_zero_leaf_answers_as_scikit_learn_does_on_either_summing_path(estimator: Any, n_rows: int) -> None:
    """A tree answers its -0.0 leaf as -0.0; a forest adds its trees' values to zeros, so 0.0. Both
    at one row, at the gathered sum's limit (5 trees), one row past it and far past it."""
    estimator.fit(SIGNED_ZERO_ROWS, SIGNED_ZERO_TARGET)
    rows = np.resize(SIGNED_ZERO_ROWS, (n_rows, 2))
    expected = estimator.predict(rows)
    assert (expected == 0).any()

    assert round_trip(estimator).predict(rows).tobytes() == expected.tobytes()


def test_a_forest_of_one_tree_with_a_negative_zero_leaf_is_refused_by_the_gate() -> None:
    """The arrays do not tell one tree from a forest of one: the engine answers -0.0 as a tree does,
    where the forest answers 0.0, and the gate counts every such row."""
    forest = RandomForestRegressor(n_estimators=1, criterion="absolute_error", bootstrap=False, random_state=0)
    forest.fit(SIGNED_ZERO_ROWS, SIGNED_ZERO_TARGET)
    zeros = np.flatnonzero(forest.predict(SIGNED_ZERO_ROWS) == 0)

    refused = f"rows: predict differs on {zeros.size} of 20 rows, first {zeros[:5]}"
    with pytest.raises(ExactnessError, match=re.escape(refused)):
        check_exactness(forest, round_trip(forest), {"rows": SIGNED_ZERO_ROWS})
