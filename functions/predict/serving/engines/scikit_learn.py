"""The scikit-learn engine: the pickled estimator itself, for models no compiled engine supports.

Unpickling refuses a model pickled by another scikit-learn version. Forest and tree
classifiers predict through their fitted trees directly, bitwise identical to the
estimator's own methods:

`RandomForestClassifier.predict_proba` validates its input, then dispatches every tree
through joblib, which costs milliseconds for one row. The arithmetic underneath is simple:
features cast to float32, each fitted tree's leaf values summed in `estimators_` order
into a float64 array of zeros, and the sum divided in place by the number of trees;
`predict` takes the class of the first maximum. Doing exactly that, with the same Cython
`Tree.predict`, gives the same bits at a fraction of the cost. A single decision tree is
the one-tree case: 0 + p and p / 1 are exact.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

from serving.engines.errors import EngineInputError
from serving.errors import PickledVersionError

FOREST_CLASSIFIERS = (RandomForestClassifier, ExtraTreesClassifier)
TREE_CLASSIFIERS = (DecisionTreeClassifier, ExtraTreeClassifier)


class TreeEnsembleClassifier:
    """The fitted trees of a single-output forest (or one tree), evaluated as scikit-learn does."""

    def __init__(self, estimator: Any) -> None:
        fitted = estimator.estimators_ if isinstance(estimator, FOREST_CLASSIFIERS) else [estimator]
        self.trees = [tree.tree_ for tree in fitted]
        self.classes: NDArray[Any] = estimator.classes_
        self.n_classes = int(estimator.n_classes_)

    @staticmethod
    def supports(estimator: Any) -> bool:
        return isinstance(estimator, FOREST_CLASSIFIERS + TREE_CLASSIFIERS) and estimator.n_outputs_ == 1

    def predict_proba(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        features = np.ascontiguousarray(rows, dtype=np.float32)
        # Not mutated, equivalent: numpy's zeros are float64 by default.
        proba = np.zeros((features.shape[0], self.n_classes), dtype=np.float64)  # pragma: no mutate
        for tree in self.trees:
            proba += tree.predict(features)[:, : self.n_classes]
        proba /= len(self.trees)
        return proba

    def predict(self, rows: NDArray[np.float64]) -> NDArray[Any]:
        return self.predict_with_proba(rows)[0]

    def predict_with_proba(self, rows: NDArray[np.float64]) -> tuple[NDArray[Any], NDArray[np.float64]]:
        """Classes and probabilities from one evaluation: the class is the probabilities' first maximum."""
        proba = self.predict_proba(rows)
        # Not mutated, equivalent: classes_ is 1-d: taking from it flattened (axis None) is taking along axis 0;
        # classes_ is 1-d: taking from it flattened (take's default) is taking along axis 0.
        return self.classes.take(np.argmax(proba, axis=1), axis=0), proba  # pragma: no mutate


def unpickle_estimator(payload: bytes, path: Path) -> Any:
    """The estimator in a verified model file; refused if another scikit-learn version pickled it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        try:
            estimator = joblib.load(io.BytesIO(payload))
        except InconsistentVersionWarning as warning:
            raise PickledVersionError(
                path, warning.original_sklearn_version, warning.current_sklearn_version
            ) from warning
    return estimator


def fitted_on_a_dataframe(estimator: Any) -> bool:
    """An estimator fitted on a pandas DataFrame records its column names and is called with one."""
    return getattr(estimator, "feature_names_in_", None) is not None


class AsFitted:
    """The estimator called as it was fitted: rows in feature order become a DataFrame with its
    column names (numbers as float64, categories as objects) when it was fitted on one."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.columns = [str(name) for name in estimator.feature_names_in_]

    def _frame(self, rows: NDArray[Any]) -> Any:
        # Imported only here: pandas ships only for estimators fitted on a DataFrame.
        import pandas as pd

        return pd.DataFrame(rows, columns=self.columns).infer_objects()

    def predict(self, rows: NDArray[Any]) -> NDArray[Any]:
        return np.asarray(self.estimator.predict(self._frame(rows)))

    def predict_proba(self, rows: NDArray[Any]) -> NDArray[np.float64]:
        proba: NDArray[np.float64] = self.estimator.predict_proba(self._frame(rows))
        return proba


def as_fitted(estimator: Any) -> Any:
    """What calls `estimator` as it was fitted, with rows in feature order (an array or a DataFrame)."""
    return AsFitted(estimator) if fitted_on_a_dataframe(estimator) else estimator


class ScikitLearnEngine:
    """The Engine interface over a fitted estimator, for models no compiled engine supports.

    scikit-learn raises ValueError for input it cannot take (its convention for validation), and
    so does XGBoost (XGBoostError); that becomes EngineInputError, a client error, like the
    compiled engines' own, in the library's words.
    """

    def __init__(self, estimator: Any) -> None:
        self.labels_are_argmax = TreeEnsembleClassifier.supports(estimator)
        """predict is the first maximum of predict_proba (trees), so one evaluation gives both."""
        # Trees are evaluated directly on float32 rows, fitted on a DataFrame or not.
        self.predictor = TreeEnsembleClassifier(estimator) if self.labels_are_argmax else as_fitted(estimator)
        self.n_features = int(estimator.n_features_in_)
        self.classes: NDArray[Any] | None = np.asarray(estimator.classes_) if hasattr(estimator, "classes_") else None
        names = getattr(estimator, "feature_names_in_", None)
        self.feature_names = None if names is None else [str(name) for name in names]

    def predict(self, rows: NDArray[Any]) -> NDArray[Any]:
        try:
            return np.asarray(self.predictor.predict(rows))
        except ValueError as error:
            raise EngineInputError.from_library(error) from error

    def predict_proba(self, rows: NDArray[Any]) -> NDArray[np.float64]:
        if self.classes is None:
            raise TypeError("predict_proba is only defined for classifiers")
        try:
            proba: NDArray[np.float64] = self.predictor.predict_proba(rows)
        except ValueError as error:
            raise EngineInputError.from_library(error) from error
        return proba
