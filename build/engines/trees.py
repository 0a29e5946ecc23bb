"""Build a TreeEnsemble (serving/engines/trees.py) from trees as a library holds them, and the
probe rows and guarantee every tree compiler shares. The family compilers (forest.py,
boosting.py, and those of XGBoost and LightGBM) read their library's trees into `LibraryTree`s
and the model-level settings into `assemble`'s arguments; nothing else writes tree arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from serving.engines.links import LINKS
from serving.engines.trees import BITSET_WORD_BITS, MISSING_NAN, TreeEnsemble
from serving.manifest import Guarantee

# Links that are comparisons and sums only: the same bits on any CPU.
EXACT_ANYWHERE_LINKS = frozenset({"identity"})
# The gate's probes: at most this many rows of thresholds and their neighbours.
PROBE_ROW_BUDGET = 60_000
PROBE_RANDOM_ROWS = 2_000
PROBE_SEED = 0


@dataclass(frozen=True)
class LibraryTree:
    """One tree as its library numbers its nodes: node 0 is the root, `left[n] == -1` marks a leaf.

    Per node: `feature`, `threshold` (float64, as the library compares it), `default_left`,
    `missing` (serving/engines/trees.py's MISSING_*), and `value`, a leaf's value vector (rows of
    internal nodes are ignored). `categories` maps a categorical node to its bitset words (bit `c`
    set: code `c` goes left)."""

    left: NDArray[np.intp]
    right: NDArray[np.intp]
    feature: NDArray[np.intp]
    threshold: NDArray[np.float64]
    value: NDArray[np.floating[Any]]
    default_left: NDArray[np.bool_] | None = None
    missing: NDArray[np.uint8] | None = None
    categories: dict[int, NDArray[np.uint32]] = field(default_factory=dict)


def float32_thresholds(thresholds: NDArray[np.float64], comparison: str) -> NDArray[np.float32]:
    """float32 thresholds that decide every float32 input as the float64 ones do: for `x <= t` the
    largest float32 not above `t`, for `x < t` the smallest not below it."""
    rounded = thresholds.astype(np.float32)
    widened = rounded.astype(np.float64)
    if comparison == "<=":
        return np.where(widened > thresholds, np.nextafter(rounded, np.float32(-np.inf)), rounded)
    return np.where(widened < thresholds, np.nextafter(rounded, np.float32(np.inf)), rounded)


def _breadth_first(tree: LibraryTree) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The tree's internal nodes and its leaves, each in breadth-first order (a child after its parent)."""
    internal: list[NDArray[np.intp]] = []
    leaves: list[NDArray[np.intp]] = []
    frontier = np.array([0], dtype=np.intp)
    while frontier.size:
        is_leaf = tree.left[frontier] == -1
        leaves.append(frontier[is_leaf])
        split = frontier[~is_leaf]
        internal.append(split)
        frontier = np.stack([tree.left[split], tree.right[split]], axis=1).reshape(-1)
    return np.concatenate(internal), np.concatenate(leaves)


def bitset(codes: Sequence[int] | NDArray[Any]) -> NDArray[np.uint32]:
    """The uint32 words with bit `c` set for every code `c`."""
    codes = np.asarray(codes, dtype=np.int64)
    words = np.zeros(int(codes.max(initial=-1)) // BITSET_WORD_BITS + 1, dtype=np.uint32)
    np.bitwise_or.at(words, codes // BITSET_WORD_BITS, (np.uint32(1) << (codes % BITSET_WORD_BITS)).astype(np.uint32))
    return words


def assemble(
    trees: Sequence[LibraryTree],
    *,
    kind: str,
    n_features: int,
    classes: NDArray[Any] | None,
    input_dtype: str,
    input_check: str,
    comparison: str,
    tree_output: Sequence[int],
    base_score: NDArray[np.floating[Any]],
    average: bool,
    link: str,
    decision: str,
    value_dtype: str = "float64",
    link_parameter: float = 1.0,
    score_order: str = "C",
    category_rule: str = "known",
    known_categories: dict[int, NDArray[np.uint32]] | None = None,
) -> TreeEnsemble:
    """The validated TreeEnsemble of `trees`, in tree order, with the model's settings (their
    meaning is serving/engines/trees.py's)."""
    features, thresholds, children, default_left, missing = [], [], [], [], []
    leaf_values, categorical_nodes, category_words = [], [], []
    node_offsets, leaf_offsets = [0], [0]
    for tree in trees:
        internal, leaves = _breadth_first(tree)
        node_base, leaf_base = node_offsets[-1], leaf_offsets[-1]
        # Where each library node lands: internal node index, or ~leaf index.
        position = np.empty(tree.left.size, dtype=np.int64)
        position[internal] = node_base + np.arange(internal.size)
        position[leaves] = ~(leaf_base + np.arange(leaves.size))
        features.append(tree.feature[internal])
        thresholds.append(tree.threshold[internal])
        children.append(np.stack([position[tree.left[internal]], position[tree.right[internal]]], axis=1).reshape(-1))
        n_internal = internal.size
        default_left.append(
            tree.default_left[internal] if tree.default_left is not None else np.zeros(n_internal, dtype=bool)
        )
        missing.append(
            tree.missing[internal] if tree.missing is not None else np.full(n_internal, MISSING_NAN, dtype=np.uint8)
        )
        leaf_values.append(np.asarray(tree.value)[leaves])
        for node in sorted(tree.categories, key=lambda node: int(position[node])):
            categorical_nodes.append(int(position[node]))
            category_words.append(tree.categories[node])
        node_offsets.append(node_base + n_internal)
        leaf_offsets.append(leaf_base + leaves.size)
    threshold = np.concatenate(thresholds).astype(np.float64)
    if input_dtype == "float32":
        stored_thresholds: NDArray[Any] = float32_thresholds(threshold, comparison)
    else:
        stored_thresholds = threshold
    known = known_categories or {}
    known_words = [known.get(feature, np.zeros(0, dtype=np.uint32)) for feature in range(n_features)]
    # Categorical nodes hold no threshold; 0 keeps the array free of NaN.
    stored_thresholds[np.array(categorical_nodes, dtype=np.intp)] = 0
    ensemble = TreeEnsemble(
        kind=kind,
        n_features=n_features,
        classes=classes,
        input_dtype=input_dtype,
        input_check=input_check,
        comparison=comparison,
        category_rule=category_rule,
        feature=np.concatenate(features).astype(np.int32),
        threshold=stored_thresholds,
        children=np.concatenate(children).astype(np.int32),
        default_left=np.concatenate(default_left).astype(bool),
        missing=np.concatenate(missing).astype(np.uint8),
        node_offsets=np.array(node_offsets, dtype=np.int32),
        leaf_offsets=np.array(leaf_offsets, dtype=np.int32),
        categorical_nodes=np.array(categorical_nodes, dtype=np.int32),
        category_offsets=np.cumsum([0] + [words.size for words in category_words]).astype(np.int32),
        category_bitsets=np.concatenate([np.zeros(0, dtype=np.uint32), *category_words]).astype(np.uint32),
        known_offsets=np.cumsum([0] + [words.size for words in known_words]).astype(np.int32),
        known_bitsets=np.concatenate([np.zeros(0, dtype=np.uint32), *known_words]).astype(np.uint32),
        tree_output=np.asarray(tree_output, dtype=np.int32),
        leaf_values=np.ascontiguousarray(np.concatenate(leaf_values).astype(value_dtype)),
        base_score=np.asarray(base_score, dtype=value_dtype).reshape(-1),
        average=average,
        link=link,
        link_parameter=float(link_parameter),
        score_order=score_order,
        decision=decision,
    )
    ensemble.validate()
    return ensemble


def guarantee(ensemble: TreeEnsemble) -> Guarantee:
    """ "bitwise-anywhere" when the answer is comparisons and ordered sums (and a forest's one
    division); "bitwise-same-libraries" when a link calls exp."""
    assert ensemble.link in LINKS
    return "bitwise-anywhere" if ensemble.link in EXACT_ANYWHERE_LINKS else "bitwise-same-libraries"
