"""A tree ensemble compiled to plain arrays and evaluated with numpy alone, bit for bit as
scikit-learn evaluates it.

How scikit-learn computes a forest's output: features are cast to float32; in each tree a
row goes left while `float64(x[feature]) <= threshold`; the reached leaf's values are added,
tree by tree in `estimators_` order, to float64 zeros; the sum is divided in place by the
number of trees; a classifier's class is the first maximum. A single tree is the one-tree
case (0 + v and v / 1 are exact).

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

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

FORMAT_VERSION = 1
# Below this many (row, tree) pairs the leaf values are gathered at once and summed with
# np.add.accumulate; above it, tree by tree into one buffer (less memory traffic). Both are
# sequential sums in tree order.
GATHERED_SUM_LIMIT = 25_000
WORD_BITS = 64


class CompiledForest:
    """A single-output tree classifier or regressor (one tree or a forest) as arrays."""

    def __init__(self, arrays: dict[str, NDArray[Any]]) -> None:
        if int(arrays["format_version"]) != FORMAT_VERSION:
            raise ValueError(f"compiled forest format {int(arrays['format_version'])}, expected {FORMAT_VERSION}")
        self.kind = str(arrays["kind"])
        self.n_features = int(arrays["n_features"])
        self.n_trees = int(arrays["n_trees"])
        # The Engine interface: a regressor has no classes.
        self.classes: NDArray[Any] | None = arrays["classes"] if self.kind == "classifier" else None
        self.leaf_values: NDArray[np.float64] = arrays["leaf_values"]
        self.leaf_offsets: NDArray[np.intp] = arrays["leaf_offsets"].astype(np.intp)
        self.thresholds = [arrays[f"thresholds_{f}"] for f in range(self.n_features)]
        self.leaf_masks = [arrays[f"leaf_masks_{f}"] for f in range(self.n_features)]
        self.split_features = [f for f in range(self.n_features) if self.thresholds[f].size]
        self.words = int(arrays["words"])
        self.mask_dtype = arrays["leaf_masks_0"].dtype

    @classmethod
    def load(cls, source: Path | BinaryIO) -> CompiledForest:
        """Read a .npz of plain arrays; allow_pickle=False, so loading never runs code."""
        with np.load(source, allow_pickle=False) as stored:
            return cls({name: stored[name] for name in stored.files})

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
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {features.shape}")
        leaves = self._leaves(features)
        if leaves.size <= GATHERED_SUM_LIMIT:
            total = np.add.accumulate(self.leaf_values[leaves], axis=1)[:, -1, :]
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
