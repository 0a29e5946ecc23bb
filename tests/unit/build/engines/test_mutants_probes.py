"""The exactness gate's probes for linear models: an exact engine passes the gate whatever the
probes, so only a test of the probes themselves notices them shrinking. What they must hold is
their docstring's promise: the reference rows, random rows around them, every feature at each
extreme, and rows whose decisions sweep -800..800 (both sides of zero and of |d| = 700). And, for
every compiler, probes that are the same at every build (seeded) and float rows for numeric models."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from build.engines import compiler_for
from build.engines.linear import linear_probes

EXTREMES = (0.0, -0.0, 1e10, -1e10, 1e300, -1e300)
# Every 20 from -800 to 800 (zero among them), and the exp path's switch at ±700.
DECISIONS = [*range(-800, 801, 20), -700, 700]
N_RANDOM = 500


@pytest.mark.parametrize("n_classes", [2, 3])
def test_linear_probes_hold_the_reference_extremes_and_a_decision_sweep(n_classes: int) -> None:
    rows, labels = make_classification(
        n_samples=60, n_features=4, n_informative=3, n_redundant=0, n_classes=n_classes, random_state=0
    )
    estimator = LogisticRegression(max_iter=1000).fit(rows, labels)
    center = rows.mean(axis=0)

    probes = linear_probes(estimator, rows)

    coef = np.atleast_2d(estimator.coef_)
    assert probes.shape == (60 + N_RANDOM + len(EXTREMES) * 4 + len(coef) * len(DECISIONS), 4)
    assert probes[:60].tolist() == rows.tolist()
    spread = probes[60 : 60 + N_RANDOM].std(axis=0) / (rows.std(axis=0) + 1.0)
    assert np.all((spread > 2.5) & (spread < 3.5))
    for feature in range(4):
        others = np.delete(probes, feature, axis=1) == np.delete(center, feature)
        at_center = others.all(axis=1)
        for extreme in EXTREMES:
            hits = at_center & (probes[:, feature] == extreme) & (np.signbit(probes[:, feature]) == np.signbit(extreme))
            assert hits.any(), (feature, extreme)
    with np.errstate(over="ignore", invalid="ignore"):
        decisions = probes @ coef.T
    # Each sweep runs along one coefficient vector through the point where its decision is 0.
    for weights, column in zip(coef, decisions.T, strict=True):
        for target in DECISIONS:
            assert np.isclose(column, target, rtol=1e-9, atol=1e-6).any(), (weights, target)


def fitted_models() -> list[tuple[Any, np.ndarray]]:
    """One model of each compiler, with the rows it was fitted on."""
    rows, labels = make_classification(n_samples=60, n_features=4, n_informative=3, n_redundant=0, random_state=1)
    return [
        (RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(rows, labels), rows),
        (LogisticRegression().fit(rows, labels), rows),
        (make_pipeline(StandardScaler(), Ridge()).fit(rows, rows[:, 0]), rows),
        (GradientBoostingRegressor(n_estimators=3, random_state=0).fit(rows, rows[:, 1]), rows),
        (HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(rows, labels), rows),
    ]


MODELS = fitted_models()


@pytest.mark.parametrize(("estimator", "rows"), MODELS, ids=lambda value: type(value).__name__)
def test_every_compilers_probes_are_the_same_at_every_build(estimator: Any, rows: np.ndarray) -> None:
    """The gate's verdict must not change from one build to the next: its probes are seeded."""
    compiler = compiler_for(estimator)

    first = compiler.probe_rows(estimator, rows)
    assert first.tobytes() == compiler.probe_rows(estimator, rows.copy()).tobytes()
    assert len(first) > len(rows)


# The linear and boosting compilers take reference rows; a pipeline's keep their own dtype.
@pytest.mark.parametrize(("estimator", "rows"), [MODELS[1], *MODELS[3:]], ids=lambda value: type(value).__name__)
def test_probes_are_float_rows_whatever_the_reference_rows_dtype(estimator: Any, rows: np.ndarray) -> None:
    """Reference rows may come as an object array (as the API passes them): the probes of a
    model of numbers are float64 all the same, with the same values."""
    compiler = compiler_for(estimator)

    probes = compiler.probe_rows(estimator, rows.astype(object))

    assert probes.dtype == np.float64
    assert probes.tobytes() == compiler.probe_rows(estimator, rows).tobytes()


def test_a_small_coefficient_vector_is_swept_and_a_zero_one_is_not() -> None:
    rows, labels = make_classification(n_samples=60, n_features=4, n_informative=3, n_redundant=0, random_state=0)
    weak = LogisticRegression(C=1e-4).fit(rows, labels)
    zero = Lasso(alpha=1e6).fit(rows, rows[:, 0])
    assert float(weak.coef_[0] @ weak.coef_[0]) < 1.0
    assert not zero.coef_.any()

    decisions = linear_probes(weak, rows) @ weak.coef_[0]
    for target in DECISIONS:
        assert np.isclose(decisions, target, rtol=1e-9, atol=1e-6).any(), target
    # No sweep along a zero vector (there is no decision to sweep): the rest of the probes only.
    assert linear_probes(zero, rows).shape == (60 + N_RANDOM + len(EXTREMES) * 4, 4)
