"""Compile fitted GradientBoosting* and HistGradientBoosting* models into the arrays that
functions/predict/serving/engines/boosting.py evaluates (its docstring says how scikit-learn
computes them and how the engine reproduces it), and generate the rows that stress them.

What is taken from the fitted estimator as scikit-learn computes it, rather than recomputed:
the baseline (GradientBoosting's init prediction, HistGradientBoosting's `0 + baseline`), the
trees' leaf values (GradientBoosting's multiplied by the learning rate in float64, as its
predict_stages does), and HistGradientBoosting's category encoding and bitsets.
"""

from __future__ import annotations

from dataclasses import dataclass
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

from build.engines.base import CompiledArrays, Guarantee, UnsupportedEstimatorError, check_mask_bytes, mask_layout
from serving.engines.base import ENGINE_KEY
from serving.engines.boosting import CATEGORICAL, FORMAT_VERSION, NUMERIC, Link

ENGINE = "boosted_trees"
GRADIENT_BOOSTING = (GradientBoostingClassifier, GradientBoostingRegressor)
HIST_GRADIENT_BOOSTING = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)
CLASSIFIER_LINKS: dict[type, Link] = {
    HalfBinomialLoss: "logit",
    ExponentialLoss: "half_logit",
    HalfMultinomialLoss: "softmax",
}
REGRESSOR_LINKS: dict[type, Link] = {IdentityLink: "identity", LogLink: "exp"}
FLOAT32_MAX = float(np.finfo(np.float32).max)
BITSET_WORD_BITS = 32
# Probes: rows of the reference data whose features are varied one at a time, and random rows.
PROBE_BASE_ROWS = 3
PROBE_RANDOM_ROWS = 300


@dataclass(frozen=True)
class _Tree:
    """One tree in the estimator's input columns; leaves have left == right == -1."""

    left: NDArray[np.intp]
    right: NDArray[np.intp]
    feature: NDArray[np.intp]
    threshold: NDArray[np.float64]
    missing_left: NDArray[np.bool_]
    category_left: dict[int, NDArray[np.bool_]]
    """For each categorical split: whether each category code goes left."""
    value: NDArray[np.float64]
    """What scikit-learn adds to the score at each leaf."""


@dataclass(frozen=True)
class _Model:
    """A boosted model as scikit-learn evaluates it: trees iteration by iteration, one per output."""

    trees: list[_Tree]
    baseline: NDArray[np.float64]
    categories: dict[int, NDArray[np.float64]]
    """The known categories of each categorical input column, sorted; their codes are positions."""
    link: Link
    float32_features: bool
    positive_at_zero: bool
    raw_order: str


def supports(estimator: Any) -> bool:
    return type(estimator) in GRADIENT_BOOSTING + HIST_GRADIENT_BOOSTING


def _link(estimator: Any) -> Link:
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


def guarantee(estimator: Any) -> Guarantee:
    return "bitwise-anywhere" if _link(estimator) == "identity" else "bitwise-same-libraries"


def _gradient_boosting(estimator: Any) -> _Model:
    if estimator.init not in (None, "zero"):
        raise UnsupportedEstimatorError(
            f"{type(estimator).__name__} with init={type(estimator.init).__name__}: only init=None"
            " (scikit-learn's default) or init='zero' can be compiled"
        )
    # The init estimator's prediction does not depend on the row: take it from scikit-learn.
    one_row = np.zeros((1, estimator.n_features_in_), dtype=np.float32)
    baseline = np.asarray(estimator._raw_predict_init(one_row)[0], dtype=np.float64)
    trees = []
    for regressor in estimator.estimators_.ravel():  # stage by stage, one tree per output
        tree = regressor.tree_
        leaf = tree.children_left == -1
        trees.append(
            _Tree(
                left=tree.children_left.astype(np.intp),
                right=tree.children_right.astype(np.intp),
                feature=np.where(leaf, -1, tree.feature).astype(np.intp),
                threshold=tree.threshold.astype(np.float64),
                missing_left=np.zeros(tree.node_count, dtype=bool),
                category_left={},
                value=estimator.learning_rate * tree.value[:, 0, 0],
            )
        )
    return _Model(
        trees=trees,
        baseline=baseline,
        categories={},
        link=_link(estimator),
        float32_features=True,
        positive_at_zero=True,
        raw_order="C",
    )


def _in_bitset(bitset: NDArray[np.uint32], value: int) -> bool:
    return bool((int(bitset[value // BITSET_WORD_BITS]) >> (value % BITSET_WORD_BITS)) & 1)


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
    if estimator._preprocessor is None:
        return {}
    encoder = estimator._preprocessor.named_transformers_["encoder"]
    categorical_columns = columns[estimator._is_categorical_remapped]
    known = {}
    for column, categories in zip(categorical_columns, encoder.categories_, strict=True):
        if categories.dtype.kind != "f":
            raise UnsupportedEstimatorError(
                f"{type(estimator).__name__} with categorical_features: the categories of column {column} are"
                f" {categories.dtype} values; only numeric categories can be compiled"
            )
        known[int(column)] = categories[~np.isnan(categories)]
    return known


def _hist_gradient_boosting(estimator: Any) -> _Model:
    link = _link(estimator)
    columns = _input_columns(estimator)
    categories = _known_categories(estimator, columns)
    known_bitsets, known_index = estimator._bin_mapper.make_known_categories_bitsets()
    trees = []
    for iteration in estimator._predictors:
        for predictor in iteration:
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)
            missing_left = nodes["missing_go_to_left"].astype(bool)
            category_left = {}
            for node in np.flatnonzero(~leaf & nodes["is_categorical"].astype(bool)):
                tree_column = int(nodes["feature_idx"][node])
                left_set = predictor.raw_left_cat_bitsets[nodes["bitset_idx"][node]]
                known_set = known_bitsets[known_index[tree_column]]
                # The predictor's rule for a code: left if in the split's set, right if known, else missing.
                goes_left = [
                    _in_bitset(left_set, code) or (not _in_bitset(known_set, code) and bool(missing_left[node]))
                    for code in range(categories[int(columns[tree_column])].size)
                ]
                category_left[int(node)] = np.array(goes_left, dtype=bool)
            trees.append(
                _Tree(
                    left=np.where(leaf, -1, nodes["left"].astype(np.intp)),
                    right=np.where(leaf, -1, nodes["right"].astype(np.intp)),
                    feature=np.where(leaf, -1, columns[nodes["feature_idx"]]).astype(np.intp),
                    threshold=nodes["num_threshold"].astype(np.float64),
                    missing_left=missing_left,
                    category_left=category_left,
                    value=nodes["value"].astype(np.float64),
                )
            )
    # scikit-learn starts from zeros and adds the baseline: 0 + -0.0 is 0.0.
    baseline = (np.zeros_like(estimator._baseline_prediction) + estimator._baseline_prediction)[0]
    return _Model(
        trees=trees,
        baseline=baseline.astype(np.float64),
        categories=categories,
        link=link,
        float32_features=False,
        positive_at_zero=False,
        raw_order="F",  # its raw scores are a Fortran-ordered array
    )


def _model(estimator: Any) -> _Model:
    check_is_fitted(estimator)
    if isinstance(estimator, GRADIENT_BOOSTING):
        return _gradient_boosting(estimator)
    return _hist_gradient_boosting(estimator)


def _leaf_ranges(tree: _Tree) -> tuple[list[int], dict[int, tuple[int, int]]]:
    """Leaves in left-to-right order, and for each split the range of leaf positions of its left subtree."""
    leaves: list[int] = []
    span: dict[int, tuple[int, int]] = {}
    stack: list[tuple[int, bool]] = [(0, False)]
    while stack:
        node, visited = stack.pop()
        if tree.left[node] == -1:
            span[node] = (len(leaves), len(leaves) + 1)
            leaves.append(node)
        elif visited:
            span[node] = (span[int(tree.left[node])][0], span[int(tree.right[node])][1])
        else:
            stack += [(node, True), (int(tree.right[node]), False), (int(tree.left[node]), False)]
    return leaves, {node: span[int(tree.left[node])] for node in span if tree.left[node] != -1}


def _goes_right(tree: _Tree, node: int, split_values: NDArray[np.float64], categorical: bool) -> NDArray[np.bool_]:
    """For each bin of the node's feature, whether the split sends it right; the last bin is
    missing (NaN, or any value that is not a known category)."""
    missing_right = not tree.missing_left[node]
    if categorical:
        return np.append(~tree.category_left[node], missing_right)
    position = int(np.searchsorted(split_values, tree.threshold[node]))
    return np.append(np.arange(split_values.size + 1) > position, missing_right)


def compile_estimator(estimator: Any, prefix: str = "") -> CompiledArrays:
    """The arrays of the BoostedTrees engine equivalent to `estimator`, under `prefix`."""
    model = _model(estimator)
    n_features = int(estimator.n_features_in_)
    walked = [_leaf_ranges(tree) for tree in model.trees]
    split_values: dict[int, NDArray[np.float64]] = dict(model.categories)
    for feature in range(n_features):
        if feature not in model.categories:
            split_values[feature] = np.unique(
                np.concatenate([tree.threshold[tree.feature == feature] for tree in model.trees])
            )
    split_features = [f for f in range(n_features) if any((tree.feature == f).any() for tree in model.trees)]
    dtype, words = mask_layout(max(len(leaves) for leaves, _ in walked))
    bits = np.iinfo(dtype).bits
    full = int(np.iinfo(dtype).max)
    # Numeric features have one bin more than categorical ones: at most one bin per threshold
    # plus one above them all; both have a last bin for missing values.
    n_bins = {f: split_values[f].size + (1 if f in model.categories else 2) for f in split_features}
    check_mask_bytes(estimator, sum(n_bins.values()) * len(model.trees) * words * dtype.itemsize)
    masks = {f: np.full((n_bins[f], len(model.trees), words), full, dtype=dtype) for f in split_features}
    for index, (tree, (_, left_subtrees)) in enumerate(zip(model.trees, walked, strict=True)):
        for node, (first, end) in left_subtrees.items():
            feature = int(tree.feature[node])
            left_leaves = (1 << end) - (1 << first)
            cleared = np.array([full ^ ((left_leaves >> (w * bits)) & full) for w in range(words)], dtype=dtype)
            right = _goes_right(tree, node, split_values[feature], feature in model.categories)
            masks[feature][right, index] &= cleared
    kinds = np.array([CATEGORICAL if f in model.categories else NUMERIC for f in range(n_features)], dtype=np.int8)
    is_classifier = hasattr(estimator, "classes_")
    arrays: CompiledArrays = {
        ENGINE_KEY: np.array(ENGINE),
        "format_version": np.array(FORMAT_VERSION),
        "n_features": np.array(n_features),
        "is_classifier": np.array(is_classifier),
        "classes": np.asarray(estimator.classes_) if is_classifier else np.array([]),
        "link": np.array(model.link),
        "positive_at_zero": np.array(model.positive_at_zero),
        "float32_features": np.array(model.float32_features),
        "raw_order": np.array(model.raw_order),
        "baseline": model.baseline,
        "leaf_values": np.concatenate(
            [tree.value[leaves] for tree, (leaves, _) in zip(model.trees, walked, strict=True)]
        ),
        "leaf_offsets": np.cumsum([0] + [len(leaves) for leaves, _ in walked[:-1]]).astype(np.int64),
        "words": np.array(words),
        "mask_dtype": np.array(dtype.name),
        "split_features": np.array(split_features, dtype=np.int64),
        "feature_kinds": kinds,
    }
    for feature in split_features:
        arrays[f"split_values_{feature}"] = split_values[feature]
        arrays[f"leaf_masks_{feature}"] = masks[feature]
    return {prefix + key: value for key, value in arrays.items()}


def _neighbours(values: NDArray[np.float64], float32: bool) -> NDArray[np.float64]:
    around = [values, np.nextafter(values, np.inf), np.nextafter(values, -np.inf)]
    if float32:
        single = values.astype(np.float32)
        around += [
            single.astype(np.float64),
            np.nextafter(single, np.float32(np.inf)).astype(np.float64),
            np.nextafter(single, np.float32(-np.inf)).astype(np.float64),
        ]
    return np.concatenate(around)


def probe_rows(estimator: Any, reference_rows: NDArray[Any], rng_seed: int = 0) -> NDArray[np.float64]:
    """Rows that vary one feature of a few reference rows at a time over every split threshold and
    its float neighbours (float32 and float64 for GradientBoosting, which compares float32), every
    known category and values that are not categories, NaN (HistGradientBoosting) and extremes;
    and reference rows with random features made missing or extreme."""
    model = _model(estimator)
    rng = np.random.default_rng(rng_seed)
    reference = np.asarray(reference_rows, dtype=np.float64)
    bases = reference[rng.choice(len(reference), size=min(PROBE_BASE_ROWS, len(reference)), replace=False)]
    if model.float32_features:  # GradientBoosting refuses NaN and infinity, and values beyond float32
        extremes = np.array([FLOAT32_MAX, -FLOAT32_MAX, 0.0, -0.0, 1e-45, -1e-45, 1e30, -1e30])
    else:
        extremes = np.array([np.nan, np.inf, -np.inf, 1e300, -1e300, 0.0, -0.0, 5e-324, -5e-324])
    rows = []
    for feature in range(reference.shape[1]):
        if feature in model.categories:
            known = model.categories[feature]
            top = known.max(initial=0.0)
            others = [np.nan, -1.0, -0.0, 0.5, top + 1, top + 256, 1e300, -1e300]
            values = np.concatenate([known, np.nextafter(known, np.inf), np.nextafter(known, -np.inf), others])
        else:
            thresholds = np.unique(np.concatenate([t.threshold[t.feature == feature] for t in model.trees]))
            values = np.concatenate(
                [_neighbours(thresholds[np.isfinite(thresholds)], model.float32_features), extremes]
            )
        block = np.repeat(bases, values.size, axis=0)
        block[:, feature] = np.tile(values, len(bases))
        rows.append(block)
    random_rows = reference[rng.integers(len(reference), size=PROBE_RANDOM_ROWS)]
    changed = rng.random(random_rows.shape) < 0.3
    numeric = np.array([f not in model.categories for f in range(reference.shape[1])])
    random_rows[changed & numeric] = rng.choice(extremes, size=int((changed & numeric).sum()))
    if not model.float32_features:
        random_rows[changed & ~numeric] = np.nan
    rows.append(random_rows)
    return np.vstack(rows)
