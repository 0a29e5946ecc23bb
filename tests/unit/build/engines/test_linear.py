"""Linear models compiled to numpy answer bit for bit as scikit-learn does."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from scipy.special import expit as scipy_expit
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDRegressor,
)
from sklearn.svm import LinearSVC, LinearSVR

from build.engines import ExactnessError, UnsupportedEstimatorError, check_exactness, compile_estimator, compiler_for
from build.engines.base import serialize
from build.engines.linear import LINEAR
from serving.engines import load_engine
from serving.engines.errors import NonFiniteInputError
from serving.engines.linear import expit

LABELS = np.array(["ant", "bee", "cat", "dog", "eel"])


def round_trip(arrays: dict[str, Any]) -> dict[str, Any]:
    with np.load(io.BytesIO(serialize(arrays)), allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def assert_exact(estimator: Any, train: np.ndarray, held_out: np.ndarray, prefix: str = "") -> None:
    engine = load_engine(round_trip(compile_estimator(estimator, prefix)), prefix)
    probes = compiler_for(estimator).probe_rows(estimator, train)
    datasets = {"train": train, "held-out": held_out, "probes": probes}
    assert check_exactness(estimator, engine, datasets) == sum(len(rows) for rows in datasets.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("label_kind", ["int", "str"])
def test_logistic_regression_is_exact(seed: int, n_classes: int, label_kind: str) -> None:
    rows, target = make_classification(400, 8, n_informative=5, n_classes=n_classes, random_state=seed)
    labels = {"int": target, "str": LABELS[target]}[label_kind]
    estimator = LogisticRegression(C=10.0 ** (seed - 1), max_iter=1000).fit(rows[:300], labels[:300])

    assert_exact(estimator, rows[:300], rows[300:], prefix="final/")
    engine = load_engine(round_trip(compile_estimator(estimator)))
    assert engine.classes is not None
    assert engine.classes.dtype == estimator.classes_.dtype
    assert compiler_for(estimator).guarantee(estimator) == "bitwise-same-libraries"


def test_object_labels_come_back_as_python_strings() -> None:
    # The gate compares bytes, which for an object array are pointers: compared by value here.
    rows, target = make_classification(200, 5, n_informative=3, n_classes=3, random_state=0)
    estimator = LogisticRegression().fit(rows, LABELS[target].astype(object))
    engine = load_engine(round_trip(compile_estimator(estimator)))
    predicted = engine.predict(rows)

    assert predicted.dtype == object
    assert all(type(label) is str for label in predicted)
    assert predicted.tolist() == estimator.predict(rows).tolist()
    assert engine.predict_proba(rows).tobytes() == estimator.predict_proba(rows).tobytes()


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    "estimator",
    [
        LinearRegression(),
        LinearRegression(fit_intercept=False),
        Ridge(alpha=3.0),
        Lasso(alpha=0.5),
        ElasticNet(alpha=0.5, l1_ratio=0.3),
        SGDRegressor(random_state=0),
    ],
    ids=lambda estimator: repr(estimator),
)
def test_linear_regressors_are_exact(estimator: Any, seed: int) -> None:
    rows, target = make_regression(400, 6, noise=5.0, random_state=seed)
    estimator.fit(rows[:300], target[:300])

    assert_exact(estimator, rows[:300], rows[300:])
    engine = load_engine(round_trip(compile_estimator(estimator)))
    assert engine.classes is None
    with pytest.raises(TypeError, match="only defined for classifiers"):
        engine.predict_proba(rows)


def test_expit_is_scipys_bit_for_bit_including_near_overflow() -> None:
    rng = np.random.default_rng(7)
    decisions = np.concatenate(
        [rng.normal(0, 20, 20_000), rng.uniform(-760, 760, 20_000), [0.0, -0.0, 708.9, 709.5, -745.2, 1e300, -1e300]]
    )
    decisions = np.concatenate([decisions, [np.inf, -np.inf, np.nan]])

    assert expit(decisions).tobytes() == scipy_expit(decisions).tobytes()


def test_an_exp_other_than_libms_fails_the_gate() -> None:
    """expit computed with another exponential than libm's fails the gate. numpy's own exp is one
    on CPUs with AVX-512, where numpy has its own SIMD exp (elsewhere it calls libm): so the test
    takes `e ** -d`, which differs from libm's exp on every CPU, and checks that it does."""
    rows, target = make_classification(300, 8, random_state=0)
    estimator = LogisticRegression().fit(rows, target)
    engine = load_engine(compile_estimator(estimator))
    decisions = rows @ estimator.coef_.T + estimator.intercept_
    numpy_proba = 1 / (1 + np.power(np.e, -decisions[:, 0]))
    assert numpy_proba.tobytes() != estimator.predict_proba(rows)[:, 1].tobytes()

    class NumpyExp:
        n_features = engine.n_features
        classes = engine.classes
        predict = engine.predict

        @staticmethod
        def predict_proba(_: np.ndarray) -> np.ndarray:
            return np.stack([1 - numpy_proba, numpy_proba], axis=1)

    probes = {"train": rows}
    with pytest.raises(ExactnessError, match="train: predict_proba differs"):
        check_exactness(estimator, NumpyExp(), probes)


def test_tampered_coefficients_are_caught() -> None:
    rows, target = make_classification(300, 8, n_classes=3, n_informative=4, random_state=0)
    estimator = LogisticRegression().fit(rows, target)
    arrays = compile_estimator(estimator)
    arrays["coef"] = arrays["coef"] * (1 + 1e-15)

    with pytest.raises(ExactnessError, match="rows: predict_proba differs"):
        check_exactness(estimator, load_engine(arrays), {"rows": rows})


def test_non_finite_rows_are_refused_as_scikit_learn_refuses_them() -> None:
    rows, target = make_regression(50, 3, random_state=0)
    estimator = Ridge().fit(rows, target)
    engine = load_engine(compile_estimator(estimator))
    for bad in (np.nan, np.inf):
        broken = rows.copy()
        broken[3, 1] = bad
        with pytest.raises(ValueError, match="Input X contains"):
            estimator.predict(broken)
        with pytest.raises(NonFiniteInputError, match="input contains NaN or infinity"):
            engine.predict(broken)
    with pytest.raises(ValueError, match="expected rows of 3 features, got shape \\(50, 2\\)"):
        engine.predict(rows[:, :2])


def test_unsupported_linear_models_are_refused() -> None:
    rows, target = make_regression(50, 3, n_targets=2, random_state=0)
    with pytest.raises(UnsupportedEstimatorError, match=r"Ridge with coef_ of shape \(2, 3\) \(multi-output\)"):
        compile_estimator(Ridge().fit(rows, target))
    with pytest.raises(UnsupportedEstimatorError, match="coef_ is float32, only float64 compiles"):
        compile_estimator(Ridge().fit(rows.astype(np.float32), target[:, 0].astype(np.float32)))
    labels, classes = make_classification(50, 3, n_informative=2, n_redundant=0, random_state=0)
    with pytest.raises(UnsupportedEstimatorError, match="no compiled engine for LinearSVC"):
        compile_estimator(LinearSVC().fit(labels, classes))


@pytest.mark.parametrize("labels", [["no", "yes"], [3, 7]])
def test_a_decision_of_exactly_zero_is_the_first_class_as_in_scikit_learn(labels: list[Any]) -> None:
    """scikit-learn's binary linear classifiers predict classes_[1] only where the decision is
    above 0: with no intercept, the all-zero row's decision is exactly 0, and it is classes_[0]."""
    rows, target = make_classification(100, 3, n_informative=2, n_redundant=0, random_state=1)
    estimator = LogisticRegression(fit_intercept=False).fit(rows, np.array(labels)[target])
    zero = np.zeros((1, 3))

    engine = load_engine(compile_estimator(estimator))

    assert estimator.decision_function(zero).tolist() == [0.0]
    assert engine.predict(zero).tolist() == estimator.predict(zero).tolist() == [labels[0]]


# The linear compiler's refusals, each naming what it cannot compile: an estimator of another family handed to it
# directly (the Compiler contract: compile refuses what it cannot do, saying why), and an intercept that is not
# float64 beside float64 coefficients.


ROWS, TARGET = make_regression(n_samples=40, n_features=3, random_state=0)


def test_an_estimator_of_another_family_is_refused_by_name() -> None:
    svr = LinearSVR().fit(ROWS, TARGET)

    assert not LINEAR.supports(svr)
    with pytest.raises(UnsupportedEstimatorError) as refused:
        LINEAR.compile(svr, "")
    assert str(refused.value) == "LinearSVR is not a supported linear model"


def test_an_intercept_that_is_not_float64_is_refused_by_name() -> None:
    ridge = Ridge().fit(ROWS, TARGET)
    ridge.intercept_ = np.float32(ridge.intercept_)

    with pytest.raises(UnsupportedEstimatorError) as refused:
        LINEAR.compile(ridge, "")
    assert str(refused.value) == "intercept_ is float32, only float64 compiles"
