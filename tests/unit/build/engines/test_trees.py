"""What every tree compiler shares (build/engines/trees.py): exact float32 thresholds, the gate's
probes and their bound, the guarantee, and a compiled file smaller than joblib's."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import joblib
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.tree import DecisionTreeClassifier

from build.engines import ExactnessError, check_exactness, compile_estimator, compiler_for, forest
from build.engines.base import serialize
from build.engines.forest import ensemble as forest_ensemble
from build.engines.trees import (
    PROBE_RANDOM_ROWS,
    LibraryTree,
    TreeCompiler,
    assemble,
    bitset,
    float32_thresholds,
    probe_rows,
    probe_values,
)
from serving.engines import load_engine
from serving.engines.trees import MISSING_NAN, MISSING_ZERO, ZERO_THRESHOLD, TreeEnsemble

X, Y = make_classification(n_samples=400, n_features=5, random_state=0)


@given(
    threshold=st.floats(allow_nan=False),
    value=st.floats(width=32, allow_nan=False),
    comparison=st.sampled_from(["<=", "<"]),
)
def test_float32_thresholds_decide_every_float32_value_as_the_float64_ones(
    threshold: float, value: float, comparison: str
) -> None:
    stored = float32_thresholds(np.array([threshold]), comparison)[0]
    single = np.float32(value)

    if comparison == "<=":
        assert bool(single <= stored) == (float(single) <= threshold)
    else:
        assert bool(single < stored) == (float(single) < threshold)


@pytest.mark.parametrize("comparison", ["<=", "<"])
def test_thresholds_at_the_edge_of_float32s_range_compile_without_an_overflow_warning(comparison: str) -> None:
    largest = float(np.finfo(np.float32).max)
    edges = np.array([largest, np.nextafter(largest, np.inf), -np.nextafter(largest, np.inf), 1e300, -1e300])

    stored = float32_thresholds(edges, comparison)  # warnings are errors in the tests

    for value in (largest, -largest, np.inf, -np.inf):
        single = np.float32(value)
        decided = single <= stored if comparison == "<=" else single < stored
        expected = float(single) <= edges if comparison == "<=" else float(single) < edges
        assert decided.tolist() == expected.tolist()


def test_the_probes_hold_every_threshold_its_neighbours_and_the_extremes() -> None:
    estimator = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, Y)
    compiled = compiler_for(estimator)
    rows = compiled.probe_rows(estimator, X)
    tree = estimator.estimators_[0, 0].tree_
    feature = int(tree.feature[0])
    thresholds = tree.threshold[tree.feature == feature]
    as_float32 = float32_thresholds(thresholds, "<=")

    column = rows[:, feature].astype(np.float32)
    for value in (
        *as_float32,
        *np.nextafter(as_float32, np.float32(np.inf)),
        np.finfo(np.float32).max,
        np.float32(-0.0),
    ):
        assert (column == value).any()
    assert np.isfinite(rows).all()  # GradientBoosting refuses NaN and infinity: no probe holds them
    check_exactness(estimator, load_engine(compile_estimator(estimator)), {"probes": rows})


def test_the_probes_of_a_model_that_reads_nan_and_categories_hold_them() -> None:
    rows = X.copy()
    rows[:, 0] = np.random.default_rng(0).integers(-1, 6, len(rows))
    rows[::7, 1] = np.nan
    estimator = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]).fit(rows, Y)

    probes = compiler_for(estimator).probe_rows(estimator, rows)

    assert set(np.arange(-1.0, 6.0)) <= set(probes[:, 0].tolist())
    assert np.isnan(probes[:, 0]).any()
    assert np.isnan(probes[:, 1]).any()
    assert np.isposinf(probes[:, 1]).any()
    assert not np.isinf(probes[:, 0]).any()  # the encoder refuses infinity


@pytest.mark.parametrize(
    ("make", "beyond_float32"),
    [
        (lambda: GradientBoostingClassifier(n_estimators=2, random_state=0), []),  # refuses NaN and infinity
        (lambda: RandomForestRegressor(n_estimators=2, random_state=0), [np.nan]),  # refuses infinity
        (lambda: HistGradientBoostingClassifier(max_iter=2), [np.nan, np.inf, -np.inf, 1e300, -1e300, 5e-324, -5e-324]),
    ],
    ids=["finite", "no-infinity", "any"],
)
def test_every_feature_is_probed_at_the_extremes_its_model_accepts(make: Any, beyond_float32: list[float]) -> None:
    estimator = make().fit(X, Y)
    float32_max = float(np.finfo(np.float32).max)
    extremes = [0.0, -0.0, 1e-45, -1e-45, 1e30, -1e30, float32_max, -float32_max, *beyond_float32]
    patterns = np.array(extremes, dtype=np.float64).view(np.uint64).tolist()  # -0.0 apart from 0.0

    probes = compiler_for(estimator).probe_rows(estimator, X)

    for feature in range(X.shape[1]):
        column = set(probes[:, feature].view(np.uint64).tolist())
        assert all(pattern in column for pattern in patterns), feature
    assert np.isnan(probes).any() == bool(beyond_float32)
    assert np.isinf(probes).any() == (len(beyond_float32) > 1)


def stump(missing: int, input_dtype: str = "float64") -> TreeEnsemble:
    """A regressor of two features whose one split, on feature 0 at 0.5, has the `missing` rule."""
    tree = LibraryTree(
        left=np.array([1, -1, -1]),
        right=np.array([2, -1, -1]),
        feature=np.array([0, 0, 0]),
        threshold=np.array([0.5, 0.0, 0.0]),
        value=np.arange(3.0)[:, None],
        missing=np.full(3, missing, dtype=np.uint8),
    )
    return assemble(
        [tree],
        kind="regressor",
        n_features=2,
        classes=None,
        input_dtype=input_dtype,
        input_check="any",
        comparison="<=",
        tree_output=[0],
        base_score=np.zeros(1),
        average=False,
        link="identity",
        decision="value",
    )


def test_a_model_that_reads_zero_as_missing_is_probed_at_zeros_edge_on_every_feature() -> None:
    # LightGBM's zero rule: |x| <= ZERO_THRESHOLD is missing; the values at and around that edge decide it.
    edge = [ZERO_THRESHOLD, -ZERO_THRESHOLD, float(np.nextafter(ZERO_THRESHOLD, 1.0)), 1e-36, -1e-36]
    edge_bits = set(np.array(edge).view(np.uint64).tolist())
    always_bits = set(np.array([0.0, -0.0, 1e-45, np.inf, np.nan]).view(np.uint64).tolist())

    for values in probe_values(stump(MISSING_ZERO)):
        assert edge_bits | always_bits <= set(values.view(np.uint64).tolist())
    # Without the zero rule the second feature, which no split reads, is probed at the extremes alone.
    unread = set(probe_values(stump(MISSING_NAN))[1].view(np.uint64).tolist())
    assert always_bits <= unread
    assert not edge_bits & unread


@pytest.mark.parametrize("input_dtype", ["float32", "float64"])
def test_a_threshold_is_probed_at_itself_its_neighbours_and_for_float32_the_values_halfway_to_them(
    input_dtype: str,
) -> None:
    dtype = np.dtype(input_dtype).type
    threshold = dtype(0.5)
    up, down = np.nextafter(threshold, dtype(np.inf)), np.nextafter(threshold, dtype(-np.inf))
    expected = [threshold, up, down]
    if input_dtype == "float32":  # the float64 inputs the cast to float32 rounds to one side or the other
        expected += [(float(threshold) + float(up)) / 2, (float(threshold) + float(down)) / 2]

    read, unread = probe_values(stump(MISSING_NAN, input_dtype))

    # The feature no split reads is probed at the extremes alone; the split's feature at those and its threshold's.
    extremes = set(unread.view(np.uint64).tolist())
    assert extremes <= set(read.view(np.uint64).tolist())
    assert set(read.view(np.uint64).tolist()) - extremes == set(
        np.array(expected, dtype=np.float64).view(np.uint64).tolist()
    )


def categorical_stump(feature: int, codes: list[int]) -> LibraryTree:
    """A tree whose root splits `feature` by category (`codes` go left), then feature 0 at 0.5."""
    return LibraryTree(
        left=np.array([1, 3, -1, -1, -1]),
        right=np.array([2, 4, -1, -1, -1]),
        feature=np.array([feature, 0, 0, 0, 0]),
        threshold=np.array([0.0, 0.5, 0.0, 0.0, 0.0]),
        value=np.arange(5.0)[:, None],
        categories={0: bitset(codes)},
    )


def categorical_ensemble(trees: list[LibraryTree], rule: str, known: dict[int, Any] | None) -> TreeEnsemble:
    return assemble(
        trees,
        kind="regressor",
        n_features=4,
        classes=None,
        input_dtype="float64",
        input_check="any",
        comparison="<=",
        tree_output=[0] * len(trees),
        base_score=np.zeros(1),
        average=False,
        link="identity",
        decision="value",
        category_rule=rule,
        known_categories=known,
    )


def categorical_probes(trees: list[LibraryTree], rule: str, known: dict[int, Any] | None) -> list[set[float]]:
    return [set(values.tolist()) for values in probe_values(categorical_ensemble(trees, rule, known))]


def no_categories(top: float) -> set[float]:
    """Values that are no category of a feature whose largest code is `top`: negative, fractional,
    past the largest code, huge."""
    return {-1.0, 0.5, top + 1, top + 0.5, top + 32, top + 256, 2.0**31, 1e300, -1e300}


def test_the_probes_of_categorical_splits_hold_every_code_its_neighbours_and_non_categories() -> None:
    """LightGBM's rule: the codes come from the splits' bitsets alone (here a second split's, in
    two words, and a split that sends no code left)."""
    probes = categorical_probes([categorical_stump(3, []), categorical_stump(2, [1, 5, 40])], "truncate", None)

    codes = np.array([1.0, 5.0, 40.0])
    assert set(codes) | set(np.nextafter(codes, np.inf)) | set(np.nextafter(codes, -np.inf)) <= probes[2]
    assert no_categories(40.0) <= probes[2]
    assert no_categories(0.0) <= probes[3]


def test_the_probes_of_known_categories_hold_each_features_own() -> None:
    """HistGradientBoosting's rule: every known category of the feature, split on or not."""
    known = {1: np.array([0.0]), 2: np.array([1.0, 5.0, 7.0, 40.0])}
    probes = categorical_probes([categorical_stump(1, [0]), categorical_stump(2, [1, 5])], "known", known)

    assert {1.0, 5.0, 7.0, 40.0, np.nextafter(7.0, np.inf), np.nextafter(7.0, -np.inf)} <= probes[2]
    assert no_categories(40.0) <= probes[2]
    assert no_categories(0.0) <= probes[1]
    assert 7.0 not in probes[1]


def test_a_feature_of_known_categories_is_probed_with_nan_in_place_of_infinity() -> None:
    """scikit-learn's encoder refuses infinity, even in a feature of one category."""
    known = {1: np.array([0.0]), 2: np.array([1.0, 5.0])}
    ensemble = categorical_ensemble([categorical_stump(1, [0]), categorical_stump(2, [1])], "known", known)

    probes = probe_rows(ensemble, np.zeros((10, 4)))

    assert not np.isinf(probes[:, 1:3]).any()
    assert np.isnan(probes[:, 1:3]).any(axis=0).all()
    assert np.isinf(probes[:, 3]).any()  # a numeric feature is probed at infinity


def test_the_probes_are_bounded_and_every_feature_is_probed_in_each_row() -> None:
    estimator = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, X @ np.arange(5.0))
    compiled = forest_ensemble(estimator)
    longest = max(values.size for values in probe_values(compiled))

    rows = probe_rows(compiled, X, budget=100)

    assert longest > 100
    assert len(rows) <= 100 + 2_000  # sampled to the budget, plus the random reference rows
    assert len(probe_rows(compiled, X)) >= longest  # unbounded here: all of them, all features at once


def test_over_the_budget_each_features_values_are_sampled_without_repeats() -> None:
    estimator = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, X @ np.arange(5.0))
    compiled = forest_ensemble(estimator)
    per_feature = probe_values(compiled)

    rows = probe_rows(compiled, X[:0], budget=100)  # no reference rows: the sampled values alone

    assert rows.shape == (100, 5)
    for feature, values in enumerate(per_feature):
        assert values.size > 100
        drawn = Counter(rows[:, feature].view(np.uint64).tolist())
        available = Counter(values.view(np.uint64).tolist())
        assert all(count <= available[bits] for bits, count in drawn.items())


def test_within_the_budget_each_feature_is_also_probed_alone_in_a_reference_row() -> None:
    estimator = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, Y)
    compiled = forest_ensemble(estimator)
    sizes = [values.size for values in probe_values(compiled)]
    longest, total = max(sizes), sum(sizes)

    # Exactly at the budget: all at once, then one feature at a time, then the random reference rows.
    assert len(probe_rows(compiled, X, budget=total)) == longest + total + PROBE_RANDOM_ROWS
    assert len(probe_rows(compiled, X, budget=total - 1)) == longest + PROBE_RANDOM_ROWS
    # Without reference rows, one feature at a time in a row of zeros.
    alone = probe_rows(compiled, X[:0])[longest:]
    assert len(alone) == total
    assert np.array_equal(alone[: sizes[0], 0], probe_values(compiled)[0], equal_nan=True)
    assert (alone[: sizes[0], 1:] == 0).all()


def test_the_random_reference_rows_have_about_a_third_of_their_features_made_extreme() -> None:
    estimator = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, Y)
    compiled = forest_ensemble(estimator)

    random_rows = probe_rows(compiled, X)[-PROBE_RANDOM_ROWS:]

    from_reference = np.column_stack([np.isin(random_rows[:, f], X[:, f]) for f in range(X.shape[1])])
    assert 0.25 < 1 - from_reference.mean() < 0.35
    assert len(np.unique(random_rows[~from_reference])) > 3  # several extremes, NaN among them
    assert np.isnan(random_rows).any()


def test_a_refitted_estimator_is_compiled_afresh() -> None:
    estimator = DecisionTreeClassifier(random_state=0)
    compiler = compiler_for(estimator)
    first = compiler.probe_rows(estimator.fit(X, Y), X)
    second = compiler.probe_rows(estimator.fit(X[:, ::-1].copy(), Y), X)

    assert first.shape == second.shape
    assert not np.array_equal(first, second, equal_nan=True)


def test_a_tree_compiler_builds_one_ensemble_per_fit_for_its_arrays_guarantee_and_probes() -> None:
    built: list[Any] = []

    def counted_ensemble(estimator: Any) -> Any:
        built.append(estimator)
        return forest_ensemble(estimator)

    compiler = TreeCompiler("forest", forest.supports, counted_ensemble).compiler
    estimator = DecisionTreeClassifier(random_state=0).fit(X, Y)
    arrays = compiler.compile(estimator, "steps/0/")
    guarantee = compiler.guarantee(estimator)
    probes = compiler.probe_rows(estimator, X)

    assert built == [estimator]
    expected = forest_ensemble(estimator)
    assert compiler.name == "forest"
    assert compiler.supports(estimator)
    assert not compiler.supports(GradientBoostingClassifier())
    assert arrays.keys() == expected.to_arrays("steps/0/").keys()
    assert all(np.array_equal(arrays[key], value) for key, value in expected.to_arrays("steps/0/").items())
    assert guarantee == "bitwise-anywhere"
    assert np.array_equal(probes, probe_rows(expected, X), equal_nan=True)
    compiler.compile(estimator.fit(X[:, ::-1].copy(), Y), "steps/0/")
    assert len(built) == 2


@pytest.mark.parametrize(
    ("estimator", "guarantee"),
    [
        (RandomForestRegressor(n_estimators=2, random_state=0), "bitwise-anywhere"),
        (GradientBoostingClassifier(n_estimators=2, random_state=0), "bitwise-same-libraries"),
    ],
)
def test_the_guarantee_is_anywhere_only_without_exp(estimator: Any, guarantee: str) -> None:
    estimator.fit(X, Y)
    assert compiler_for(estimator).guarantee(estimator) == guarantee


def test_the_gate_names_wrong_classes() -> None:
    estimator = DecisionTreeClassifier(random_state=0).fit(X, Y)
    arrays = compile_estimator(estimator)
    arrays["classes"] = arrays["classes"][::-1].copy()

    with pytest.raises(ExactnessError, match=r"rows: predict differs on 400 of 400 rows, first \[0 1 2 3 4\]"):
        check_exactness(estimator, load_engine(arrays), {"rows": X})


def test_a_large_shallow_forest_compiles_smaller_than_its_joblib_and_exact(tmp_path: Any) -> None:
    """Production size kept cheap: many trees, many nodes (the bench builds the real one). Three
    features, not twenty: the same trees (about 235,000 nodes) for a fifth of the fit."""
    rows = np.random.default_rng(0).normal(size=(4_000, 3))
    estimator = RandomForestRegressor(n_estimators=150, max_depth=10, random_state=0).fit(rows, rows[:, 0] + rows[:, 1])
    payload = serialize(compile_estimator(estimator))
    joblib.dump(estimator, tmp_path / "model.joblib")

    assert len(payload) < (tmp_path / "model.joblib").stat().st_size / 2
    with np.load(io.BytesIO(payload), allow_pickle=False) as stored:
        engine = load_engine({name: stored[name] for name in stored.files})
    check_exactness(estimator, engine, {"rows": rows[:1_000]})
