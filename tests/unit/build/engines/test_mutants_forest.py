"""The forest compiler at the places an exact engine never reaches: the gate's probes (an exact
engine passes any probes, so only a test of the probes notices them shrinking), which estimators
it takes, and its refusals. The probes' promise (build/engines/forest.py): rows at, just above and
just below every split threshold in float32 and float64, extremes, negatives, and random rows
around the thresholds' range. And the leaf masks (forests' and boosting's): one bit per leaf in the
smallest unsigned integer that holds them. Expected values come from scikit-learn's fitted trees, or literals."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas
import pytest
from sklearn.datasets import make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from build.engines import COMPILERS, UnsupportedEstimatorError, check_exactness, compile_estimator, compiler_for
from build.engines import base as compiler_base
from build.engines import forest as forest_compiler
from serving.engines import load_engine

FLOAT32_MAX = 3.4028234663852886e38
EXTREMES = (FLOAT32_MAX, -FLOAT32_MAX, 0.0, -0.0, 1e-45, -1e-45, 1e30, -1e30)
N_UNIFORM = 2000
N_NEGATIVE = 200


def fitted(kind: type[Any], n_features: int = 3) -> tuple[Any, np.ndarray]:
    rows, target = make_regression(n_samples=80, n_features=n_features, random_state=0)
    rows = rows * np.pi  # thresholds that are not float32
    if "Classifier" in kind.__name__:
        target = np.digitize(target, [-20.0, 20.0])
    params = {} if kind.__name__.startswith(("Decision", "ExtraTree")) else {"n_estimators": 4}
    return kind(max_depth=3, random_state=0, **params).fit(rows, target), rows


def thresholds(estimator: Any, feature: int) -> np.ndarray:
    trees = [tree.tree_ for tree in getattr(estimator, "estimators_", [estimator])]
    return np.unique(np.concatenate([tree.threshold[tree.feature == feature] for tree in trees]))


def contains(column: np.ndarray, value: float) -> bool:
    """`value` is in `column`, zero's sign included."""
    return bool(((column == value) & (np.signbit(column) == np.signbit(value))).any())


KINDS = [
    RandomForestClassifier,
    RandomForestRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
]


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_every_tree_ensemble_compiles_as_a_forest_and_passes_the_gate_on_its_probes(kind: type[Any]) -> None:
    estimator, rows = fitted(kind)

    compiler = compiler_for(estimator)
    assert compiler.name == "forest"
    assert compiler.guarantee(estimator) == "bitwise-anywhere"
    arrays = compile_estimator(estimator, "model/")
    assert str(arrays["model/engine"]) == "forest"
    engine = load_engine(arrays, "model/")
    probes = compiler.probe_rows(estimator, rows)
    assert check_exactness(estimator, engine, {"rows": rows, "probes": probes}) == len(rows) + len(probes)


def test_the_probes_hold_every_threshold_and_its_float_neighbours_extremes_negatives_and_random_rows() -> None:
    estimator, rows = fitted(RandomForestRegressor)
    by_feature = [thresholds(estimator, feature) for feature in range(3)]

    probes = compiler_for(estimator).probe_rows(estimator, rows)

    around = sum(6 * len(values) for values in by_feature)
    assert probes.shape == (around + N_UNIFORM + N_NEGATIVE + len(EXTREMES) * 3, 3)
    for feature, values in enumerate(by_feature):
        column = probes[:around, feature]
        for threshold in values:
            single = np.float32(threshold)
            for value in (
                threshold,
                np.nextafter(threshold, np.inf),
                np.nextafter(threshold, -np.inf),
                float(single),
                float(np.nextafter(single, np.float32(np.inf))),
                float(np.nextafter(single, np.float32(-np.inf))),
            ):
                assert contains(column, value), (feature, threshold, value)
        for extreme in EXTREMES:
            assert contains(probes[-len(EXTREMES) * 3 :, feature], extreme), (feature, extreme)
    # Random rows from one span below the lowest threshold to one span above the highest.
    low = min(values.min() for values in by_feature)
    high = max(values.max() for values in by_feature)
    span = high - low
    uniform = probes[around : around + N_UNIFORM]
    assert uniform.min() >= low - span
    assert uniform.max() <= high + span
    assert uniform.min() < low - 0.9 * span
    assert uniform.max() > high + 0.9 * span
    negatives = probes[around + N_UNIFORM : around + N_UNIFORM + N_NEGATIVE]
    assert (negatives <= 0).all()
    assert negatives.std() > span / 2


@pytest.mark.parametrize(
    "estimator",
    [
        RandomForestRegressor(n_estimators=2, random_state=0).fit(np.eye(4), np.eye(4)[:, :2]),
        DecisionTreeClassifier(random_state=0).fit(np.eye(4), np.eye(4)[:, :2]),
    ],
    ids=["multi-output-regressor", "multi-output-classifier"],
)
def test_multi_output_trees_are_not_forests(estimator: Any) -> None:
    forest = next(compiler for compiler in COMPILERS if compiler.name == "forest")

    assert not forest.supports(estimator)
    with pytest.raises(UnsupportedEstimatorError, match="no compiled engine for"):
        compile_estimator(estimator)


# 100 and 128: two words, with leaves reached past the first word that are not the tree's last.
LEAF_COUNTS = [2, 8, 9, 16, 17, 32, 33, 64, 65, 100, 128, 129]


def smallest_mask(leaves: int) -> tuple[np.dtype[Any], int]:
    """One bit per leaf in the smallest unsigned integer that holds them, else 64-bit words."""
    for bits, dtype in ((8, np.uint8), (16, np.uint16), (32, np.uint32)):
        if leaves <= bits:
            return np.dtype(dtype), 1
    return np.dtype(np.uint64), (leaves + 63) // 64


@pytest.mark.parametrize("leaves", LEAF_COUNTS)
def test_leaf_masks_take_the_smallest_integer_with_a_bit_per_leaf(leaves: int) -> None:
    rows, target = make_regression(n_samples=400, n_features=2, random_state=1)
    forest = DecisionTreeRegressor(max_leaf_nodes=leaves, random_state=0).fit(rows, target)
    boosted = GradientBoostingRegressor(n_estimators=1, max_depth=None, max_leaf_nodes=leaves, random_state=0)
    boosted.fit(rows, target)
    assert forest.get_n_leaves() == leaves
    assert boosted.estimators_[0, 0].get_n_leaves() == leaves
    dtype, words = smallest_mask(leaves)

    for estimator in (forest, boosted):
        arrays = compile_estimator(estimator)
        assert arrays["leaf_masks_0"].dtype == dtype
        assert int(arrays["words"]) == words
        assert check_exactness(estimator, load_engine(arrays), {"rows": rows}) == len(rows)


@pytest.mark.parametrize("leaves", [8, 16, 100])
def test_the_leaf_masks_size_limit_counts_every_mask_byte(leaves: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The masks take, per feature, one row per threshold and one more, of a word set per tree:
    a forest compiles when the limit is exactly that many bytes and is refused one byte below."""
    rows, target = make_regression(n_samples=400, n_features=3, random_state=2)
    estimator = RandomForestRegressor(n_estimators=3, max_leaf_nodes=leaves, random_state=0).fit(rows, target)
    trees = [tree.tree_ for tree in estimator.estimators_]
    thresholds = [{t for tree in trees for t in tree.threshold[tree.feature == f]} for f in range(3)]
    dtype, words = smallest_mask(max(tree.n_leaves for tree in trees))
    expected = sum((len(values) + 1) * len(trees) * words * dtype.itemsize for values in thresholds)

    monkeypatch.setattr(compiler_base, "MAX_MASK_BYTES", expected)
    compile_estimator(estimator)
    monkeypatch.setattr(compiler_base, "MAX_MASK_BYTES", expected - 1)
    refused = f"RandomForestRegressor: leaf masks would take {expected:,} bytes, more than the {expected - 1:,}"
    with pytest.raises(UnsupportedEstimatorError, match=f"^{re.escape(refused)} a compiled model may hold$"):
        compile_estimator(estimator)


def test_a_forest_that_never_splits_compiles_and_answers_its_one_value() -> None:
    """Fitted on a constant target, every tree is a single leaf: no feature has a threshold to
    probe around, and the forest still compiles and passes the gate."""
    rows = np.random.default_rng(4).normal(size=(50, 2))
    estimator = RandomForestRegressor(n_estimators=3, random_state=0).fit(rows, np.full(50, 2.5))

    probes = compiler_for(estimator).probe_rows(estimator, rows)
    engine = load_engine(compile_estimator(estimator))

    assert all(tree.tree_.node_count == 1 for tree in estimator.estimators_)
    assert check_exactness(estimator, engine, {"rows": rows, "probes": probes}) == len(rows) + len(probes)


def test_a_forest_fitted_on_a_dataframe_records_its_column_names() -> None:
    frame = pandas.DataFrame({"petal length": [1.0, 2.0, 3.0, 4.0] * 10, "width": [0.5, 0.1, 0.9, 0.2] * 10})
    estimator = RandomForestClassifier(n_estimators=2, random_state=0).fit(frame, [0, 1, 1, 0] * 10)

    assert compile_estimator(estimator)["feature_names"].tolist() == ["petal length", "width"]


def test_the_forest_compiler_refuses_another_estimator_by_its_name() -> None:
    with pytest.raises(UnsupportedEstimatorError, match=r"^LinearRegression is not a single-output tree ensemble$"):
        forest_compiler.compile_estimator(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]))
