"""Compile a fitted scikit-learn tree ensemble into the arrays that
functions/predict/serving/engines/forest.py evaluates, and the probes the exactness gate
(build/engines/__init__.py) adds for it: every split threshold, the float32 and float64
neighbours on both sides of it, extremes, negatives and random rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from build.engines.base import UnsupportedEstimatorError, check_mask_bytes, mask_layout
from serving.engines.forest import FORMAT_VERSION

CLASSIFIERS = (RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier, ExtraTreeClassifier)
REGRESSORS = (RandomForestRegressor, ExtraTreesRegressor, DecisionTreeRegressor, ExtraTreeRegressor)
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class _Tree:
    leaves: list[int]
    splits: list[tuple[int, float, int, int]]  # feature, threshold, first and last+1 leaf of the left subtree


def _walk(tree: Any) -> _Tree:
    """Leaves in left-to-right order, and for each split the leaf range of its left subtree."""
    left, right = tree.children_left, tree.children_right
    leaves: list[int] = []
    first_leaf: dict[int, int] = {}
    end_leaf: dict[int, int] = {}
    stack: list[tuple[int, bool]] = [(0, False)]
    while stack:
        node, visited = stack.pop()
        if left[node] == -1:
            first_leaf[node] = len(leaves)
            leaves.append(node)
            end_leaf[node] = len(leaves)
        elif visited:
            first_leaf[node] = first_leaf[left[node]]
            end_leaf[node] = end_leaf[right[node]]
        else:
            stack += [(node, True), (right[node], False), (left[node], False)]
    splits = [
        (int(tree.feature[node]), float(tree.threshold[node]), first_leaf[left[node]], end_leaf[left[node]])
        for node in range(tree.node_count)
        if left[node] != -1
    ]
    return _Tree(leaves=leaves, splits=splits)


def supports(estimator: Any) -> bool:
    return type(estimator) in CLASSIFIERS + REGRESSORS and estimator.n_outputs_ == 1


def compile_estimator(
    estimator: Any, feature_names: Sequence[str] | None = None, class_names: Sequence[str] | None = None
) -> dict[str, NDArray[Any]]:
    """The arrays of a CompiledForest equivalent to `estimator`, with its interface recorded: the
    feature names in order (the estimator's own `feature_names_in_` when it has them, else
    `feature_names`, else scikit-learn's x0, x1, ...) and, for a classifier, one name per class
    (`class_names`, else the class labels)."""
    if not supports(estimator):
        raise UnsupportedEstimatorError(f"{type(estimator).__name__} is not a single-output tree ensemble")
    is_classifier = type(estimator) in CLASSIFIERS
    fitted = getattr(estimator, "estimators_", [estimator])
    trees = [tree.tree_ for tree in fitted]
    walked = [_walk(tree) for tree in trees]
    n_features = int(estimator.n_features_in_)
    n_values = int(estimator.n_classes_) if is_classifier else 1
    dtype, words = mask_layout(max(len(w.leaves) for w in walked))
    bits = np.iinfo(dtype).bits
    thresholds = [
        np.unique(np.array([t for w in walked for f, t, _, _ in w.splits if f == feature], dtype=np.float64))
        for feature in range(n_features)
    ]
    check_mask_bytes(estimator, sum((t.size + 1) * len(trees) * words * dtype.itemsize for t in thresholds))
    masks = [np.full((t.size + 1, len(trees), words), np.iinfo(dtype).max, dtype=dtype) for t in thresholds]
    for tree_index, tree in enumerate(walked):
        for feature, threshold, first, end in tree.splits:
            cleared = np.full(words, np.iinfo(dtype).max, dtype=dtype)
            for leaf in range(first, end):
                cleared[leaf // bits] &= dtype.type(~(1 << (leaf % bits)) & np.iinfo(dtype).max)
            position = int(np.searchsorted(thresholds[feature], threshold))
            masks[feature][position + 1 :, tree_index] &= cleared
    leaf_values = np.concatenate(
        [tree.value[w.leaves, 0, :n_values] for tree, w in zip(trees, walked, strict=True)]
    ).astype(np.float64)
    names = _feature_names(estimator, feature_names)
    classes = np.asarray(estimator.classes_) if is_classifier else np.array([])
    if class_names is None:
        class_names = [str(label) for label in classes]
    if len(class_names) != classes.size:
        raise ValueError(f"{len(class_names)} class names for the estimator's {classes.size} classes")
    arrays: dict[str, NDArray[Any]] = {
        "format_version": np.array(FORMAT_VERSION),
        "kind": np.array("classifier" if is_classifier else "regressor"),
        "n_features": np.array(n_features),
        "n_trees": np.array(len(trees)),
        "words": np.array(words),
        "feature_names": np.array(names, dtype=str),
        "classes": classes,
        "class_names": np.array(class_names, dtype=str),
        "leaf_values": np.ascontiguousarray(leaf_values),
        "leaf_offsets": np.cumsum([0] + [len(w.leaves) for w in walked[:-1]]).astype(np.int64),
    }
    for feature in range(n_features):
        arrays[f"thresholds_{feature}"] = thresholds[feature]
        arrays[f"leaf_masks_{feature}"] = masks[feature]
    return arrays


def _feature_names(estimator: Any, given: Sequence[str] | None) -> list[str]:
    own = getattr(estimator, "feature_names_in_", None)
    n_features = int(estimator.n_features_in_)
    names = [str(name) for name in own] if own is not None else list(given or [f"x{i}" for i in range(n_features)])
    if given is not None and list(given) != names:
        raise ValueError(f"feature names {list(given)} differ from the estimator's own {names}")
    if len(names) != n_features:
        raise ValueError(f"{len(names)} feature names for the estimator's {n_features} features")
    return names


def probes(estimator: Any, rng_seed: int = 0) -> NDArray[np.float64]:
    """Rows at, just above and just below every split threshold (in float32 and float64),
    extremes, negatives and random rows around the thresholds' range."""
    rng = np.random.default_rng(rng_seed)
    n_features = int(estimator.n_features_in_)
    fitted = getattr(estimator, "estimators_", [estimator])
    by_feature = [
        np.unique(np.concatenate([t.tree_.threshold[t.tree_.feature == f] for t in fitted])) for f in range(n_features)
    ]
    rows = []
    center = np.array([np.median(t) if t.size else 0.0 for t in by_feature])
    for feature, thresholds in enumerate(by_feature):
        as_float32 = thresholds.astype(np.float32)
        values = np.concatenate(
            [
                thresholds,
                as_float32.astype(np.float64),
                np.nextafter(as_float32, np.float32(np.inf)).astype(np.float64),
                np.nextafter(as_float32, np.float32(-np.inf)).astype(np.float64),
                np.nextafter(thresholds, np.inf),
                np.nextafter(thresholds, -np.inf),
            ]
        )
        block = np.tile(center, (values.size, 1))
        block[:, feature] = values
        rows.append(block)
    low = min((t.min() for t in by_feature if t.size), default=-1.0)
    high = max((t.max() for t in by_feature if t.size), default=1.0)
    span = max(high - low, 1.0)
    rows.append(rng.uniform(low - span, high + span, size=(2000, n_features)))
    rows.append(-np.abs(rng.normal(0, span, size=(200, n_features))))
    extremes = np.array([FLOAT32_MAX, -FLOAT32_MAX, 0.0, -0.0, 1e-45, -1e-45, 1e30, -1e30])
    for feature in range(n_features):
        block = np.tile(center, (extremes.size, 1))
        block[:, feature] = extremes
        rows.append(block)
    return np.vstack(rows)
