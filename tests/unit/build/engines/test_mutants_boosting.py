"""Boosting's compilation at the places an exact engine and random rows never reach: the gate's
probes themselves (an exact engine passes any probes, so only a test of the probes notices them
shrinking; GradientBoosting's and HistGradientBoosting's), rows whose float32 rounding crosses a
threshold, a raw score of exactly zero, and the init estimators it accepts and refuses. Expected
values come from scikit-learn's fitted trees, its own predictions, and literals."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from build.engines import UnsupportedEstimatorError, compile_estimator, compiler_for
from build.engines import base as compiler_base
from serving.engines import load_engine

# GradientBoosting casts rows to float32 and refuses NaN, infinity and values beyond float32.
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_EXTREMES = (FLOAT32_MAX, -FLOAT32_MAX, 0.0, -0.0, 1e-45, -1e-45, 1e30, -1e30)


def fitted(kind: type[Any], **params: Any) -> tuple[Any, np.ndarray]:
    rows, labels = make_classification(n_samples=80, n_features=4, n_informative=3, n_redundant=0, random_state=3)
    # Values that are not float32: the estimator rounds them, the engine must too.
    rows = rows * np.pi
    target = labels if kind is GradientBoostingClassifier else rows[:, 0] + labels
    return kind(n_estimators=5, max_depth=2, random_state=0, **params).fit(rows, target), rows


def thresholds(estimator: Any, feature: int) -> np.ndarray:
    """The split thresholds on `feature`, read from scikit-learn's fitted trees."""
    trees = [regressor.tree_ for regressor in estimator.estimators_.ravel()]
    return np.unique(np.concatenate([tree.threshold[tree.feature == feature] for tree in trees]))


def contains(column: np.ndarray, value: float) -> bool:
    """`value` is in `column`, zero's sign included."""
    return bool(((column == value) & (np.signbit(column) == np.signbit(value))).any())


@pytest.mark.parametrize("kind", [GradientBoostingClassifier, GradientBoostingRegressor])
def test_the_probes_hold_every_threshold_its_float_neighbours_and_the_float32_extremes(kind: type[Any]) -> None:
    estimator, rows = fitted(kind)

    probes = compiler_for(estimator).probe_rows(estimator, rows)

    assert np.isfinite(probes).all()  # the estimator refuses NaN and infinity: no probe may hold them
    for feature in range(rows.shape[1]):
        column = probes[:, feature]
        for threshold in thresholds(estimator, feature):
            single = np.float32(threshold)
            expected = [
                threshold,
                np.nextafter(threshold, np.inf),
                np.nextafter(threshold, -np.inf),
                float(single),
                float(np.nextafter(single, np.float32(np.inf))),
                float(np.nextafter(single, np.float32(-np.inf))),
            ]
            for value in expected:
                assert contains(column, value), (feature, threshold, value)
        for extreme in FLOAT32_EXTREMES:
            assert contains(column, extreme), (feature, extreme)


@pytest.mark.parametrize("kind", [GradientBoostingClassifier, GradientBoostingRegressor])
def test_rows_rounded_across_a_threshold_by_float32_are_answered_as_scikit_learn_does(kind: type[Any]) -> None:
    estimator, rows = fitted(kind)
    engine = load_engine(compile_estimator(estimator))
    bases = rows[:10]
    probes = []
    crossing = 0
    for feature in range(rows.shape[1]):
        for threshold in thresholds(estimator, feature):
            # Just above the threshold in float64; float32 rounds some of these down onto its left side.
            for value in (np.nextafter(threshold, np.inf), threshold + abs(threshold) * 1e-8):
                crossing += bool(np.float32(value) <= threshold < value)
                block = bases.copy()
                block[:, feature] = value
                probes.append(block)
    assert crossing > 0, "no row whose float32 rounding crosses a threshold: the test would prove nothing"
    probe_rows = np.vstack(probes)

    assert engine.predict(probe_rows).tolist() == estimator.predict(probe_rows).tolist()
    if kind is GradientBoostingClassifier:
        assert engine.predict_proba(probe_rows).tobytes() == estimator.predict_proba(probe_rows).tobytes()


def test_a_raw_score_of_exactly_zero_is_the_positive_class_as_in_scikit_learn() -> None:
    # init="zero" starts every row at 0, and a leaf holding one row of each class adds exactly 0.
    rows = np.array([[0.0], [0.0], [1.0], [1.0], [1.0]])
    estimator = GradientBoostingClassifier(n_estimators=1, max_depth=1, init="zero", learning_rate=1.0)
    estimator.fit(rows, np.array([0, 1, 1, 1, 0]))
    assert estimator.decision_function(rows[:1]).tolist() == [0.0]

    engine = load_engine(compile_estimator(estimator))

    assert engine.predict(rows).tolist() == estimator.predict(rows).tolist()
    assert engine.predict(rows[:1]).tolist() == [1]


def test_init_zero_is_compiled_and_another_init_estimator_refused_by_name() -> None:
    estimator, rows = fitted(GradientBoostingRegressor, init="zero")
    assert load_engine(compile_estimator(estimator)).predict(rows).tobytes() == estimator.predict(rows).tobytes()

    refused, _ = fitted(GradientBoostingRegressor, init=DummyRegressor())
    with pytest.raises(UnsupportedEstimatorError) as error:
        compile_estimator(refused)
    assert str(error.value) == (
        "GradientBoostingRegressor with init=DummyRegressor: only init=None (scikit-learn's default)"
        " or init='zero' can be compiled"
    )


# HistGradientBoosting takes NaN and any float: its extremes, and the values probed beside every
# known category of a categorical column (not categories: negative, fractional, too large, NaN).
HGB_EXTREMES = (np.nan, np.inf, -np.inf, 1e300, -1e300, 0.0, -0.0, 5e-324, -5e-324)
N_BASES = 3
N_RANDOM = 300


def hist_fitted() -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    """Column 0 categorical (codes 0..5), columns 1 and 2 numeric, column 2 sometimes missing."""
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(200, 3)) * np.pi
    rows[:, 0] = rng.integers(0, 6, 200)
    rows[rng.random(200) < 0.1, 2] = np.nan
    labels = (np.isin(rows[:, 0], [1, 4]) ^ (rows[:, 1] > 0)).astype(int)
    estimator = HistGradientBoostingClassifier(max_iter=5, max_depth=3, categorical_features=[0], random_state=0)
    with threadpool_limits(1):  # OpenMP threads crawl on a busy shared machine
        return estimator.fit(rows, labels), rows


def hist_thresholds(estimator: Any, feature: int) -> np.ndarray:
    """The numeric split thresholds on `feature`, read from scikit-learn's fitted predictors (its
    preprocessor puts the categorical column first, so the numeric columns keep their places)."""
    nodes = np.concatenate([predictor.nodes for iteration in estimator._predictors for predictor in iteration])
    splits = (nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0) & (nodes["feature_idx"] == feature)
    return np.unique(nodes["num_threshold"][splits])


def holds(column: np.ndarray, value: float) -> bool:
    return bool(np.isnan(column).any()) if np.isnan(value) else contains(column, value)


def test_hist_gradient_boostings_probes_hold_thresholds_categories_and_missing_values() -> None:
    estimator, rows = hist_fitted()
    categories = np.unique(rows[:, 0])
    top = categories.max()

    probes = compiler_for(estimator).probe_rows(estimator, rows)

    categorical = np.concatenate(
        [
            categories,
            np.nextafter(categories, np.inf),
            np.nextafter(categories, -np.inf),
            [np.nan, -1.0, -0.0, 0.5, top + 1, top + 256, 1e300, -1e300],
        ]
    )
    numeric = {feature: hist_thresholds(estimator, feature) for feature in (1, 2)}
    assert all(values.size for values in numeric.values()), "a column no tree splits on: nothing to probe"
    around = {feature: 3 * values.size + len(HGB_EXTREMES) for feature, values in numeric.items()}
    assert probes.shape == (N_BASES * (categorical.size + sum(around.values())) + N_RANDOM, 3)
    for value in categorical:
        assert holds(probes[:, 0], value), value
    for feature, values in numeric.items():
        for value in [*values, *np.nextafter(values, np.inf), *np.nextafter(values, -np.inf), *HGB_EXTREMES]:
            assert holds(probes[:, feature], value), (feature, value)
    # Random reference rows, some numeric features made extreme and some categories missing.
    random_rows = probes[-N_RANDOM:]
    changed = ~np.isin(random_rows, rows) & ~(np.isnan(random_rows) & np.isnan(rows).any(axis=0))
    assert 0.2 < changed.mean() < 0.4
    extreme = random_rows[:, 1:][changed[:, 1:]]
    assert (np.isin(extreme, HGB_EXTREMES) | np.isnan(extreme)).all()
    assert np.isnan(random_rows[:, 0]).mean() > 0.2


@pytest.mark.parametrize("seed", range(10))
def test_the_probes_vary_as_many_distinct_reference_rows_as_they_can(seed: int) -> None:
    """Each feature is varied on N_BASES reference rows drawn without replacement: given three
    rows, every one of them is a base (a draw with replacement repeats one for most seeds)."""
    estimator, rows = fitted(GradientBoostingClassifier)
    reference = rows[:N_BASES]

    probes = compiler_for(estimator).probe_rows(estimator, reference, rng_seed=seed)

    varied = probes[:-N_RANDOM]
    # A probe is a base row with at most one feature changed; the rows share no feature value.
    same_features = (varied[:, None, :] == reference[None, :, :]).sum(axis=2)
    bases_used = {int(base) for base in np.flatnonzero((same_features >= rows.shape[1] - 1).any(axis=0))}
    assert bases_used == set(range(N_BASES))


def test_a_categorical_feature_never_seen_in_training_compiles_and_passes_the_gate() -> None:
    """A categorical column that is all missing in training has no known category: the probes
    still take codes that are not categories (above 0), and the engine answers as scikit-learn."""
    rng = np.random.default_rng(11)
    rows = rng.normal(size=(150, 2))
    rows[:, 1] = np.nan
    labels = (rows[:, 0] > 0).astype(int)
    estimator = HistGradientBoostingClassifier(max_iter=3, categorical_features=[1], random_state=0)
    with threadpool_limits(1):
        estimator.fit(rows, labels)

    probes = compiler_for(estimator).probe_rows(estimator, rows)

    assert {1.0, 256.0} <= set(probes[:, 1].tolist())
    with threadpool_limits(1):
        engine = load_engine(compile_estimator(estimator))
        assert engine.predict_proba(probes).tobytes() == estimator.predict_proba(probes).tobytes()


def test_string_categories_are_refused_naming_the_estimator_and_the_column() -> None:
    """HistGradientBoosting takes a DataFrame's string categories itself; the compiled engine reads
    numbers only, so compiling refuses them (and the build serves the model with scikit-learn)."""
    rng = np.random.default_rng(0)
    rows = pandas.DataFrame(
        {"size": rng.normal(size=100), "color": pandas.Categorical(rng.choice(["red", "green", "blue"], 100))}
    )
    estimator = HistGradientBoostingClassifier(max_iter=3, categorical_features="from_dtype")
    with threadpool_limits(1):
        estimator.fit(rows, (rows["size"] > 0).astype(int))

    refused = (
        "HistGradientBoostingClassifier with categorical_features: the categories of column 1 are object values;"
        " only numeric categories can be compiled"
    )
    with pytest.raises(UnsupportedEstimatorError, match=f"^{refused}$"):
        compile_estimator(estimator)


def test_the_leaf_masks_size_limit_counts_every_mask_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per split feature, a numeric feature's masks have one row per threshold and two more (above
    them all, and missing), of two 64-bit words per tree for up to 128 leaves: the model compiles
    at exactly that many bytes and is refused one byte below, naming the estimator."""
    rows, target = make_regression(n_samples=800, n_features=3, random_state=5)
    estimator = GradientBoostingRegressor(n_estimators=2, max_depth=None, max_leaf_nodes=100, random_state=0)
    estimator.fit(rows, target)
    trees = [regressor.tree_ for regressor in estimator.estimators_.ravel()]
    assert all(65 <= tree.n_leaves <= 128 for tree in trees)  # two 64-bit words
    split = [f for f in range(3) if any((tree.feature == f).any() for tree in trees)]
    expected = sum(thresholds(estimator, f).size + 2 for f in split) * len(trees) * 2 * 8

    monkeypatch.setattr(compiler_base, "MAX_MASK_BYTES", expected)
    compile_estimator(estimator)
    monkeypatch.setattr(compiler_base, "MAX_MASK_BYTES", expected - 1)
    refused = f"GradientBoostingRegressor: leaf masks would take {expected:,} bytes, more than the {expected - 1:,}"
    with pytest.raises(UnsupportedEstimatorError, match=f"^{re.escape(refused)} a compiled model may hold$"):
        compile_estimator(estimator)


def test_a_boosted_model_that_never_splits_compiles_and_answers_its_one_value() -> None:
    rows = np.random.default_rng(4).normal(size=(50, 2))
    estimator = GradientBoostingRegressor(n_estimators=3, random_state=0).fit(rows, np.full(50, 2.5))

    engine = load_engine(compile_estimator(estimator))

    assert all(tree.tree_.node_count == 1 for tree in estimator.estimators_.ravel())
    assert engine.predict(rows).tobytes() == estimator.predict(rows).tobytes()
