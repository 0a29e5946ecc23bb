"""GradientBoosting's compilation at the places an exact engine and random rows never reach: the
gate's probes themselves (an exact engine passes any probes, so only a test of the probes notices
them shrinking), rows whose float32 rounding crosses a threshold, a raw score of exactly zero, and
the init estimators it accepts and refuses. Expected values come from scikit-learn's fitted trees,
its own predictions, and literals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

from build.engines import UnsupportedEstimatorError, compile_estimator, compiler_for
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
