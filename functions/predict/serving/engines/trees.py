"""The one format of every compiled tree ensemble (scikit-learn forests and boosting, XGBoost,
LightGBM): a frozen dataclass of plain arrays, owned here, built by the compilers in build/engines/
and evaluated by serving/engines/tree_engine.py. Like treelite's model builder, it records each
library's arithmetic rather than one library's: the comparison, the missing-value and category
rules, the dtype of the inputs and of the sums, the start values and the link.

How an ensemble computes its output for a row `x`:

1. Input. `x` is converted once to `input_dtype` (float32 or float64), as the library converts it;
   `input_check` says what the library refuses after that: "finite" (NaN and infinity), "no_infinity"
   (infinity only; NaN is missing) or "any"; a feature with known categories (rule "known") refuses
   infinity whatever `input_check` says, as scikit-learn's category encoder does.
2. Trees. Tree `t`'s internal nodes are `node_offsets[t]:node_offsets[t+1]` (its root first) and its
   leaves `leaf_offsets[t]:leaf_offsets[t+1]`; a tree of one leaf has no internal node. At node `n`,
   `children[2n]` is the left child and `children[2n+1]` the right one: a value `c >= 0` is internal
   node `c` (always `c > n`), a value `c < 0` is leaf `~c`. Every node and leaf has exactly one
   parent, so each tree is a tree.
3. A numeric split reads `v = x[feature[n]]` and goes left when `v <= threshold[n]` (`comparison`
   "<=": scikit-learn, LightGBM) or `v < threshold[n]` ("<": XGBoost), compared in `input_dtype`
   (a float64 threshold of a float32 model is stored as the largest float32 not above it, which
   decides every float32 input the same way). What is missing goes to the default child
   (`default_left[n]`); `missing[n]` says what is missing:
   - MISSING_NAN (0): NaN (scikit-learn, XGBoost, LightGBM's NaN type);
   - MISSING_ZERO (1): LightGBM's Zero type: NaN becomes 0.0, then `|v| <= ZERO_THRESHOLD` is missing;
   - MISSING_NONE (2): LightGBM's None type: NaN becomes 0.0 and nothing is missing.
4. A categorical split (its node listed in `categorical_nodes`, sorted) goes left when the value's
   category code is in its bitset: `category_bitsets[category_offsets[i]:category_offsets[i+1]]`
   for the i-th categorical node, bit `c % 32` of word `c // 32`, beyond the last word not set.
   `category_rule` says how a value becomes a code:
   - "known" (scikit-learn's HistGradientBoosting): a feature with known categories is categorical
     (every split on it is, and only those are); the code of a value equal to one of its known
     categories, `known_categories[known_offsets[f]:known_offsets[f+1]]` (sorted), is its
     position among them; anything else (NaN, an unknown category) is missing and goes to the
     default child (a categorical split's missing rule is MISSING_NAN);
   - "truncate" (LightGBM): NaN is missing under MISSING_NAN and 0.0 otherwise; the code is the
     value truncated to an integer; a negative code (or one beyond int32) is missing.
     `known_categories` is empty.
5. Sums. Each output score (`base_score.size` of them, dtype = `leaf_values.dtype`, float32 for
   XGBoost) starts at `base_score` (`init_`, `base_score`, boost-from-average; -0.0 for a single
   scikit-learn tree, which answers its leaf as it is, where a forest adds its leaves to +0.0) and
   adds, tree by tree in tree order, the reached leaf's value vector `leaf_values[leaf]` to outputs
   `tree_output[t]:tree_output[t] + leaf_values.shape[1]`. With `average`, each output is then
   divided by the number of trees that added to it, if any (random forests).
6. Output. `link` (serving/engines/links.py, each computed as its library computes it, with
   `link_parameter` where it takes one, e.g. LightGBM's `sigmoid`) turns the scores, laid out in
   `score_order` ("C" or "F": the memory order of the library's own score array, which decides
   the order of numpy's sums in a softmax), into a regressor's values (one column) or a
   classifier's probabilities (a column per class of `classes`). A classifier's label is
   `classes[i]` where `decision` picks `i`: "argmax_proba" (first maximum of the probabilities),
   "argmax_raw" (of the scores), "raw_above_zero" (score > 0), "raw_at_least_zero" (score >= 0),
   "proba_above_half" (probability of the second class > 0.5). A regressor's decision is "value".

The arrays are stored under `<prefix><field>` (a pipeline keeps its final step under
`<prefix>final/`); `classes` as serving/engines/values.py stores labels. `validate` runs at load:
an array that could not have come from a compiler is refused with the first problem named.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from serving.engines.base import ENGINE_KEY, KINDS, Arrays, check_format_version
from serving.engines.links import LINKS
from serving.engines.values import label_arrays, labels

ENGINE = "trees"
FORMAT_VERSION = 1
MISSING_NAN, MISSING_ZERO, MISSING_NONE = 0, 1, 2
ZERO_THRESHOLD = float(np.float32(1e-35))
"""LightGBM's kZeroThreshold: the float literal 1e-35f, widened to double."""
INPUT_DTYPES = ("float32", "float64")
INPUT_CHECKS = ("any", "no_infinity", "finite")
COMPARISONS = ("<=", "<")
CATEGORY_RULES = ("known", "truncate")
SCORE_ORDERS = ("C", "F")
CLASSIFIER_DECISIONS = ("argmax_proba", "argmax_raw", "raw_above_zero", "raw_at_least_zero", "proba_above_half")
REGRESSOR_DECISION = "value"
BITSET_WORD_BITS = 32
# Node and leaf counts index int32 arrays.
MAX_INDEX = np.iinfo(np.int32).max


class InvalidTreeEnsembleError(ValueError):
    """The arrays are not a tree ensemble this code can evaluate safely; names the first problem."""


def _require(condition: bool | np.bool_, problem: str) -> None:
    if not condition:
        raise InvalidTreeEnsembleError(problem)


def _check(array: Any, name: str, dtypes: tuple[str, ...], ndim: int) -> None:
    _require(isinstance(array, np.ndarray), f"{name} is not an array")
    _require(
        array.dtype.name in dtypes and array.ndim == ndim,
        f"{name} is a {array.ndim}-d {array.dtype} array, expected {ndim}-d {' or '.join(dtypes)}",
    )


def _check_offsets(offsets: NDArray[Any], name: str, size: int, end: int, strict: bool) -> None:
    _check(offsets, name, ("int32",), 1)
    steps = np.diff(offsets)
    _require(
        offsets.size == size
        and offsets[0] == 0
        and offsets[-1] == end
        and bool((steps > 0 if strict else steps >= 0).all()),
        f"{name} must be {size} {'increasing' if strict else 'non-decreasing'} offsets from 0 to {end}",
    )


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """A tree ensemble as plain arrays; the module docstring says how it computes its output."""

    kind: str
    """"classifier" or "regressor"."""
    n_features: int
    classes: NDArray[Any] | None
    """A classifier's `classes_`, in the order of its probability columns; None for a regressor."""
    input_dtype: str
    input_check: str
    comparison: str
    category_rule: str
    feature: NDArray[np.int32]
    """Per internal node: the input column it reads."""
    threshold: NDArray[np.floating[Any]]
    """Per internal node, in `input_dtype`; unused (0) at categorical nodes."""
    children: NDArray[np.int32]
    """Per internal node two entries, left then right: an internal node, or `~leaf` when negative."""
    default_left: NDArray[np.bool_]
    missing: NDArray[np.uint8]
    node_offsets: NDArray[np.int32]
    """n_trees + 1 offsets into the internal nodes."""
    leaf_offsets: NDArray[np.int32]
    """n_trees + 1 offsets into the leaves."""
    categorical_nodes: NDArray[np.int32]
    category_offsets: NDArray[np.int32]
    category_bitsets: NDArray[np.uint32]
    known_offsets: NDArray[np.int32]
    """n_features + 1 offsets into `known_categories` (rule "known"; all zero otherwise)."""
    known_categories: NDArray[np.float64]
    """Each feature's known categories, sorted (rule "known")."""
    tree_output: NDArray[np.int32]
    """Per tree: the first output its leaf values add to."""
    leaf_values: NDArray[np.floating[Any]]
    """(n_leaves, width), float32 or float64: the dtype of the sums."""
    base_score: NDArray[np.floating[Any]]
    """One start value per output, dtype of `leaf_values`."""
    average: bool
    link: str
    link_parameter: float
    score_order: str
    decision: str

    @property
    def n_trees(self) -> int:
        return int(self.node_offsets.size - 1)

    @property
    def n_nodes(self) -> int:
        return int(self.feature.size)

    @property
    def n_leaves(self) -> int:
        return int(self.leaf_values.shape[0])

    @property
    def n_outputs(self) -> int:
        return int(self.base_score.size)

    @classmethod
    def from_arrays(cls, arrays: Arrays, prefix: str = "") -> TreeEnsemble:
        """The ensemble stored under `prefix`, validated; InvalidTreeEnsembleError names what is wrong."""
        check_format_version(arrays, prefix, "tree ensemble", FORMAT_VERSION)
        values: dict[str, Any] = {}
        for field in fields(cls):
            key = prefix + field.name
            if field.name == "classes":
                values["classes"] = labels(arrays, key) if key in arrays else None
                continue
            _require(key in arrays, f"{field.name} is missing")
            array = arrays[key]
            if field.type in ("str", "int", "float", "bool"):
                _require(array.ndim == 0, f"{field.name} is not a scalar")
                converted = {"str": str, "int": int, "float": float, "bool": bool}[str(field.type)]
                _require(
                    array.dtype.kind in {"str": "U", "int": "iu", "float": "f", "bool": "b"}[str(field.type)],
                    f"{field.name} is a {array.dtype} scalar, expected a {field.type}",
                )
                values[field.name] = converted(array)
            else:
                values[field.name] = array
        ensemble = cls(**values)
        ensemble.validate()
        return ensemble

    def to_arrays(self, prefix: str = "") -> dict[str, NDArray[Any]]:
        """The arrays to store, under `prefix`, with `<prefix>engine` naming this format."""
        self.validate()
        arrays: dict[str, NDArray[Any]] = {ENGINE_KEY: np.array(ENGINE), "format_version": np.array(FORMAT_VERSION)}
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "classes":
                if value is not None:
                    arrays |= label_arrays(value, "classes")
            else:
                arrays[field.name] = np.asarray(value)
        return {prefix + key: value for key, value in arrays.items()}

    def validate(self) -> None:
        """Refuse arrays that could not have come from a compiler: every array's dtype and shape,
        indices in range, each tree a tree (every node and leaf one parent, children after their
        parent), finite values, known names for the rules."""
        _require(self.kind in KINDS, f"kind {self.kind!r} is not one of {KINDS}")
        _require(1 <= self.n_features <= MAX_INDEX, f"n_features {self.n_features} must be from 1 to {MAX_INDEX}")
        _require(self.input_dtype in INPUT_DTYPES, f"input_dtype {self.input_dtype!r} is not one of {INPUT_DTYPES}")
        _require(self.input_check in INPUT_CHECKS, f"input_check {self.input_check!r} is not one of {INPUT_CHECKS}")
        _require(self.comparison in COMPARISONS, f"comparison {self.comparison!r} is not one of {COMPARISONS}")
        _require(
            self.category_rule in CATEGORY_RULES, f"category_rule {self.category_rule!r} is not one of {CATEGORY_RULES}"
        )
        _require(self.link in LINKS, f"link {self.link!r} is not one of {sorted(LINKS)}")
        _require(bool(np.isfinite(self.link_parameter)), f"link_parameter {self.link_parameter} is not finite")
        _require(self.score_order in SCORE_ORDERS, f"score_order {self.score_order!r} is not one of {SCORE_ORDERS}")
        self._validate_nodes()
        self._validate_trees()
        self._validate_categories()
        self._validate_outputs()

    def _validate_nodes(self) -> None:
        n_nodes = self.feature.size if isinstance(self.feature, np.ndarray) else 0
        _check(self.feature, "feature", ("int32",), 1)
        _require(
            bool(((self.feature >= 0) & (self.feature < self.n_features)).all()),
            f"feature holds a column outside 0..{self.n_features - 1}",
        )
        _check(self.threshold, "threshold", (self.input_dtype,), 1)
        _require(self.threshold.size == n_nodes, f"threshold has {self.threshold.size} entries for {n_nodes} nodes")
        _require(not bool(np.isnan(self.threshold).any()), "threshold holds NaN")
        _check(self.children, "children", ("int32",), 1)
        _require(self.children.size == 2 * n_nodes, f"children has {self.children.size} entries for {n_nodes} nodes")
        _check(self.default_left, "default_left", ("bool",), 1)
        _require(
            self.default_left.size == n_nodes, f"default_left has {self.default_left.size} entries for {n_nodes} nodes"
        )
        _check(self.missing, "missing", ("uint8",), 1)
        _require(self.missing.size == n_nodes, f"missing has {self.missing.size} entries for {n_nodes} nodes")
        _require(bool((self.missing <= MISSING_NONE).all()), "missing holds an unknown rule")

    def _validate_trees(self) -> None:
        _check(self.node_offsets, "node_offsets", ("int32",), 1)
        n_trees = self.node_offsets.size - 1
        _require(n_trees >= 1, "an ensemble needs at least one tree")
        _check(self.leaf_values, "leaf_values", ("float32", "float64"), 2)
        _require(self.leaf_values.shape[1] >= 1, "leaf_values has no columns")
        _require(bool(np.isfinite(self.leaf_values).all()), "leaf_values are not all finite")
        _check_offsets(self.node_offsets, "node_offsets", n_trees + 1, self.n_nodes, strict=False)
        _check_offsets(self.leaf_offsets, "leaf_offsets", n_trees + 1, self.n_leaves, strict=True)
        nodes_per_tree = np.diff(self.node_offsets)
        _require(
            bool((np.diff(self.leaf_offsets) == nodes_per_tree + 1).all()),
            "a tree does not have one leaf more than it has internal nodes",
        )
        # Each child must be a later node of the same tree, or a leaf of the same tree.
        tree_of_node = np.repeat(np.arange(n_trees, dtype=np.intp), nodes_per_tree)
        parent = np.repeat(np.arange(self.n_nodes, dtype=np.intp), 2)
        tree = tree_of_node[parent]
        child = self.children.astype(np.int64)
        internal = child >= 0
        leaf = ~child
        in_tree = np.where(
            internal,
            (child > parent) & (child < self.node_offsets[tree + 1]),
            (leaf >= self.leaf_offsets[tree]) & (leaf < self.leaf_offsets[tree + 1]),
        )
        _require(bool(in_tree.all()), "children holds a node or leaf outside its tree, or a node before its parent")
        node_parents = np.bincount(child[internal], minlength=self.n_nodes)
        roots = self.node_offsets[:-1][nodes_per_tree > 0]
        expected_node_parents = np.ones(self.n_nodes, dtype=np.intp)
        expected_node_parents[roots] = 0
        _require(bool((node_parents == expected_node_parents).all()), "a node has no parent or several")
        leaf_parents = np.bincount(leaf[~internal], minlength=self.n_leaves)
        expected_leaf_parents = np.ones(self.n_leaves, dtype=np.intp)
        expected_leaf_parents[self.leaf_offsets[:-1][nodes_per_tree == 0]] = 0
        _require(bool((leaf_parents == expected_leaf_parents).all()), "a leaf has no parent or several")

    def _validate_categories(self) -> None:
        _check(self.categorical_nodes, "categorical_nodes", ("int32",), 1)
        n_categorical = self.categorical_nodes.size
        _require(
            bool((np.diff(self.categorical_nodes) > 0).all())
            and (n_categorical == 0 or (self.categorical_nodes[0] >= 0 and self.categorical_nodes[-1] < self.n_nodes)),
            "categorical_nodes must be increasing node indices",
        )
        _check(self.category_bitsets, "category_bitsets", ("uint32",), 1)
        _check_offsets(
            self.category_offsets, "category_offsets", n_categorical + 1, self.category_bitsets.size, strict=False
        )
        _check(self.known_categories, "known_categories", ("float64",), 1)
        _check_offsets(
            self.known_offsets, "known_offsets", self.n_features + 1, self.known_categories.size, strict=False
        )
        _require(bool(np.isfinite(self.known_categories).all()), "known_categories are not all finite")
        offsets = self.known_offsets
        increasing = all(
            bool((np.diff(self.known_categories[offsets[f] : offsets[f + 1]]) > 0).all())
            for f in range(self.n_features)
        )
        _require(increasing, "each feature's known_categories must be strictly increasing")
        if self.category_rule == "known":
            # A feature of known categories is read as codes: every split on it is categorical, and a
            # categorical split reads such a feature.
            categorical = np.zeros(self.n_nodes, dtype=bool)
            categorical[self.categorical_nodes] = True
            has_categories = np.diff(self.known_offsets) > 0
            _require(
                bool((has_categories[self.feature] == categorical).all()),
                "under the known rule, the splits on a feature are categorical exactly when it has known categories",
            )
            _require(
                bool((self.missing[self.categorical_nodes] == MISSING_NAN).all()),
                "under the known rule, a categorical split's missing value is NaN",
            )

    def _validate_outputs(self) -> None:
        _check(self.base_score, "base_score", (self.leaf_values.dtype.name,), 1)
        _require(self.base_score.size >= 1, "base_score is empty")
        _require(bool(np.isfinite(self.base_score).all()), "base_score is not all finite")
        _check(self.tree_output, "tree_output", ("int32",), 1)
        width = self.leaf_values.shape[1]
        _require(
            self.tree_output.size == self.n_trees
            and bool(((self.tree_output >= 0) & (self.tree_output + width <= self.n_outputs)).all()),
            f"tree_output must give each of the {self.n_trees} trees outputs within the {self.n_outputs} scores",
        )
        if self.kind == "classifier":
            _require(self.classes is not None, "a classifier has no classes")
            assert self.classes is not None
            _require(
                self.classes.ndim == 1
                and self.classes.size >= 1
                and len(set(self.classes.tolist())) == self.classes.size,
                "classes must be unique",
            )
            # A score per class, or one score for two classes (a binary model's raw score).
            _require(
                self.classes.size == self.n_outputs or (self.n_outputs == 1 and self.classes.size == 2),
                f"{self.classes.size} classes for {self.n_outputs} scores",
            )
            _require(
                self.decision in CLASSIFIER_DECISIONS,
                f"decision {self.decision!r} is not one of {CLASSIFIER_DECISIONS}",
            )
        else:
            _require(self.classes is None, "a regressor has classes")
            _require(self.decision == REGRESSOR_DECISION, f"a regressor's decision is {REGRESSOR_DECISION!r}")
