"""The exactness gate (build/engines/__init__.py) seen failing: an engine that differs from the
estimator by one label, one probability, one shape or one dtype is refused with a message that
names the dataset, what differs and where; an exact one passes, with every row counted. The
estimators are scikit-learn's; the engines are small fakes that answer as scikit-learn would, but
for the difference each test plants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import build.engines
from build import DEFAULT_SPEC, engines
from build.bake import bake_model
from build.engines import ExactnessError, check_exactness, compile_estimator, compiler_for, identical
from build.engines.base import Compiler
from build.engines.linear import linear_probes
from build.spec import load_spec
from build.train import check_rows
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
    assert str(compile_estimator(CLASSIFIER, "model/")["model/engine"]) == "trees"


@pytest.mark.parametrize("estimator", [LogisticRegression(max_iter=500), Ridge()], ids=["logistic", "ridge"])
def test_rows_that_overflow_scikit_learns_own_arithmetic_are_compared_not_refused(estimator: Any) -> None:
    """Near float64's maximum, scikit-learn's finiteness check and products overflow to ±inf and
    warn; the gate compares the answers all the same (warnings are errors in this suite)."""
    estimator.fit(IRIS.data, IRIS.target if isinstance(estimator, LogisticRegression) else IRIS.data[:, 0])
    rows = np.vstack([IRIS.data[:3], np.full((2, 4), 1.7e308), np.full((1, 4), -1.7e308)])

    assert check_exactness(estimator, load_engine(compile_estimator(estimator)), {"huge": rows}) == 6


def up_to_the_next_float32(thresholds: np.ndarray[Any, Any], avoided: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Each threshold moved up to the smallest float32 above it, unless that value is `avoided` or
    would reach the next threshold: the same split for every float32 input but that one, which now
    goes left (features are compared as float32, so no input lies between the two)."""
    as_float32 = thresholds.astype(np.float32)
    above = np.where(
        as_float32.astype(np.float64) > thresholds, as_float32, np.nextafter(as_float32, np.float32(np.inf))
    ).astype(np.float64)
    below_next = np.append(above[:-1] < thresholds[1:], True)
    return np.where(below_next & ~np.isin(above, avoided), above, thresholds)


def test_a_split_off_by_one_float32_is_caught_by_the_gates_probes(
    tmp_path: Path, training_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec(DEFAULT_SPEC)
    rows = check_rows(spec)
    # Every value a training or held-out row has, per feature, as the engine compares it.
    seen = np.concatenate([rows.train, rows.held_out]).astype(np.float32).astype(np.float64)
    real = engines.compile_estimator
    moved: list[int] = []

    def misplaced_thresholds(estimator: Any, prefix: str = "") -> dict[str, Any]:
        arrays: dict[str, Any] = real(estimator, prefix)
        threshold = arrays[prefix + "threshold"]
        for feature in range(seen.shape[1]):
            at = arrays[prefix + "feature"] == feature
            original = threshold[at].astype(np.float64)
            # The tree format keeps a threshold per node: move each distinct one, as sorted.
            distinct = np.unique(original)
            shifted = up_to_the_next_float32(distinct, seen[:, feature])[np.searchsorted(distinct, original)]
            threshold[at] = shifted.astype(threshold.dtype)
            moved.append(int((shifted != original).sum()))
        return arrays

    monkeypatch.setattr("build.bake.compile_estimator", misplaced_thresholds)

    # The training and held-out rows cannot see such a split: only the probes can.
    with pytest.raises(ExactnessError, match=r"not exact: probes: predict(_proba)? differs"):
        bake_model(tmp_path / "package", "auto", training_dir, spec)
    assert sum(moved) > 0


# The exactness gate's probes for linear models: an exact engine passes the gate whatever the probes, so only a test
# of the probes themselves notices them shrinking. What they must hold is their docstring's promise: the reference
# rows, random rows around them, every feature at each extreme, and rows whose decisions sweep -800..800 (both sides
# of zero and of |d| = 700). And, for every compiler, probes that are the same at every build (seeded) and float rows
# for numeric models.


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


def test_answers_are_the_same_bit_for_bit_and_labels_by_type_and_value() -> None:
    # NaN is the same NaN, -0.0 is not 0.0; string labels are other objects of the same value.
    assert identical(np.array([np.nan, 1.5]), np.array([np.nan, 1.5]))
    assert not identical(np.array([0.0]), np.array([-0.0]))
    labels = np.array(["setosa", "virginica"], dtype=object)
    assert identical(labels, np.array(["".join(label) for label in labels], dtype=object))
    assert not identical(np.array([1], dtype=object), np.array([1.0], dtype=object))
    assert not identical(np.array([1.0]), np.array([[1.0]]))
