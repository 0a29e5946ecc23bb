"""Gradient-boosted trees (GradientBoosting* and HistGradientBoosting*) compiled to plain arrays
and evaluated with numpy alone, bit for bit as scikit-learn 1.9.1 evaluates them.

How scikit-learn computes a boosted model's output: a raw score per output (one for regression
and binary classification, one per class otherwise) starts at a baseline (the init estimator's
prediction for GradientBoosting, `0 + _baseline_prediction` for HistGradientBoosting) and each
tree's leaf value is added to its output's score, iteration by iteration (GradientBoosting adds
`learning_rate * value`, a product done here at build time, the same float64 product). The
score then goes through the loss's link: identity, `np.exp`, scipy's `expit` (libm's `exp`
per element: `math.exp` is the same function, numpy's own `exp` is not), or softmax with
numpy's `exp` over the score array in scikit-learn's memory order (the order of its sums).
GradientBoosting compares float32 features (`float64(float32(x)) <= threshold`) and refuses
NaN and infinity; HistGradientBoosting compares float64 features, sends NaN where the split
learned to (`missing_go_to_left`), and reads categorical features through an OrdinalEncoder:
a value equal to a known category is that category's code, any other value (NaN included)
is missing; a code goes left when it is in the split's bitset, right when not.

How this finds the leaves (the bitvector method of QuickScorer, as in forest.py,
extended to missing values and categories): every feature's value falls in a bin, its
position among the feature's sorted split thresholds (plus a last bin for NaN), or its known
category's code (plus a last bin for unknown and missing). Each split's outcome is constant
over a bin, so `leaf_masks[f][bin, tree]` holds the AND of the leaf masks of the splits on
`f` that send that bin right; ANDed over features, the lowest set bit is the leaf reached.
Only comparisons decide the leaf and the sums run in scikit-learn's order, so the score is
exact; the link is the same function from the same library.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from serving.engines.base import WORD_BITS, Arrays, check_format_version, check_width

FORMAT_VERSION = 1
# Rows evaluated together: the (rows, trees) mask array of a block stays in the CPU's cache.
BLOCK_ROWS = 2048
# Up to this many rows, per-call overhead dominates: leaf values are summed with one numpy
# call rather than one per tree.
FEW_ROWS = 64

Link = Literal["identity", "exp", "logit", "half_logit", "softmax"]
LINKS: tuple[Link, ...] = ("identity", "exp", "logit", "half_logit", "softmax")
NUMERIC, CATEGORICAL = 0, 1


def _exp_or_inf(value: float) -> float:
    try:
        return math.exp(value)
    except OverflowError:  # libm's exp returns inf, which math.exp reports as an error
        return math.inf


def expit(raw: NDArray[np.float64]) -> NDArray[np.float64]:
    """scipy.special.expit to the bit: `1 / (1 + exp(-x))` with libm's exp, which scipy calls
    per element as math.exp does (numpy's own vectorised exp differs in the last bit for some
    values); numpy's additions and divisions are IEEE's, as scipy's are."""
    negated = (-raw).tolist()
    try:
        exps = np.fromiter(map(math.exp, negated), dtype=np.float64, count=raw.size)
    except OverflowError:
        exps = np.fromiter(map(_exp_or_inf, negated), dtype=np.float64, count=raw.size)
    result: NDArray[np.float64] = 1.0 / (1.0 + exps)
    return result


def _known_link(name: str) -> Link:
    for link in LINKS:
        if link == name:
            return link
    raise ValueError(f"unknown link {name!r}; this function knows {list(LINKS)}")


class BoostedTrees:
    """A GradientBoosting or HistGradientBoosting classifier or regressor as arrays."""

    def __init__(self, arrays: Arrays) -> None:
        check_format_version(arrays, "", "boosted trees", FORMAT_VERSION)
        self.link = _known_link(str(arrays["link"]))
        self.n_features = int(arrays["n_features"])
        self.classes: NDArray[Any] | None = arrays["classes"] if bool(arrays["is_classifier"]) else None
        self.n_outputs = int(arrays["baseline"].size)
        self.baseline: NDArray[np.float64] = arrays["baseline"].astype(np.float64)
        self.positive_at_zero = bool(arrays["positive_at_zero"])
        self.float32_features = bool(arrays["float32_features"])
        raw_order = str(arrays["raw_order"])
        if raw_order not in ("C", "F"):
            raise ValueError(f"unknown memory order {raw_order!r} for the raw scores; expected 'C' or 'F'")
        self.raw_order: Literal["C", "F"] = "F" if raw_order == "F" else "C"
        self.leaf_values: NDArray[np.float64] = arrays["leaf_values"]
        self.leaf_offsets: NDArray[np.intp] = arrays["leaf_offsets"].astype(np.intp)
        self.n_trees = self.leaf_offsets.size
        self.tree_values = np.split(self.leaf_values, self.leaf_offsets[1:])
        self.words = int(arrays["words"])
        self.split_features = [int(f) for f in arrays["split_features"]]
        self.feature_kinds = arrays["feature_kinds"]
        self.split_values = {f: arrays[f"split_values_{f}"] for f in self.split_features}
        self.leaf_masks = {f: arrays[f"leaf_masks_{f}"] for f in self.split_features}
        self.mask_dtype = np.dtype(str(arrays["mask_dtype"]))

    def _features(self, rows: NDArray[Any]) -> NDArray[np.float64]:
        # Converted in one step to the dtype scikit-learn converts them to (twice could round twice).
        # A value beyond float32's range becomes inf, refused below as scikit-learn refuses it.
        with np.errstate(over="ignore"):
            features = np.asarray(rows, dtype=np.float32 if self.float32_features else np.float64)
        check_width(features, self.n_features)
        if self.float32_features:
            if not np.isfinite(features).all():
                raise ValueError("the rows contain NaN or infinity, or a value too large for float32")
            return features.astype(np.float64)
        return features

    def _bins(self, feature: int, column: NDArray[np.float64]) -> NDArray[np.intp]:
        values = self.split_values[feature]
        bins = np.searchsorted(values, column, side="left")
        if self.feature_kinds[feature] == CATEGORICAL:
            # Only a value equal to a known category has its code; every other value is missing.
            known = values.take(np.minimum(bins, values.size - 1)) == column
            return np.where(known, bins, values.size)
        missing = np.isnan(column)
        if missing.any():
            bins[missing] = values.size + 1
        return bins

    def _positions(self, features: NDArray[np.float64]) -> NDArray[np.integer[Any]]:
        """The position, among its tree's leaves, of the leaf each row reaches in each tree:
        shape (rows, trees)."""
        full = np.iinfo(self.mask_dtype).max
        reachable = np.full((features.shape[0], self.n_trees, self.words), full, self.mask_dtype)
        for feature in self.split_features:
            reachable &= np.take(self.leaf_masks[feature], self._bins(feature, features[:, feature]), axis=0)
        if self.words == 1:
            word = reachable[:, :, 0]
        else:
            word_index = np.argmax(reachable != 0, axis=2)
            word = np.take_along_axis(reachable, word_index[:, :, None], axis=2)[:, :, 0]
        # The bits below the lowest set bit, counted: (word & -word) - 1, in place.
        below = ~word
        below += self.mask_dtype.type(1)
        below &= word
        below -= self.mask_dtype.type(1)
        positions = np.bitwise_count(below)
        if self.words == 1:
            return positions
        return word_index * WORD_BITS + positions

    def _raw(self, rows: NDArray[Any]) -> NDArray[np.float64]:
        """The raw scores, shape (rows, outputs), in scikit-learn's memory order.

        Trees are stored iteration by iteration, one per output; each output's score is its
        baseline plus its trees' values one at a time, in that order, as scikit-learn adds them.
        """
        features = self._features(rows)
        raw = np.empty((features.shape[0], self.n_outputs), dtype=np.float64, order=self.raw_order)
        for start in range(0, features.shape[0], BLOCK_ROWS):
            block = features[start : start + BLOCK_ROWS]
            positions = self._positions(block)
            if block.shape[0] <= FEW_ROWS:
                # All values at once, then one sequential add.accumulate over iterations
                # (v0 + baseline is baseline + v0: IEEE addition commutes).
                values = self.leaf_values.take(positions + self.leaf_offsets).reshape(
                    block.shape[0], -1, self.n_outputs
                )
                values[:, 0, :] += self.baseline
                raw[start : start + BLOCK_ROWS] = np.add.accumulate(values, axis=1)[:, -1, :]
            else:
                # Tree by tree into one contiguous score per output: less memory traffic.
                scores = np.repeat(self.baseline[:, None], block.shape[0], axis=1)
                for tree, tree_positions in enumerate(np.ascontiguousarray(positions.T)):
                    scores[tree % self.n_outputs] += self.tree_values[tree].take(tree_positions)
                raw[start : start + BLOCK_ROWS] = scores.T
        return raw

    def _proba(self, raw: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.link == "softmax":
            # scikit-learn's softmax on a copy of the scores, in their memory order.
            scores = raw.copy(order="K")
            scores -= np.max(scores, axis=1).reshape(-1, 1)
            np.exp(scores, out=scores)
            scores /= np.sum(scores, axis=1).reshape(-1, 1)
            return scores
        score = raw[:, 0]
        proba = np.empty((raw.shape[0], 2), dtype=np.float64)
        proba[:, 1] = expit(2 * score if self.link == "half_logit" else score)
        proba[:, 0] = 1 - proba[:, 1]
        return proba

    def predict_proba(self, rows: NDArray[Any]) -> NDArray[np.float64]:
        if self.classes is None:
            raise TypeError("predict_proba is only defined for classifiers")
        return self._proba(self._raw(rows))

    def predict(self, rows: NDArray[Any]) -> NDArray[Any]:
        raw = self._raw(rows)
        if self.classes is None:
            score = np.ascontiguousarray(raw[:, 0])
            return np.exp(score) if self.link == "exp" else score
        if self.n_outputs == 1:
            positive = raw[:, 0] >= 0 if self.positive_at_zero else raw[:, 0] > 0
            return self.classes.take(positive.astype(np.intp), axis=0)
        return self.classes.take(np.argmax(raw, axis=1), axis=0)
