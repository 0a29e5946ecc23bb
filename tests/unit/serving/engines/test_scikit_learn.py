"""The fast tree-ensemble path gives the estimator's own answers, bit for bit."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.ensemble import ExtraTreesClassifier, GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

from serving.engines.errors import EngineInputError
from serving.engines.scikit_learn import ScikitLearnEngine, TreeEnsembleClassifier, unpickle_estimator

IRIS = load_iris()
ESTIMATORS = {
    "random-forest": RandomForestClassifier(n_estimators=100, random_state=42, n_jobs=1),
    "random-forest-shallow": RandomForestClassifier(n_estimators=17, max_depth=3, random_state=3, n_jobs=1),
    "extra-trees": ExtraTreesClassifier(n_estimators=30, random_state=5, n_jobs=1),
    "decision-tree": DecisionTreeClassifier(random_state=0),
    "extra-tree": ExtraTreeClassifier(random_state=0),
}


def probes(estimator: Any) -> NDArray[np.float64]:
    """Iris itself, random rows, extremes, and every split threshold exactly and one step either side."""
    rng = np.random.default_rng(0)
    trees = estimator.estimators_ if hasattr(estimator, "estimators_") else [estimator]
    thresholds = np.unique(np.concatenate([tree.tree_.threshold[tree.tree_.feature >= 0] for tree in trees]))
    at_split = np.concatenate(
        [
            thresholds,
            np.nextafter(thresholds.astype(np.float32), np.float32(np.inf)).astype(np.float64),
            np.nextafter(thresholds.astype(np.float32), np.float32(-np.inf)).astype(np.float64),
            np.nextafter(thresholds, np.inf),
            np.nextafter(thresholds, -np.inf),
        ]
    )
    threshold_rows = np.tile(IRIS.data.mean(axis=0), (at_split.size * 4, 1))
    for feature in range(4):
        threshold_rows[feature * at_split.size : (feature + 1) * at_split.size, feature] = at_split
    extremes = np.array([[3.4e38, -3.4e38, 0.0, -0.0], [-1.0, -2.5, -1e-30, 1e30], [0.0] * 4, [1e-45] * 4])
    return np.vstack(
        [IRIS.data, rng.normal(4, 3, size=(2000, 4)), rng.uniform(-10, 10, size=(500, 4)), threshold_rows, extremes]
    )


@pytest.fixture(scope="module", params=sorted(ESTIMATORS))
def fitted(request: pytest.FixtureRequest) -> Any:
    return ESTIMATORS[request.param].fit(IRIS.data, IRIS.target)


def test_probabilities_are_bitwise_identical(fitted: Any) -> None:
    rows = probes(fitted)

    fast = TreeEnsembleClassifier(fitted).predict_proba(rows)

    expected = fitted.predict_proba(rows)
    assert fast.dtype == expected.dtype
    assert fast.shape == expected.shape
    assert fast.tobytes() == expected.tobytes()


def test_classes_are_identical(fitted: Any) -> None:
    rows = probes(fitted)

    assert np.array_equal(TreeEnsembleClassifier(fitted).predict(rows), fitted.predict(rows))
    labels, proba = TreeEnsembleClassifier(fitted).predict_with_proba(rows)
    assert np.array_equal(labels, fitted.predict(rows))
    assert proba.tobytes() == fitted.predict_proba(rows).tobytes()


def test_single_rows_match_too(fitted: Any) -> None:
    fast = TreeEnsembleClassifier(fitted)

    for row in IRIS.data[::7]:
        assert fast.predict_proba(row[None, :]).tobytes() == fitted.predict_proba(row[None, :]).tobytes()


def test_string_class_labels_are_returned_as_labels() -> None:
    labels = np.array(IRIS.target_names)[IRIS.target]
    forest = RandomForestClassifier(n_estimators=5, random_state=1).fit(IRIS.data, labels)

    assert TreeEnsembleClassifier(forest).predict(IRIS.data).tolist() == forest.predict(IRIS.data).tolist()


def test_only_single_output_tree_classifiers_are_supported() -> None:
    multi_output = RandomForestClassifier(n_estimators=3, random_state=0).fit(
        IRIS.data, np.c_[IRIS.target, IRIS.target % 2]
    )

    # Fitted here: the fixture fits ESTIMATORS in place, but in another worker or later.
    assert TreeEnsembleClassifier.supports(clone(ESTIMATORS["random-forest"]).fit(IRIS.data, IRIS.target))
    assert not TreeEnsembleClassifier.supports(multi_output)
    assert not TreeEnsembleClassifier.supports(LogisticRegression())


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_rows_scikit_learn_refuses_are_a_client_error_with_its_message(method: str) -> None:
    """scikit-learn says what is wrong with rows it cannot take (a ValueError); the engine passes
    its words on as an EngineInputError, which the API answers with a 4xx."""
    estimator = KNeighborsClassifier(n_neighbors=3).fit(IRIS.data, IRIS.target)
    engine = ScikitLearnEngine(estimator)
    rows = IRIS.data[:2].copy()
    rows[0, 1] = np.nan
    with pytest.raises(ValueError, match=r"^Input X contains NaN") as expected:
        getattr(estimator, method)(rows)

    with pytest.raises(EngineInputError) as refused:
        getattr(engine, method)(rows)

    assert str(refused.value) == str(expected.value)


def test_a_library_refusal_reaches_the_client_without_its_native_location_or_stack_trace() -> None:
    """XGBoost (served through itself, here a linear booster) refuses infinity with an XGBoostError
    naming its C++ source file and a stack trace of the server's paths; the client gets the reason."""
    xgboost = pytest.importorskip("xgboost")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gblinear is deprecated, and still served
        estimator = xgboost.XGBClassifier(booster="gblinear", n_estimators=2).fit(IRIS.data, IRIS.target)
        engine = ScikitLearnEngine(estimator)
        rows = IRIS.data[:1].copy()
        rows[0, 0] = np.inf
        with pytest.raises(ValueError, match="Stack trace") as raised:
            estimator.predict_proba(rows)
        with pytest.raises(EngineInputError) as refused:
            engine.predict_proba(rows)

    message = str(refused.value)
    assert message in str(raised.value)
    assert message.startswith("Check failed")
    assert "inf" in message
    assert "\n" not in message
    assert "/" not in message


def _refuse_to_be_called(*args: object) -> None:
    raise AssertionError("the estimator's own method was called")


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_a_tree_classifier_is_served_through_its_trees_with_one_evaluation(name: str) -> None:
    """The engine answers a forest's or tree's rows without its own predict methods, which validate
    and dispatch through joblib (milliseconds a row), and says its labels are its probabilities'
    first maximum, so a request for both costs one evaluation."""
    estimator = clone(ESTIMATORS[name]).fit(IRIS.data, IRIS.target)  # a copy: its methods are replaced below
    expected_labels, expected_proba = estimator.predict(IRIS.data), estimator.predict_proba(IRIS.data)
    estimator.predict = estimator.predict_proba = _refuse_to_be_called
    engine = ScikitLearnEngine(estimator)

    assert engine.labels_are_argmax is True
    assert engine.predict(IRIS.data).tolist() == expected_labels.tolist()
    assert engine.predict_proba(IRIS.data).tobytes() == expected_proba.tobytes()


@pytest.mark.parametrize(
    "estimator",
    [
        KNeighborsClassifier(n_neighbors=3),
        LogisticRegression(max_iter=500),
        GradientBoostingClassifier(n_estimators=3, random_state=0),
    ],
    ids=["k-neighbors", "logistic-regression", "gradient-boosting"],
)
def test_other_estimators_answer_through_their_own_methods(estimator: Any) -> None:
    estimator.fit(IRIS.data, IRIS.target)
    engine = ScikitLearnEngine(estimator)

    assert engine.labels_are_argmax is False
    assert np.array_equal(engine.predict(IRIS.data), estimator.predict(IRIS.data))
    assert engine.predict_proba(IRIS.data).tobytes() == estimator.predict_proba(IRIS.data).tobytes()


class WarnsWhenUnpickled:
    """A model whose unpickling warns about something other than its scikit-learn version."""

    def __init__(self) -> None:
        self.fitted = True  # pickle restores (and calls __setstate__ for) a non-empty state only

    def __setstate__(self, state: dict[str, object]) -> None:
        warnings.warn("a warning unpickling raises, not about versions", UserWarning, stacklevel=1)
        self.__dict__.update(state)


def test_only_a_version_warning_refuses_a_pickle() -> None:
    buffer = io.BytesIO()
    joblib.dump(WarnsWhenUnpickled(), buffer)

    with pytest.warns(UserWarning, match="not about versions"):
        loaded = unpickle_estimator(buffer.getvalue(), Path("model.joblib"))

    assert isinstance(loaded, WarnsWhenUnpickled)
    assert loaded.fitted
