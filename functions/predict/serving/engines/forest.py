"""A tree ensemble compiled to plain arrays and evaluated with numpy alone, bit for bit as
scikit-learn evaluates it.

How scikit-learn computes a forest's output: features are cast to float32; in each tree a
row goes left while `float64(x[feature]) <= threshold`; the reached leaf's values are added,
tree by tree in `estimators_` order, to float64 zeros; the sum is divided in place by the
number of trees; a classifier's class is the first maximum. A single tree (a DecisionTree or
ExtraTree) answers its leaf's values as they are: v / 1 is exact, but 0 + v is not when v is
-0.0 (a median leaf of `criterion="absolute_error"`). The arrays do not say whether one tree is
a tree or a forest of one, so a forest of one tree with a -0.0 leaf answers -0.0 where
scikit-learn answers 0.0; the build's exactness gate sees every leaf through the training rows,
refuses it, and scikit-learn serves that model.

How this finds the leaves without walking the trees node by node (the bitvector method of
QuickScorer, Lucchese et al., SIGIR 2015): every split threshold of a feature is one of that
feature's sorted unique thresholds, so `x <= threshold[k]` holds exactly when `k >= bin`,
where `bin = searchsorted(thresholds, x, "left")`. Leaves are numbered left to right; a
false split rules out every leaf of its left subtree. `leaf_masks[f][bin, tree]` is the AND
of the masks of all splits on feature `f` that are false in that bin; the AND over the
features leaves exactly the reachable leaves set, and the leaf reached is the lowest set bit.
Only comparisons and integer operations decide the leaf, so it is exact; the sums are done
sequentially in tree order, as scikit-learn does them, so they are exact too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from serving.engines.base import KINDS, WORD_BITS, check_format_version, check_width

# 2: the model's interface (feature names in order, class names) is recorded in the file.
FORMAT_VERSION = 2
# Below this many (row, tree) pairs the leaf values are gathered at once and summed with
# np.add.accumulate; above it, tree by tree into one buffer (less memory traffic). Both are
# sequential sums in tree order.
GATHERED_SUM_LIMIT = 25_000
SCALARS = ("format_version", "n_features", "n_trees", "words")
MASK_DTYPES = (np.uint8, np.uint16, np.uint32, np.uint64)
# One-word masks of at most this many bits find their lowest set bit in a table of 2**16 positions
# (one gather over the rows instead of five passes); wider ones compute it.
LOOKUP_BITS = 16


def lowest_bit_positions(bits: int) -> NDArray[np.intp]:
    """The position of the lowest set bit of every `bits`-bit word, computed exactly as `_leaves`
    does for wider words; 0 for the word 0, which a reachable set never is."""
    words = np.arange(1, 1 << bits, dtype=np.int64)
    lowest = words & -words
    return np.concatenate(([0], np.frexp(lowest.astype(np.float64))[1] - 1)).astype(np.intp)


class InvalidCompiledForestError(ValueError):
    """The arrays are not a compiled forest this code can evaluate safely; names the first problem."""


def _require(condition: bool | np.bool_, problem: str) -> None:
    if not condition:
        raise InvalidCompiledForestError(problem)


def _check_kind(array: NDArray[Any], name: str, kind: str, ndim: int) -> None:
    _require(array.dtype.kind == kind and array.ndim == ndim, f"{name} is a {array.ndim}-d {array.dtype} array")


def check_arrays(arrays: dict[str, NDArray[Any]]) -> None:
    """Refuse arrays that could not have come from build/compile_forest.py: every array present with its
    dtype and shape, finite numbers, sorted thresholds, leaf offsets and mask bits within each tree."""
    for name in (*SCALARS, "kind"):
        _require(name in arrays, f"{name} is missing")
        _check_kind(arrays[name], name, "U" if name == "kind" else "i", 0)
    check_format_version(arrays, "", "forest", FORMAT_VERSION)
    kind = str(arrays["kind"])
    n_features, n_trees, words = (int(arrays[name]) for name in ("n_features", "n_trees", "words"))
    _require(kind in KINDS, f"kind {kind!r} is not one of {KINDS}")
    _require(n_trees >= 1 and words >= 1, "n_trees and words must be at least 1")
    # Two arrays per feature: a bound checked before anything is sized by n_features.
    _require(1 <= n_features <= len(arrays) // 2, f"n_features {n_features} does not match the {len(arrays)} arrays")
    expected = {*SCALARS, "kind", "feature_names", "classes", "class_names", "leaf_values", "leaf_offsets"}
    expected |= {f"{prefix}_{f}" for prefix in ("thresholds", "leaf_masks") for f in range(n_features)}
    _require(set(arrays) == expected, f"arrays {sorted(expected ^ set(arrays))} are missing or unexpected")
    names, classes, class_names = arrays["feature_names"], arrays["classes"], arrays["class_names"]
    _check_kind(names, "feature_names", "U", 1)
    # Uniqueness by set, not np.unique: numpy's unique imports numpy.ma, a tenth of a second of
    # cold start under load that serving has no other use for.
    _require(
        names.size == n_features and len(set(names.tolist())) == n_features,
        f"feature_names must be unique, one per feature ({n_features})",
    )
    _check_kind(classes, "classes", "i" if kind == "classifier" else "f", 1)
    _check_kind(class_names, "class_names", "U", 1)
    n_values = classes.size if kind == "classifier" else 1
    _require(
        kind == "regressor" or (classes.size >= 1 and len(set(classes.tolist())) == classes.size),
        "classes must be unique",
    )
    _require(class_names.size == classes.size, f"{class_names.size} class_names for {classes.size} classes")
    leaf_values, offsets = arrays["leaf_values"], arrays["leaf_offsets"]
    _check_kind(leaf_values, "leaf_values", "f", 2)
    _require(
        leaf_values.dtype == np.float64 and leaf_values.shape[1] == n_values,
        f"leaf_values is {leaf_values.dtype} {leaf_values.shape}, expected float64 (leaves, {n_values})",
    )
    _require(bool(np.isfinite(leaf_values).all()), "leaf_values are not all finite")
    _check_kind(offsets, "leaf_offsets", "i", 1)
    leaves_per_tree = np.diff(np.append(offsets, leaf_values.shape[0]))
    _require(
        offsets.size == n_trees and offsets[0] == 0 and bool((leaves_per_tree >= 1).all()),
        f"leaf_offsets must start at 0 and give each of the {n_trees} trees at least one of the "
        f"{leaf_values.shape[0]} leaves",
    )
    mask_dtype = arrays["leaf_masks_0"].dtype
    bits = mask_dtype.itemsize * 8
    _require(mask_dtype in MASK_DTYPES and (words == 1 or mask_dtype == np.uint64), f"leaf masks are {mask_dtype}")
    _require(bool((leaves_per_tree <= words * bits).all()), f"a tree has more leaves than {words} words of {bits} bits")
    # The reached leaf is the lowest bit left set: a tree's last leaf (never in a left subtree) must be set in
    # every bin, or a row could reach a bit past the tree's leaves.
    last_word, last_bit = np.divmod(leaves_per_tree - 1, bits)
    for feature in range(n_features):
        thresholds, masks = arrays[f"thresholds_{feature}"], arrays[f"leaf_masks_{feature}"]
        _require(thresholds.dtype == np.float64 and thresholds.ndim == 1, f"thresholds_{feature} is not 1-d float64")
        _require(
            bool(np.isfinite(thresholds).all()) and bool((np.diff(thresholds) > 0).all()),
            f"thresholds_{feature} are not finite and strictly increasing",
        )
        _require(
            masks.dtype == mask_dtype and masks.shape == (thresholds.size + 1, n_trees, words),
            f"leaf_masks_{feature} is {masks.dtype} {masks.shape}, expected {mask_dtype} "
            f"{(thresholds.size + 1, n_trees, words)}",
        )
        last_leaf_bits = masks[:, np.arange(n_trees), last_word] >> last_bit.astype(mask_dtype)
        _require(bool((last_leaf_bits & 1).all()), f"leaf_masks_{feature} clear the last leaf of a tree")


class CompiledForest:
    """A single-output tree classifier or regressor (one tree or a forest) as arrays."""

    def __init__(self, arrays: dict[str, NDArray[Any]]) -> None:
        check_arrays(arrays)
        self.kind = str(arrays["kind"])
        self.n_features = int(arrays["n_features"])
        self.n_trees = int(arrays["n_trees"])
        self.feature_names = [str(name) for name in arrays["feature_names"]]
        self.class_names = [str(name) for name in arrays["class_names"]]
        # The Engine interface: a regressor has no classes.
        self.classes: NDArray[Any] | None = arrays["classes"] if self.kind == "classifier" else None
        self.leaf_values: NDArray[np.float64] = arrays["leaf_values"]
        self.leaf_offsets: NDArray[np.intp] = arrays["leaf_offsets"].astype(np.intp)
        self.thresholds = [arrays[f"thresholds_{f}"] for f in range(self.n_features)]
        self.leaf_masks = [arrays[f"leaf_masks_{f}"] for f in range(self.n_features)]
        self.split_features = [f for f in range(self.n_features) if self.thresholds[f].size]
        self.words = int(arrays["words"])
        self.mask_dtype = arrays["leaf_masks_0"].dtype
        bits = self.mask_dtype.itemsize * 8
        self.lowest_bit = lowest_bit_positions(bits) if self.words == 1 and bits <= LOOKUP_BITS else None

    @property
    def is_classifier(self) -> bool:
        return self.kind == "classifier"

    def _leaves(self, features: NDArray[np.float64]) -> NDArray[np.intp]:
        """Index into leaf_values of the leaf each row reaches in each tree: shape (rows, trees)."""
        reachable = np.full(
            (features.shape[0], self.n_trees, self.words), np.iinfo(self.mask_dtype).max, self.mask_dtype
        )
        for feature in self.split_features:
            bins = np.searchsorted(self.thresholds[feature], features[:, feature], side="left")
            reachable &= self.leaf_masks[feature][bins]
        if self.lowest_bit is not None:
            by_table: NDArray[np.intp] = self.lowest_bit[reachable[:, :, 0]] + self.leaf_offsets
            return by_table
        if self.words == 1:
            word_index = np.zeros(reachable.shape[:2], dtype=np.intp)
            word = reachable[:, :, 0]
        else:
            word_index = np.argmax(reachable != 0, axis=2)
            word = np.take_along_axis(reachable, word_index[:, :, None], axis=2)[:, :, 0]
        lowest_bit = word & (~word + self.mask_dtype.type(1))
        # frexp(2**k) is (0.5, k + 1) exactly: the bit's position without any rounding.
        position = np.frexp(lowest_bit.astype(np.float64))[1] - 1
        leaf: NDArray[np.intp] = word_index * WORD_BITS + position + self.leaf_offsets
        return leaf

    def _mean_over_trees(self, rows: NDArray[Any]) -> NDArray[np.float64]:
        features = np.ascontiguousarray(rows, dtype=np.float32).astype(np.float64)
        check_width(features, self.n_features)
        leaves = self._leaves(features)
        if self.n_trees == 1:
            total = self.leaf_values[leaves[:, 0]]
        elif leaves.size <= GATHERED_SUM_LIMIT:
            # Summed from the first tree's values, not from zeros: adding 0.0 at the end gives the
            # sum from zeros to the bit (the two differ only by a -0.0 total, which 0.0 + turns to 0.0).
            total = np.add.accumulate(self.leaf_values[leaves], axis=1)[:, -1, :] + 0.0
        else:
            by_tree = np.ascontiguousarray(leaves.T)
            total = np.zeros((features.shape[0], self.leaf_values.shape[1]), dtype=np.float64)
            values = np.empty_like(total)
            for tree_leaves in by_tree:
                np.take(self.leaf_values, tree_leaves, axis=0, out=values)
                total += values
        total /= self.n_trees
        return total

    def predict_proba(self, rows: NDArray[Any]) -> NDArray[np.float64]:
        if not self.is_classifier:
            raise TypeError("predict_proba is only defined for classifiers")
        return self._mean_over_trees(rows)

    def predict(self, rows: NDArray[Any]) -> NDArray[Any]:
        mean = self._mean_over_trees(rows)
        if self.classes is not None:
            return self.classes.take(np.argmax(mean, axis=1), axis=0)
        return mean[:, 0]

    def predict_with_proba(self, rows: NDArray[Any]) -> tuple[NDArray[Any], NDArray[np.float64]]:
        """Classes and probabilities from one evaluation: the class is the probabilities' first maximum."""
        proba = self.predict_proba(rows)
        assert self.classes is not None
        return self.classes.take(np.argmax(proba, axis=1), axis=0), proba
