"""Build a TreeEnsemble (serving/engines/trees.py) from trees as a library holds them, and the
probe rows and guarantee every tree compiler shares. The family compilers (forest.py,
boosting.py, and those of XGBoost and LightGBM) read their library's trees into `LibraryTree`s
and the model-level settings into `assemble`'s arguments; nothing else writes tree arrays.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from build.engines.base import Compiler
from serving.engines.links import LINKS, NO_PARAMETER
from serving.engines.trees import BITSET_WORD_BITS, MISSING_NAN, MISSING_ZERO, ZERO_THRESHOLD, TreeEnsemble
from serving.manifest import Guarantee

# Links that are comparisons and sums only: the same bits on any CPU.
EXACT_ANYWHERE_LINKS = frozenset({"identity", "xgboost_raw_binary"})
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
    # Beyond float32's range a threshold rounds to infinity, moved back below; the largest float32
    # moved up is infinity (every float32 is below such a threshold): no overflow to warn of.
    with np.errstate(over="ignore"):
        rounded = thresholds.astype(np.float32)
        # numpy compares the float32 with the float64 thresholds in float64, exactly.
        if comparison == "<=":
            return np.where(rounded > thresholds, np.nextafter(rounded, np.float32(-np.inf)), rounded)
        return np.where(rounded < thresholds, np.nextafter(rounded, np.float32(np.inf)), rounded)


def _breadth_first(tree: LibraryTree) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The tree's internal nodes and its leaves, each in breadth-first order (a child after its parent)."""
    internal: list[NDArray[np.intp]] = []
    leaves: list[NDArray[np.intp]] = []
    # Not mutated, equivalent: numpy's default integer is intp on the 64-bit machines that build.
    frontier = np.array([0], dtype=np.intp)  # pragma: no mutate
    while frontier.size:
        is_leaf = tree.left[frontier] == -1
        leaves.append(frontier[is_leaf])
        split = frontier[~is_leaf]
        internal.append(split)
        # Not mutated, equivalent: without axis=1 a level's left children come before its right ones; each child
        # is still after its parent, all the format asks, and the answers are the same (siblings side by side here).
        frontier = np.stack([tree.left[split], tree.right[split]], axis=1).ravel()  # pragma: no mutate
    return np.concatenate(internal), np.concatenate(leaves)


def bitset(codes: Sequence[int] | NDArray[Any]) -> NDArray[np.uint32]:
    """The uint32 words with bit `c` set for every code `c`."""
    codes = np.asarray(codes, dtype=np.int64)
    # Not mutated, equivalent: a zero word more sends no code left.
    words = np.zeros(int(codes.max(initial=-1)) // BITSET_WORD_BITS + 1, dtype=np.uint32)  # pragma: no mutate
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
    link_parameter: float = NO_PARAMETER,
    score_order: str = "C",
    category_rule: str = "known",
    known_categories: dict[int, NDArray[np.float64]] | None = None,
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
        position = np.empty_like(tree.left)
        position[internal] = node_base + np.arange(internal.size)
        position[leaves] = ~(leaf_base + np.arange(leaves.size))
        features.append(tree.feature[internal])
        thresholds.append(tree.threshold[internal])
        children.append(np.stack([position[tree.left[internal]], position[tree.right[internal]]], axis=1).ravel())
        n_internal = internal.size
        # Not mutated, equivalent: the TreeEnsemble below casts the joined flags to bool and the rules to uint8.
        all_right = np.zeros(n_internal, dtype=bool)  # pragma: no mutate
        nan_rule = np.full(n_internal, MISSING_NAN, dtype=np.uint8)  # pragma: no mutate
        default_left.append(tree.default_left[internal] if tree.default_left is not None else all_right)
        missing.append(tree.missing[internal] if tree.missing is not None else nan_rule)
        leaf_values.append(np.asarray(tree.value)[leaves])
        for node in sorted(tree.categories, key=lambda node: int(position[node])):
            categorical_nodes.append(int(position[node]))
            category_words.append(tree.categories[node])
        node_offsets.append(node_base + n_internal)
        leaf_offsets.append(leaf_base + leaves.size)
    # Not mutated, equivalent: the compilers' thresholds are float64 already; the cast keeps any other out.
    threshold = np.concatenate(thresholds).astype(np.float64)  # pragma: no mutate
    if input_dtype == "float32":
        stored_thresholds: NDArray[Any] = float32_thresholds(threshold, comparison)
    else:
        stored_thresholds = threshold
    known = known_categories or {}
    # Not mutated, equivalent: they are joined below to a float64 array, which makes them float64.
    # pragma: no mutate start
    known_values = [np.asarray(known.get(feature, ()), dtype=np.float64) for feature in range(n_features)]
    # pragma: no mutate end
    # Categorical nodes hold no threshold; 0 keeps the array free of NaN. Not mutated,
    # equivalent: no walk reads a categorical node's threshold.
    stored_thresholds[np.array(categorical_nodes, dtype=np.intp)] = 0  # pragma: no mutate
    # Not mutated, equivalent: the compilers pass one value an output in the value dtype already.
    start_values = np.asarray(base_score, dtype=value_dtype).ravel()  # pragma: no mutate
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
        category_bitsets=np.concatenate([np.zeros(0, dtype=np.uint32), *category_words]),
        known_offsets=np.cumsum([0] + [values.size for values in known_values]).astype(np.int32),
        known_categories=np.concatenate([np.zeros(0), *known_values]),
        tree_output=np.asarray(tree_output, dtype=np.int32),
        leaf_values=np.ascontiguousarray(np.concatenate(leaf_values).astype(value_dtype)),
        base_score=start_values,
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


FLOAT32_MAX = float(np.finfo(np.float32).max)
# Values far from every threshold: both zeros, float32's smallest subnormal, huge and float32's largest values;
# then, for a model that reads any float64, infinity, huge and float64's smallest subnormal.
FLOAT32_EXTREMES = (0.0, -0.0, 1e-45, -1e-45, 1e30, -1e30, FLOAT32_MAX, -FLOAT32_MAX)
FLOAT64_EXTREMES = (np.inf, -np.inf, 1e300, -1e300, 5e-324, -5e-324)


def _extremes(ensemble: TreeEnsemble) -> NDArray[np.float64]:
    """Values far from every threshold that the library accepts as input."""
    values = list(FLOAT32_EXTREMES)
    if ensemble.input_check != "finite":
        values += [np.nan]
    if ensemble.input_check == "any":
        values += FLOAT64_EXTREMES
    if bool((ensemble.missing == MISSING_ZERO).any()):
        values += [ZERO_THRESHOLD, -ZERO_THRESHOLD, float(np.nextafter(ZERO_THRESHOLD, np.inf)), 1e-36, -1e-36]
    return np.array(values)


def _numeric_values(thresholds: NDArray[Any]) -> NDArray[np.float64]:
    """Every threshold, its neighbours in its own dtype, and (float32) the float64 values halfway
    to them, which the cast to float32 rounds one way or the other."""
    up = np.nextafter(thresholds, thresholds.dtype.type(np.inf))
    down = np.nextafter(thresholds, thresholds.dtype.type(-np.inf))
    values = [thresholds, up, down]
    if thresholds.dtype == np.float32:
        # Not mutated, equivalent: astype(None) is float64 too. The sums widen the neighbours, exact in float64.
        wide = thresholds.astype(np.float64)  # pragma: no mutate
        values += [(wide + up) / 2, (wide + down) / 2]
    stacked = np.concatenate(values)  # float64: the thresholds' own dtype, or widened by `wide`
    return np.unique(stacked[np.isfinite(stacked)])


def _bits(words: NDArray[np.uint32]) -> NDArray[np.float64]:
    """The codes whose bits are set in `words`."""
    unpacked = np.unpackbits(words.astype("<u4").view(np.uint8), bitorder="little")
    # Not mutated, equivalent: the codes are joined to the float64 known categories, which makes them float64.
    return np.flatnonzero(unpacked).astype(np.float64)  # pragma: no mutate


def _categorical_values(ensemble: TreeEnsemble, feature: int, nodes: NDArray[np.intp]) -> NDArray[np.float64]:
    """Every known category and every code of the feature's splits, their float neighbours, and
    values that are no category: negative, fractional, beyond every set, huge."""
    known = ensemble.known_categories[ensemble.known_offsets[feature] : ensemble.known_offsets[feature + 1]]
    index = np.searchsorted(ensemble.categorical_nodes, nodes)
    split_codes = [
        _bits(ensemble.category_bitsets[ensemble.category_offsets[i] : ensemble.category_offsets[i + 1]]) for i in index
    ]
    codes = np.unique(np.concatenate([known, *split_codes]))
    top = float(codes.max(initial=0.0))
    # -0.0, 0.0 and +-1e300 are among the extremes of every model that reads categories (input_check "any").
    others = np.array([-1.0, 0.5, top + 1, top + 0.5, top + 32, top + 256, 2.0**31])
    return np.concatenate([codes, np.nextafter(codes, np.inf), np.nextafter(codes, -np.inf), others])


def probe_values(ensemble: TreeEnsemble) -> list[NDArray[np.float64]]:
    """For each feature, the values that decide its splits: thresholds and their neighbours, or
    categories, codes and non-categories; and the extremes the library accepts."""
    categorical = np.zeros(ensemble.n_nodes, dtype=bool)
    categorical[ensemble.categorical_nodes] = True
    extremes = _extremes(ensemble)
    per_feature = []
    for feature in range(ensemble.n_features):
        at = ensemble.feature == feature
        values = [extremes, _numeric_values(np.unique(ensemble.threshold[at & ~categorical]))]
        if (at & categorical).any():
            values.append(_categorical_values(ensemble, feature, np.flatnonzero(at & categorical)))
        per_feature.append(np.concatenate(values))
    # Not mutated, equivalent: the models that refuse NaN and infinity read float32 inputs, whose values here are
    # finite and within float32's range already (a float32 threshold's neighbour past the largest is infinity,
    # dropped); kept for a model of float64 inputs that refuses them.
    # pragma: no mutate start
    if ensemble.input_check == "finite":
        per_feature = [values[np.isfinite(values) & (np.abs(values) <= FLOAT32_MAX)] for values in per_feature]
    # pragma: no mutate end
    return per_feature


def probe_rows(
    ensemble: TreeEnsemble, reference_rows: NDArray[Any], budget: int = PROBE_ROW_BUDGET
) -> NDArray[np.float64]:
    """Rows for the exactness gate, at most about `budget` + PROBE_RANDOM_ROWS of them: every
    feature's deciding values (probe_values), all features at once (row i holds the i-th value of
    each feature's shuffled list, so the rows are as many as the longest list, not their sum);
    where the budget allows, the same values one feature at a time in a reference row; and
    reference rows with random features made extreme or missing. Over the budget, each list is
    sampled (seeded) down to it: the gate then checks a sample of a production-size model's
    thresholds, and says so through the probe count it logs."""
    rng = np.random.default_rng(PROBE_SEED)
    reference = np.asarray(reference_rows, dtype=np.float64)
    per_feature = probe_values(ensemble)
    # Not mutated, equivalent: at the budget, a sample of every value without replacement is all of them, and
    # replace=None is False to numpy. (replace=True, the mutant that matters, fails the probes' tests.)
    # pragma: no mutate start
    per_feature = [
        values if values.size <= budget else rng.choice(values, size=budget, replace=False) for values in per_feature
    ]
    # pragma: no mutate end
    longest = max(values.size for values in per_feature)
    rows = [np.column_stack([np.resize(rng.permutation(values), longest) for values in per_feature])]
    if sum(values.size for values in per_feature) <= budget:
        base = reference[rng.integers(len(reference))] if len(reference) else np.zeros(ensemble.n_features)
        for feature, values in enumerate(per_feature):
            block = np.repeat(base[None, :], values.size, axis=0)
            block[:, feature] = values
            rows.append(block)
    if len(reference):
        random_rows = reference[rng.integers(len(reference), size=PROBE_RANDOM_ROWS)]
        # Not mutated, equivalent: rng.random() draws exactly 0.3 too rarely to count, so `<=` is `<`.
        # (1.3, which would change every cell, fails the probes' tests.)
        changed = rng.random(random_rows.shape) < 0.3  # pragma: no mutate
        # The extremes the model accepts: only finite ones when it refuses NaN and infinity.
        random_rows[changed] = rng.choice(_extremes(ensemble), size=int(changed.sum()))
        rows.append(random_rows)
    probes = np.vstack(rows)
    # A feature of known categories refuses infinity (scikit-learn's encoder): it probes NaN there.
    known = np.flatnonzero(np.diff(ensemble.known_offsets) > 0)
    # Not mutated, equivalent: None stored in these float64 columns is NaN too.
    probes[:, known] = np.where(np.isinf(probes[:, known]), np.nan, probes[:, known])  # pragma: no mutate
    return probes


class TreeCompiler:
    """A tree family's Compiler (build/engines/base.py) from its `supports` and its `ensemble`
    function. The ensemble of the last estimator is kept, so the gate's probes do not compile a
    production-size model twice; it is the same estimator, fitted the same, when the estimator and
    every one of its fitted attributes (a refit replaces them) are the same objects."""

    def __init__(self, name: str, supports: Callable[[Any], bool], ensemble: Callable[[Any], TreeEnsemble]) -> None:
        self._ensemble = ensemble
        self._last: tuple[tuple[Any, ...], TreeEnsemble] | None = None
        self.compiler = Compiler(
            name=name,
            supports=supports,
            compile=lambda estimator, prefix: self.ensemble(estimator).to_arrays(prefix),
            guarantee=lambda estimator: guarantee(self.ensemble(estimator)),
            probe_rows=lambda estimator, reference: probe_rows(self.ensemble(estimator), reference),
        )

    def ensemble(self, estimator: Any) -> TreeEnsemble:
        fitted = (estimator, *(value for name, value in sorted(vars(estimator).items()) if name.endswith("_")))
        if self._last is None or len(self._last[0]) != len(fitted) or any(map(operator.is_not, self._last[0], fitted)):
            self._last = (fitted, self._ensemble(estimator))
        return self._last[1]
