"""Compile fitted GradientBoosting* and HistGradientBoosting* models into a TreeEnsemble
(serving/engines/trees.py).

How scikit-learn computes a boosted model's output: a raw score per output (one for regression
and binary classification, one per class otherwise) starts at a baseline (the init estimator's
prediction for GradientBoosting, `0 + _baseline_prediction` for HistGradientBoosting) and each
tree's leaf value is added to its output's score, iteration by iteration (GradientBoosting adds
`learning_rate * value`, a product done here at build time, the same float64 product). The
score then goes through the loss's link: identity, `np.exp`, scipy's `expit`, or softmax with
numpy's `exp` over the score array in scikit-learn's memory order (C for GradientBoosting, F
for HistGradientBoosting). GradientBoosting compares float32 features and refuses NaN and
infinity; HistGradientBoosting compares float64 features, sends NaN where the split learned to
(`missing_go_to_left`), and reads categorical features through an OrdinalEncoder: a value equal
to a known category is that category's code, any other value (NaN included) is missing; a code
goes left when it is in the split's bitset, right when not: the format's "known" category rule.

What is taken from the fitted estimator as scikit-learn computes it, rather than recomputed:
the baseline, the trees' leaf values, and HistGradientBoosting's category encoding and bitsets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn._loss.link import IdentityLink, LogLink
from sklearn._loss.loss import ExponentialLoss, HalfBinomialLoss, HalfMultinomialLoss
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.utils.validation import check_is_fitted

from build.engines.base import UnsupportedEstimatorError
from build.engines.trees import LibraryTree, assemble, bitset
from serving.engines.trees import BITSET_WORD_BITS, TreeEnsemble

GRADIENT_BOOSTING = (GradientBoostingClassifier, GradientBoostingRegressor)
HIST_GRADIENT_BOOSTING = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)
CLASSIFIER_LINKS: dict[type, str] = {
    HalfBinomialLoss: "expit",
    ExponentialLoss: "exponential_loss",
    HalfMultinomialLoss: "softmax",
}
REGRESSOR_LINKS: dict[type, str] = {IdentityLink: "identity", LogLink: "exp"}


def supports(estimator: Any) -> bool:
    return type(estimator) in GRADIENT_BOOSTING + HIST_GRADIENT_BOOSTING


def _link(estimator: Any) -> str:
    if isinstance(estimator, GradientBoostingRegressor):
        return "identity"  # its predict returns the raw score whatever the loss
    if hasattr(estimator, "classes_"):
        link = CLASSIFIER_LINKS.get(type(estimator._loss))
    else:
        link = REGRESSOR_LINKS.get(type(estimator._loss.link))
    if link is None:
        loss = estimator.loss if isinstance(estimator.loss, str) else type(estimator.loss).__name__
        raise UnsupportedEstimatorError(
            f"{type(estimator).__name__} with loss={loss}: no compiled engine for its output mapping"
        )
    return link


def _settings(estimator: Any, n_outputs: int, binary_decision: str) -> dict[str, Any]:
    """The settings both families share: kind, classes, link, comparison and decision, where a
    binary classifier's decision is the family's own (`binary_decision`: GradientBoosting picks the
    positive class at a raw score of 0, HistGradientBoosting above it)."""
    is_classifier = hasattr(estimator, "classes_")
    # Not mutated, equivalent: a classifier has 1 output (2 classes) or one a class (3 or more), never 2.
    decision = "value" if not is_classifier else "argmax_raw" if n_outputs > 1 else binary_decision  # pragma: no mutate
    return {
        "kind": "classifier" if is_classifier else "regressor",
        "n_features": int(estimator.n_features_in_),
        "classes": np.asarray(estimator.classes_) if is_classifier else None,
        "link": _link(estimator),
        "comparison": "<=",
        "average": False,
        "decision": decision,
    }


def _gradient_boosting(estimator: Any) -> TreeEnsemble:
    if estimator.init not in (None, "zero"):
        raise UnsupportedEstimatorError(
            f"{type(estimator).__name__} with init={type(estimator.init).__name__}: only init=None"
            " (scikit-learn's default) or init='zero' can be compiled"
        )
    # The init estimator's prediction does not depend on the row: take it from scikit-learn.
    # Not mutated, equivalent: any row of zeros, of any dtype, gives the same prediction.
    one_row = np.zeros((1, estimator.n_features_in_), dtype=np.float32)  # pragma: no mutate
    # Not mutated, equivalent: _raw_predict_init returns float64 already.
    baseline = np.asarray(estimator._raw_predict_init(one_row)[0], dtype=np.float64)  # pragma: no mutate
    stages, n_outputs = estimator.estimators_.shape
    trees = [
        LibraryTree(
            left=regressor.tree_.children_left.astype(np.intp),
            right=regressor.tree_.children_right.astype(np.intp),
            feature=regressor.tree_.feature,  # intp and float64 already; assemble casts both
            threshold=regressor.tree_.threshold,
            value=(estimator.learning_rate * regressor.tree_.value[:, 0, 0])[:, None],
        )
        for regressor in estimator.estimators_.ravel()  # stage by stage, one tree per output
    ]
    # Its raw scores are a C-ordered array: assemble's default score_order.
    return assemble(
        trees,
        **_settings(estimator, n_outputs, binary_decision="raw_at_least_zero"),
        input_dtype="float32",
        input_check="finite",
        tree_output=[output for _ in range(stages) for output in range(n_outputs)],
        base_score=baseline,
    )


def _input_columns(estimator: Any) -> NDArray[np.intp]:
    """For each column the trees read, the estimator's input column: with categorical features
    its preprocessor puts the encoded categorical columns first."""
    preprocessor = estimator._preprocessor
    n_features = int(estimator.n_features_in_)
    if preprocessor is None:
        return np.arange(n_features)
    columns = np.empty(n_features, dtype=np.intp)
    for name, _, selected in preprocessor.transformers_:
        columns[preprocessor.output_indices_[name]] = np.arange(n_features)[selected]
    return columns


def _known_categories(estimator: Any, columns: NDArray[np.intp]) -> dict[int, NDArray[np.float64]]:
    """The known categories of each categorical input column, sorted: their codes are positions."""
    if estimator._preprocessor is None:
        return {}
    encoder = estimator._preprocessor.named_transformers_["encoder"]
    categorical_columns = columns[estimator._is_categorical_remapped]
    known = {}
    # Not mutated, equivalent: the encoder has one list of categories for each categorical column.
    for column, categories in zip(categorical_columns, encoder.categories_, strict=True):  # pragma: no mutate
        if categories.dtype.kind != "f":
            raise UnsupportedEstimatorError(
                f"{type(estimator).__name__} with categorical_features: the categories of column {column} are"
                f" {categories.dtype} values; only numeric categories can be compiled"
            )
        known[int(column)] = categories[~np.isnan(categories)]
    return known


def _in_bitset(bitset_words: NDArray[np.uint32], value: int) -> bool:
    return bool((int(bitset_words[value // BITSET_WORD_BITS]) >> (value % BITSET_WORD_BITS)) & 1)


def _hist_gradient_boosting(estimator: Any) -> TreeEnsemble:
    columns = _input_columns(estimator)
    categories = _known_categories(estimator, columns)
    known_bitsets, known_index = estimator._bin_mapper.make_known_categories_bitsets()
    trees = []
    for iteration in estimator._predictors:
        for predictor in iteration:
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)
            # Not mutated, equivalent: assemble() reads default_left as bool whatever its dtype.
            missing_left = nodes["missing_go_to_left"].astype(bool)  # pragma: no mutate
            category_left = {}
            for node in np.flatnonzero(~leaf & nodes["is_categorical"].astype(bool)):
                tree_column = int(nodes["feature_idx"][node])
                left_set = predictor.raw_left_cat_bitsets[nodes["bitset_idx"][node]]
                known_set = known_bitsets[known_index[tree_column]]
                n_codes = categories[int(columns[tree_column])].size
                # The predictor's rule for a code: left if in the split's set, right if known, else missing.
                # Not mutated, equivalent: the encoder and the bin mapper learn the categories from the
                # same rows, so every code below n_codes is known and the missing term never applies.
                # pragma: no mutate start
                goes_left = [
                    code
                    for code in range(n_codes)
                    if _in_bitset(left_set, code) or (not _in_bitset(known_set, code) and bool(missing_left[node]))
                ]
                # pragma: no mutate end
                category_left[int(node)] = bitset(goes_left)
            trees.append(
                LibraryTree(
                    left=np.where(leaf, -1, nodes["left"].astype(np.intp)),
                    right=nodes["right"].astype(np.intp),  # a leaf's is never read: `left` marks it
                    # A leaf's feature and threshold are never read; all three are float64 or intp already.
                    feature=columns[nodes["feature_idx"]],
                    threshold=nodes["num_threshold"],
                    value=nodes["value"][:, None],
                    default_left=missing_left,
                    categories=category_left,
                )
            )
    n_outputs = int(estimator.n_trees_per_iteration_)
    # scikit-learn starts from zeros and adds the baseline: 0 + -0.0 is 0.0.
    # Not mutated, equivalent: np.zeros_like(None) is a zero too, and 0 + -0.0 is 0.0 the same.
    baseline = (np.zeros_like(estimator._baseline_prediction) + estimator._baseline_prediction)[0]  # pragma: no mutate
    return assemble(
        trees,
        **_settings(estimator, n_outputs, binary_decision="raw_above_zero"),
        input_dtype="float64",
        input_check="any",
        tree_output=[output for iteration in estimator._predictors for output in range(len(iteration))],
        base_score=baseline,
        score_order="F",  # its raw scores are a Fortran-ordered array
        known_categories=categories,  # with assemble's default category_rule, "known"
    )


def ensemble(estimator: Any) -> TreeEnsemble:
    """The TreeEnsemble that answers as `estimator` does."""
    if not supports(estimator):
        raise UnsupportedEstimatorError(f"{type(estimator).__name__} is not a scikit-learn gradient boosting model")
    check_is_fitted(estimator)
    if isinstance(estimator, GRADIENT_BOOSTING):
        return _gradient_boosting(estimator)
    return _hist_gradient_boosting(estimator)
