"""Compile scikit-learn's forests and single trees (RandomForest*, ExtraTrees*, DecisionTree*,
ExtraTree*) into a TreeEnsemble (serving/engines/trees.py).

How scikit-learn computes them: features are cast to float32 (NaN accepted where the trees
support missing values, infinity refused); in each tree a row goes left while
`float64(x[feature]) <= threshold`, NaN where `missing_go_to_left` says; the reached leaves'
values are added, tree by tree in `estimators_` order, to float64 zeros; the sum is divided in
place by the number of trees; a classifier's class is the first maximum. A single tree answers
its leaf's values as they are: v / 1 is exact, but 0 + v is not when v is -0.0 (a median leaf of
`criterion="absolute_error"`), so a single tree starts its sum at -0.0 (-0.0 + v is v for every
v) and a forest at +0.0 (0.0 + -0.0 is 0.0, as in scikit-learn), even a forest of one tree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from build.engines.base import UnsupportedEstimatorError
from build.engines.trees import LibraryTree, assemble
from serving.engines.trees import TreeEnsemble

CLASSIFIERS = (RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier, ExtraTreeClassifier)
REGRESSORS = (RandomForestRegressor, ExtraTreesRegressor, DecisionTreeRegressor, ExtraTreeRegressor)
SINGLE_TREES = (DecisionTreeClassifier, ExtraTreeClassifier, DecisionTreeRegressor, ExtraTreeRegressor)


def supports(estimator: Any) -> bool:
    return type(estimator) in CLASSIFIERS + REGRESSORS


def _library_tree(tree: Any) -> LibraryTree:
    return LibraryTree(
        left=tree.children_left.astype(np.intp),
        right=tree.children_right.astype(np.intp),
        feature=tree.feature,  # intp and float64 already; assemble casts both
        threshold=tree.threshold,
        value=tree.value[:, 0],  # the single output's values: one a class, or one
        default_left=tree.missing_go_to_left,  # uint8, which assemble reads as bool
    )


def ensemble(estimator: Any) -> TreeEnsemble:
    """The TreeEnsemble that answers as `estimator` does."""
    if not supports(estimator):
        raise UnsupportedEstimatorError(f"{type(estimator).__name__} is not a scikit-learn forest or tree")
    if estimator.n_outputs_ != 1:
        raise UnsupportedEstimatorError(
            f"{type(estimator).__name__} with {estimator.n_outputs_} outputs: only single-output trees compile"
        )
    is_classifier = isinstance(estimator, CLASSIFIERS)
    single = isinstance(estimator, SINGLE_TREES)
    fitted = [estimator] if single else list(estimator.estimators_)
    n_values = fitted[0].tree_.value.shape[2]  # one a class, or one
    n_features = int(estimator.n_features_in_)
    # Whether predict accepts NaN (sent where missing_go_to_left says) or refuses it, as it does infinity.
    # Not mutated, equivalent: scikit-learn reads only whether the rows are sparse (then it refuses NaN).
    accepts_nan = fitted[0]._support_missing_values(np.zeros((1, n_features)))  # pragma: no mutate
    return assemble(
        [_library_tree(tree.tree_) for tree in fitted],
        kind="classifier" if is_classifier else "regressor",
        n_features=n_features,
        classes=np.asarray(estimator.classes_) if is_classifier else None,
        input_dtype="float32",
        input_check="no_infinity" if accepts_nan else "finite",
        comparison="<=",
        tree_output=[0] * len(fitted),
        base_score=np.full(n_values, -0.0 if single else 0.0),
        average=True,
        link="identity",
        decision="argmax_proba" if is_classifier else "value",
    )
