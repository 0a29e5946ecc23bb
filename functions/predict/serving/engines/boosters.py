"""A LightGBM Booster from a text model file, answering as LightGBM's scikit-learn wrapper does.

LightGBM's wrappers cannot load a model file, so the build wraps a native Booster in one of
these (build/native_models.py) and pickles it like any estimator: the compiler reads its
`booster_` as it reads a wrapper's, the exactness gate calls its predict/predict_proba, and a
model that does not compile is served through it by the scikit-learn engine, with LightGBM in
the package. The classes are the label codes LightGBM was trained on, 0 to n_classes - 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

LIBRARY = "lightgbm"
CLASSIFIER_OBJECTIVES = frozenset({"binary", "multiclass", "multiclassova"})


class _LightGBMBooster(BaseEstimator):  # type: ignore[misc]
    """What both wrappers share: the Booster, read by the compiler as a wrapper's `booster_`."""

    library = LIBRARY

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    @property
    def booster_(self) -> Any:
        return self.booster

    @property
    def n_features_in_(self) -> int:
        return int(self.booster.num_feature())


class LightGBMBoosterRegressor(RegressorMixin, _LightGBMBooster):  # type: ignore[misc]
    """LGBMRegressor.predict of a Booster: its values with the trees up to best_iteration."""

    def predict(self, rows: NDArray[Any]) -> NDArray[np.float64]:
        values: NDArray[np.float64] = self.booster.predict(rows)
        return values


class LightGBMBoosterClassifier(ClassifierMixin, _LightGBMBooster):  # type: ignore[misc]
    """LGBMClassifier.predict_proba and predict of a Booster trained on labels 0..n_classes-1."""

    @property
    def classes_(self) -> NDArray[np.int64]:
        return np.arange(max(int(self.booster.num_model_per_iteration()), 2))

    def predict_proba(self, rows: NDArray[Any]) -> NDArray[np.float64]:
        result: NDArray[np.float64] = self.booster.predict(rows)
        if result.ndim == 1:
            # LGBMClassifier.predict_proba's two columns of a binary model.
            return np.vstack((1.0 - result, result)).transpose()
        return result

    def predict(self, rows: NDArray[Any]) -> NDArray[np.int64]:
        return self.classes_.take(np.argmax(self.predict_proba(rows), axis=1))
