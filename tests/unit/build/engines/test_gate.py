"""The exactness gate (build/engines/__init__.py) seen failing: an engine that differs from the
estimator by one label, one probability, one shape or one dtype is refused with a message that
names the dataset, what differs and where; an exact one passes, with every row counted. The
estimators are scikit-learn's; the engines are small fakes that answer as scikit-learn would, but
for the difference each test plants."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge

import build.engines
from build.engines import ExactnessError, check_exactness, compile_estimator
from build.engines.base import Compiler
from serving.engines import load_engine

IRIS = load_iris()
CLASSIFIER = RandomForestClassifier(n_estimators=3, random_state=0).fit(IRIS.data, IRIS.target)
REGRESSOR = RandomForestRegressor(n_estimators=3, random_state=0).fit(IRIS.data, IRIS.data[:, 0])


class Planted:
    """Answers as `estimator` does, then applies the planted changes."""

    def __init__(
        self,
        estimator: Any,
        labels: dict[int, Any] | None = None,
        proba: dict[tuple[int, int], float] | None = None,
        reshape: bool = False,
    ) -> None:
        self.estimator = estimator
        self.labels = labels or {}
        self.proba = proba or {}
        self.reshape = reshape
        self.classes: NDArray[Any] | None = getattr(estimator, "classes_", None)
        self.n_features = 4
        self.proba_calls = 0

    def predict(self, rows: NDArray[Any]) -> NDArray[Any]:
        answers = np.array(self.estimator.predict(rows))
        for row, label in self.labels.items():
            answers[row] = label
        return answers[:, None] if self.reshape else answers

    def predict_proba(self, rows: NDArray[Any]) -> NDArray[np.float64]:
        self.proba_calls += 1
        proba = np.array(self.estimator.predict_proba(rows))
        for (row, column), change in self.proba.items():
            if row < len(rows):
                proba[row, column] += change
        return proba[:, :-1] if self.reshape else proba


def other_label(row: int) -> int:
    return (int(CLASSIFIER.predict(IRIS.data[row : row + 1])[0]) + 1) % 3


@given(rows=st.sets(st.integers(0, len(IRIS.data) - 1), min_size=1, max_size=12))
def test_a_label_that_differs_is_counted_and_the_first_five_rows_named(rows: set[int]) -> None:
    engine = Planted(CLASSIFIER, labels={row: other_label(row) for row in rows})

    with pytest.raises(ExactnessError) as refused:
        check_exactness(CLASSIFIER, engine, {"iris": IRIS.data})

    first = np.array(sorted(rows)[:5])
    assert str(refused.value) == (
        f"the compiled model is not exact: iris: predict differs on {len(rows)} of 150 rows, first {first}"
    )


@pytest.mark.parametrize("change", [1e-16, -0.25, 0.5])
def test_a_probability_that_differs_by_anything_is_refused_with_the_largest_difference(change: float) -> None:
    engine = Planted(CLASSIFIER, proba={(7, 1): change, (9, 2): change / 2})

    with pytest.raises(ExactnessError) as refused:
        check_exactness(CLASSIFIER, engine, {"a": IRIS.data[:5], "b": IRIS.data})

    largest = float(np.max(np.abs(CLASSIFIER.predict_proba(IRIS.data) - engine.predict_proba(IRIS.data))))
    assert str(refused.value) == (
        f"the compiled model is not exact: b: predict_proba differs (largest difference {largest:.3g})"
    )


def test_answers_of_another_shape_fail_every_row_and_every_comparison() -> None:
    engine = Planted(CLASSIFIER, reshape=True)

    with pytest.raises(ExactnessError) as refused:
        check_exactness(CLASSIFIER, engine, {"rows": IRIS.data[:6]})

    assert str(refused.value) == (
        "the compiled model is not exact: rows: predict differs on 6 of 6 rows, first [0 1 2 3 4];"
        " rows: predict_proba differs (largest difference nan)"
    )


def test_answers_of_another_dtype_are_refused_even_with_equal_values() -> None:
    class AsFloats(Planted):
        def predict(self, rows: NDArray[Any]) -> NDArray[Any]:
            return super().predict(rows).astype(np.float64)

    with pytest.raises(ExactnessError, match=r"rows: predict differs on 10 of 10 rows, first \[0 1 2 3 4\]"):
        check_exactness(CLASSIFIER, AsFloats(CLASSIFIER), {"rows": IRIS.data[:10]})


def test_an_exact_engine_passes_with_every_row_of_every_dataset_counted() -> None:
    classifier = Planted(CLASSIFIER)
    regressor = Planted(REGRESSOR)
    datasets = {"a": IRIS.data[:7], "b": IRIS.data[50:], "extreme": np.array([[1e30, -1e30, 0.0, 1.0]])}

    assert check_exactness(CLASSIFIER, classifier, datasets) == 108
    assert check_exactness(REGRESSOR, regressor, datasets) == 108
    assert classifier.proba_calls == 3  # a classifier's probabilities are compared on every dataset
    assert regressor.proba_calls == 0


def test_a_compiler_that_does_not_name_its_engine_kind_is_a_programming_error(monkeypatch: pytest.MonkeyPatch) -> None:
    nameless = Compiler(
        name="nameless",
        supports=lambda estimator: estimator is REGRESSOR,
        compile=lambda estimator, prefix: {prefix + "coef": np.zeros(4)},
        guarantee=lambda _: "bitwise-anywhere",
        probe_rows=lambda estimator, rows: rows,
    )
    monkeypatch.setattr(build.engines, "COMPILERS", [nameless, *build.engines.COMPILERS])

    with pytest.raises(TypeError) as refused:
        compile_estimator(REGRESSOR, "model/")
    assert str(refused.value) == "the nameless compiler did not name its engine kind"
    assert str(compile_estimator(CLASSIFIER, "model/")["model/engine"]) == "forest"


@pytest.mark.parametrize("estimator", [LogisticRegression(max_iter=500), Ridge()], ids=["logistic", "ridge"])
def test_rows_that_overflow_scikit_learns_own_arithmetic_are_compared_not_refused(estimator: Any) -> None:
    """Near float64's maximum, scikit-learn's finiteness check and products overflow to ±inf and
    warn; the gate compares the answers all the same (warnings are errors in this suite)."""
    estimator.fit(IRIS.data, IRIS.target if isinstance(estimator, LogisticRegression) else IRIS.data[:, 0])
    rows = np.vstack([IRIS.data[:3], np.full((2, 4), 1.7e308), np.full((1, 4), -1.7e308)])

    assert check_exactness(estimator, load_engine(compile_estimator(estimator)), {"huge": rows}) == 6
