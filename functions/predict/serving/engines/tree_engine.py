"""The one evaluator of every compiled tree ensemble (serving/engines/trees.py says what it
computes): its walk and sums in C where the package has the compiled walk (native.py, tree_walk.c:
the same comparisons and additions, several times faster on large batches), else in numpy, as
below; the input checks, the category codes and the link in numpy either way.

Why by hand: no library evaluates every tree library's arithmetic bit for bit without the
library itself (treelite and ONNX Runtime differ from XGBoost and LightGBM, and from
scikit-learn in float32), and the package must not carry scikit-learn, XGBoost or LightGBM.

The numpy walk: a node walk vectorised over (tree, row) pairs, one depth level per step. At load the
nodes are laid out tree by tree (a walk over a few trees reads a few runs of memory), level by
level within a tree; the leaves become nodes of their own that lead back to themselves
(threshold NaN: no comparison sends them right) and hold their leaf number where a node holds
its feature, so every pair takes one step per level without asking whether it has arrived and
no array maps nodes to leaves. The children are packed, `children[2 * node + goes_right]`.
A step is a handful of in-place numpy calls (gather the record, the value; compare; pick the
child). Pairs are laid out tree by tree, so the leaves come out as (trees, rows) and are added
to the scores sequentially in tree order, as every library adds them. Rows are taken in blocks
and trees in chunks of about PAIRS_PER_WALK pairs, so a walk's arrays stay in the CPU's cache
and its memory is bounded (smaller chunks, more levels between set-asides, larger blocks: all
measured slower on a 100-tree forest of unlimited depth); every few levels the pairs that have
reached their leaf are set aside, so unbalanced trees do not walk the depth of their deepest
leaf for every row. A batch with NaN, a model with categorical splits or LightGBM's
zero-as-missing takes the general step, which also routes missing values and reads category
bitsets; the arrays only it reads (missing rules, categories) exist only for models that have them.

Threads: a batch of at least 2 x ROWS_PER_THREAD rows is split into one run of rows a CPU the
process may use (os.sched_getaffinity: Lambda gives 2 vCPUs from 1,769 MB), each run scored as
one thread would score it. Rows are independent and each row's sums keep their order, so the
answer is the same bits; numpy releases the GIL in its gathers, compares and adds, so the runs
overlap. The libraries do the same: scikit-learn's forests with n_jobs, HistGradientBoosting,
XGBoost and LightGBM with OpenMP over rows. A step per row costs numpy a few passes over memory
where a library's C loop costs one, so on one CPU a deep forest's large batch takes about 1.3-1.7x
scikit-learn's single-threaded CPU time.

Leaf masks instead of the walk (_LeafMasks): for a model whose trees have at most MASK_BITS
leaves, no categorical split and no missing rule but NaN's (scikit-learn's boosting, most
XGBoost and LightGBM models), QuickScorer's bitvectors are built at load from the node arrays
when their tables fit in MASK_TABLE_BYTES. A row then costs a binary search and an AND of a
row of words per feature instead of a walk per level: several times faster on many shallow
trees. Both find the leaf by the same comparisons, and the sums are the same.

Few rows (<= FEW_ROWS): each output's leaf values are summed with one add.accumulate, in tree
order, rather than one numpy call per tree.

Memory grows with the number of nodes: a 16-byte record and a byte a node or leaf, the mask
tables (bounded), plus bounded working arrays a thread.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

from serving.engines import native
from serving.engines.base import Arrays, check_width
from serving.engines.errors import NonFiniteInputError
from serving.engines.links import LINKS
from serving.engines.trees import (
    BITSET_WORD_BITS,
    MISSING_NAN,
    MISSING_NONE,
    MISSING_ZERO,
    ZERO_THRESHOLD,
    TreeEnsemble,
)

# (tree, row) pairs walked together: their working arrays (a few of 8 bytes a pair) stay in L2.
PAIRS_PER_WALK = 1 << 16
# Rows walked together: their features stay in cache while every tree's pairs read them.
ROWS_PER_BLOCK = 2048
# Every this many levels, pairs that reached their leaf are set aside when they are at least
# COMPACT_FRACTION of those still walking.
COMPACT_EVERY = 4
COMPACT_FRACTION = 0.25
# Leaf masks: trees of at most this many leaves (one machine word a tree), tables of at most
# MASK_TABLE_BYTES, and a (rows, trees) word array of at most MASK_BLOCK_BYTES a block.
MASK_BITS = 64
MASK_TABLE_BYTES = 16 << 20
MASK_BLOCK_BYTES = 1 << 20
# Up to this many rows, leaf values are summed with a call an output rather than a call a tree.
FEW_ROWS = 256
# A batch is split across the CPUs this process may use (Lambda: 2 vCPUs from 1,769 MB), in runs
# of at least ROWS_PER_THREAD rows: fewer rows cost less than starting a thread.
WORKERS = len(os.sched_getaffinity(0))
ROWS_PER_THREAD = 2048
# The C walk: split a batch of at least this many (tree, row) pairs a CPU (about a millisecond).
PAIRS_PER_THREAD = 1 << 17
LARGEST_CODE = float(np.iinfo(np.int32).max)
# A slot's `category` when its split is numeric (the walks test for a negative one).
NUMERIC_SPLIT = -1
MAX_NODES = np.iinfo(np.int32).max


class TreeEngine:
    """A TreeEnsemble's predict and predict_proba, answering as its library does."""

    def __init__(self, ensemble: TreeEnsemble, use_native: bool = True) -> None:
        """`use_native`: walk in C where the package has the library (native.py), else in numpy."""
        self.ensemble = ensemble
        self.n_features = ensemble.n_features
        self.classes: NDArray[Any] | None = ensemble.classes
        self.input_dtype = np.dtype(ensemble.input_dtype)
        self.has_zero_missing = bool((ensemble.missing == MISSING_ZERO).any())
        self.has_none_missing = bool((ensemble.missing == MISSING_NONE).any())
        layout = _Layout(ensemble, self.has_zero_missing or self.has_none_missing)
        self.nodes = layout.nodes
        self.roots = layout.roots
        self.depth = layout.depth
        self.default_right = layout.default_right
        self.missing = layout.missing
        self.category = layout.category
        self.has_categories = ensemble.categorical_nodes.size > 0
        # Columns of known categories: scikit-learn's encoder refuses infinity there.
        self.known_columns = np.flatnonzero(np.diff(ensemble.known_offsets) > 0)
        # One zero word after each bitset array: a lookup past a set's end reads it, never outside.
        self.category_bitsets = np.append(ensemble.category_bitsets, np.uint32(0))
        self.n_trees = ensemble.n_trees
        self.width = ensemble.leaf_values.shape[1]
        self.leaf_values = ensemble.leaf_values
        self.tree_output = ensemble.tree_output.astype(np.intp)
        self.n_outputs = ensemble.n_outputs
        self.link = LINKS[ensemble.link]
        # Counted with bincount, not np.unique: numpy 2's unique imports numpy.ma, a tenth of a
        # second of cold start for nothing the function serves.
        trees_at = np.bincount(self.tree_output, minlength=self.n_outputs)
        counts = np.zeros_like(trees_at)
        for start in np.flatnonzero(trees_at):
            counts[start : start + self.width] += trees_at[start]
        # An output no tree adds to keeps its start value (divided by 1).
        self.trees_per_output = np.maximum(counts, 1)
        library = native.library() if use_native else None
        self.native = None if library is None else self._native_walk(library)
        # The C walk outruns the masks too: they are built only for the numpy walk.
        self.masks = self._leaf_masks(ensemble) if self.native is None else None
        # Each output that trees add to (one value a leaf) with its trees, in order.
        self.trees_of_output = [
            (int(output), np.flatnonzero(self.tree_output == output)) for output in np.flatnonzero(trees_at)
        ]

    def _leaf_masks(self, ensemble: TreeEnsemble) -> _LeafMasks | None:
        """Leaf masks where they apply and their tables are small; None where the walk serves."""
        if self.has_categories or self.has_zero_missing or self.has_none_missing or ensemble.n_trees == 0:
            return None
        most = int(np.diff(ensemble.leaf_offsets).max())
        if most > MASK_BITS:
            return None
        dtype = np.dtype(next(f"uint{bits}" for bits in (8, 16, 32, 64) if most <= bits))
        if _LeafMasks.size(ensemble, dtype) > MASK_TABLE_BYTES:
            return None
        return _LeafMasks(ensemble, dtype)

    def _native_walk(self, library: Any) -> native.NativeWalk:
        ensemble = self.ensemble
        flags = native.COMPARISON_LESS if ensemble.comparison == "<" else 0
        missing, default_right = self.missing, self.default_right
        if self.has_none_missing and not self.has_zero_missing and self.category is None:
            # Only NaN and None rules: a None node's NaN goes where 0.0 goes, so each node's NaN
            # has one side and the C walk takes its plain step (leaves keep False: NaN rule).
            # (Comparing with NaN, a leaf's threshold, raises no floating-point error.)
            threshold = self.nodes["threshold"]
            zero_goes_right = ~(threshold >= 0) if ensemble.comparison == "<=" else ~(threshold > 0)
            default_right = np.where(missing == MISSING_NONE, zero_goes_right, default_right)
            missing = None
        # Not mutated, equivalent: the arrays already have these dtypes (intp is int64 on the
        # 64-bit hosts served, validate() keeps category_offsets int32, a bool is a byte), stated
        # for the C structure that reads them.
        # pragma: no mutate start
        arrays = {
            "nodes": self.nodes,
            "roots": np.ascontiguousarray(self.roots, dtype=np.int64),
            "default_right": np.ascontiguousarray(default_right).view(np.uint8),
            "missing": missing,
            "category": self.category,
            "bitsets": self.category_bitsets,
            "category_offsets": np.ascontiguousarray(ensemble.category_offsets, dtype=np.int32),
            "flags": flags,
            "leaf_values": np.ascontiguousarray(self.leaf_values),
            "tree_output": np.ascontiguousarray(self.tree_output, dtype=np.int64),
            "depth": np.ascontiguousarray(self.depth, dtype=np.int64),
        }
        # pragma: no mutate end
        return native.NativeWalk(library, arrays, self.input_dtype)

    @classmethod
    def from_arrays(cls, arrays: Arrays, prefix: str = "") -> TreeEngine:
        return cls(TreeEnsemble.from_arrays(arrays, prefix))

    # Input -----------------------------------------------------------------------------------

    def _features(self, rows: NDArray[Any]) -> NDArray[np.floating[Any]]:
        # Converted in one step to the library's dtype (twice could round twice); a value beyond
        # float32's range becomes inf, refused below where the library refuses it.
        with np.errstate(over="ignore", invalid="ignore"):
            features = np.ascontiguousarray(rows, dtype=self.input_dtype)
        check_width(features, self.n_features)
        check = self.ensemble.input_check
        if check == "finite" and not np.isfinite(features).all():
            raise NonFiniteInputError("NaN or infinity, or a value too large for float32")
        if check == "no_infinity" and np.isinf(features).any():
            raise NonFiniteInputError("infinity, or a value too large for float32")
        if self.known_columns.size:
            if np.isinf(features[:, self.known_columns]).any():
                raise NonFiniteInputError("infinity in a categorical feature")
            features = self._encoded(features)
        return features

    def _encoded(self, features: NDArray[Any]) -> NDArray[Any]:
        """A copy with each known-category column's values replaced by their codes, their positions
        among the known categories; NaN for a value that is none of them (missing)."""
        encoded = features.copy()
        offsets = self.ensemble.known_offsets
        for column in self.known_columns:
            known = self.ensemble.known_categories[offsets[column] : offsets[column + 1]]
            values = features[:, column]
            position = np.searchsorted(known, values)
            found = known.take(np.minimum(position, known.size - 1)) == values
            # Not mutated, equivalent: None stored in this float column is NaN too.
            encoded[:, column] = np.where(found, position, np.nan)  # pragma: no mutate
        return encoded

    # The walk --------------------------------------------------------------------------------

    def _step_plain(self, node: NDArray[np.intp], nodes: NDArray[Any], values: NDArray[Any]) -> None:
        """One level, no missing value and no category: `node` moves to its child in place
        (`nodes` holds its records; a leaf's threshold is NaN, so it stays)."""
        if self.ensemble.comparison == "<=":
            goes_right = np.greater(values, nodes["threshold"])
        else:
            goes_right = np.greater_equal(values, nodes["threshold"])
        np.add(nodes["first_child"], goes_right, out=node)

    def _step_general(self, node: NDArray[np.intp], nodes: NDArray[Any], values: NDArray[Any]) -> None:
        """One level with missing values and categories routed as serving/engines/trees.py says.

        Marked equivalent below: `mode="clip"` only skips numpy's bounds check (`node` holds
        slots); a value made float64 compares with its float32 threshold exactly as in float32;
        and the Zero term needs Zero nodes, whose rules are in `kind`."""
        threshold = nodes["threshold"]
        nan = np.isnan(values)
        kind = None if self.missing is None else self.missing.take(node, mode="clip")  # pragma: no mutate
        if kind is not None and nan.any():
            as_zero = nan & (kind != MISSING_NAN)
            values = np.where(as_zero, 0.0, values).astype(values.dtype)  # pragma: no mutate
            nan &= ~as_zero
        goes_left = np.less_equal if self.ensemble.comparison == "<=" else np.less
        goes_right = ~goes_left(values, threshold)
        # A leaf (threshold NaN) must stay: it is never missing and never goes right.
        goes_right &= ~np.isnan(threshold)
        missing = nan
        if kind is not None and self.has_zero_missing:  # pragma: no mutate
            missing = missing | ((kind == MISSING_ZERO) & (np.abs(values) <= ZERO_THRESHOLD))
        if missing.any():
            goes_right = np.where(missing, self.default_right.take(node, mode="clip"), goes_right)  # pragma: no mutate
        if self.category is not None:
            category = self.category.take(node, mode="clip")  # pragma: no mutate
            at = np.flatnonzero(category >= 0)
            if at.size:
                goes_right[at] = self._category_goes_right(category[at], values[at], nan[at], node[at])
        np.add(nodes["first_child"], goes_right, out=node)

    def _category_goes_right(
        self, category: NDArray[np.int32], values: NDArray[Any], nan: NDArray[np.bool_], node: NDArray[np.intp]
    ) -> NDArray[np.bool_]:
        ensemble = self.ensemble
        # Not mutated, equivalent: NaN truncates and compares quietly; numpy's default would do.
        with np.errstate(invalid="ignore"):  # pragma: no mutate
            # In float64: float32 cannot hold int32's largest value, and rounds a bound given to it.
            # Not mutated, equivalent: astype(None) is float64 too.
            truncated = np.trunc(values.astype(np.float64))  # pragma: no mutate
            in_range = (truncated >= 0) & (truncated <= LARGEST_CODE)
        # Not mutated, equivalent: a code out of range is never valid, so never looked up.
        codes = np.where(in_range, truncated, 0).astype(np.intp)  # pragma: no mutate
        # A code is valid in range and not NaN. "known": a known-category column holds codes by now
        # (positions; NaN: missing or unknown). "truncate": NaN under the None and Zero types is 0.0
        # by now; only NaN-type NaN is missing.
        valid = in_range & ~nan
        goes_left = _in_bitsets(self.category_bitsets, ensemble.category_offsets, category, codes)
        # Not mutated, equivalent: mode="clip" only skips numpy's bounds check (`node` holds slots).
        return np.where(valid, ~goes_left, self.default_right.take(node, mode="clip"))  # pragma: no mutate

    def _walk(self, features: NDArray[Any], trees: slice, general: bool) -> NDArray[np.intp]:
        """The leaf each row reaches in each tree of `trees`: shape (trees, rows)."""
        n_rows = features.shape[0]
        n_trees = trees.stop - trees.start
        # Pairs tree by tree, rows within.
        node = np.repeat(self.roots[trees], n_rows)
        row_start = np.tile(np.arange(n_rows) * self.n_features, n_trees)
        flat = features.ravel()
        position = None  # the pairs still walking, once some were set aside
        nodes = np.empty(node.size, dtype=self.nodes.dtype)
        index = np.empty(node.size, dtype=np.intp)
        # Not mutated, equivalent: a float32 value made float64 compares with its float32 threshold
        # exactly as in float32 (and ZERO_THRESHOLD is a float32 value).
        values = np.empty(node.size, dtype=features.dtype)  # pragma: no mutate
        step = self._step_general if general else self._step_plain
        # `trees` is never empty: _fill walks chunks of at least one tree.
        for level in range(int(self.depth[trees].max())):
            # Not mutated, equivalent: mode="clip" only skips numpy's bounds check (`node` holds slots).
            np.take(self.nodes, node, out=nodes, mode="clip")  # pragma: no mutate
            np.add(row_start, nodes["feature"], out=index)
            np.take(flat, index, out=values, mode="clip")
            step(node, nodes, values)
            # Not mutated, equivalent: when pairs are set aside (or whether) changes the time, not a leaf.
            if (level + 1) % COMPACT_EVERY == 0:  # pragma: no mutate
                # At a leaf when this level began (a leaf's threshold is NaN): it stays there.
                done = np.isnan(nodes["threshold"])
                # Not mutated, equivalent: counting none done sets none aside, which changes the time only.
                n_done = int(np.count_nonzero(done))  # pragma: no mutate
                if n_done == node.size:
                    break
                # Not mutated, equivalent: how many must be done to set them aside changes the time only.
                if n_done >= COMPACT_FRACTION * node.size:  # pragma: no mutate
                    if position is None:
                        reached = node.copy()
                        position = np.arange(node.size)
                    reached[position[done]] = node[done]
                    walking = ~done
                    position, node, row_start = position[walking], node[walking], row_start[walking]
                    nodes, index, values = nodes[: node.size], index[: node.size], values[: node.size]
        if position is not None:
            reached[position] = node
            node = reached
        # A leaf's record holds its leaf number where a node's holds its feature.
        # Not mutated, equivalent: mode="clip" only skips numpy's bounds check (`node` holds slots).
        return self.nodes["feature"].take(node, mode="clip").reshape(n_trees, n_rows)  # pragma: no mutate

    # Sums --------------------------------------------------------------------------------------

    def _scores(self, rows: NDArray[Any]) -> NDArray[Any]:
        """The scores, shape (rows, outputs), in the library's memory order."""
        features = self._features(rows)
        n_rows = features.shape[0]
        by_output = self.width == 1
        # Scores as the trees add to them: (outputs, rows) for one value a leaf, else (rows, width).
        total = (
            np.repeat(self.ensemble.base_score[:, None], n_rows, axis=1)
            if by_output
            else np.repeat(self.ensemble.base_score[None, :], n_rows, axis=0)
        )
        # Rows are independent: a large batch is split into one run of rows a CPU, each thread
        # adding to its own rows in the same order as one thread would (numpy releases the GIL).
        if self.native is not None:
            n_parts = max(1, min(WORKERS, n_rows, n_rows * self.n_trees // PAIRS_PER_THREAD))
        else:
            n_parts = max(1, min(WORKERS, n_rows // ROWS_PER_THREAD))
        runs = [(n_rows * part // n_parts, n_rows * (part + 1) // n_parts) for part in range(n_parts)]
        errors: list[BaseException] = []

        def fill(start: int, stop: int) -> None:
            try:
                self._fill(total, features, start, stop)
            except Exception as error:  # noqa: BLE001 - re-raised in the calling thread below
                errors.append(error)

        threads = [threading.Thread(target=fill, args=run) for run in runs[1:]]
        for thread in threads:
            thread.start()
        fill(*runs[0])
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        if self.ensemble.average:
            # Overflowed float32 sums divided as the library's: inf / n (a count n >= 1: no
            # floating-point error).
            if by_output:
                total /= self.trees_per_output[:, None]
            else:
                total /= self.trees_per_output[None, :]
        if not by_output:
            return total if self.ensemble.score_order == "C" else np.asfortranarray(total)
        return total.T if self.ensemble.score_order == "F" else np.ascontiguousarray(total.T)

    def _fill(self, total: NDArray[Any], features: NDArray[Any], start: int, stop: int) -> None:
        """Adds the trees' leaf values of rows start..stop to their scores in `total`, in blocks."""
        if self.native is not None:
            self.native.add(features, total, start, stop, self.width == 1)
            return
        n_trees = self.n_trees
        masks = self.masks
        block_rows = ROWS_PER_BLOCK  # the last block ends at `stop`
        if masks is not None:
            block_rows = max(1, min(block_rows, MASK_BLOCK_BYTES // (n_trees * masks.dtype.itemsize)))
        # Sums may overflow to infinity (float32), as the library's do: no warning of it (and
        # finite leaves never add -inf to inf). numpy's error state is per thread: set here, where
        # the sums run.
        with np.errstate(over="ignore"):
            for first_row in range(start, stop, block_rows):
                rows = slice(first_row, min(first_row + block_rows, stop))
                block = features[rows]
                if masks is not None:
                    positions = masks.positions(block, bool(np.isnan(block).any()))
                    self._add(total, rows, masks.leaf_values, positions, slice(None))
                    continue
                general = self._needs_general_step(block)
                chunk = max(1, PAIRS_PER_WALK // block.shape[0])
                for first in range(0, n_trees, chunk):
                    trees = slice(first, min(first + chunk, n_trees))
                    self._add(total, rows, self.leaf_values, self._walk(block, trees, general), trees)

    def _add(
        self,
        total: NDArray[Any],
        rows: slice,
        leaf_values: NDArray[Any],
        leaves: NDArray[np.intp],
        trees: slice,
    ) -> None:
        """`leaf_values[leaves]` (leaves: (trees, rows)) added tree by tree to a block's scores."""
        if self.width == 1:
            self._add_by_output(total[:, rows], leaf_values.take(leaves), trees)
        else:
            self._add_vectors(total[rows], leaf_values.take(leaves, axis=0), trees)

    def _needs_general_step(self, block: NDArray[Any]) -> bool:
        return self.has_categories or self.has_zero_missing or bool(np.isnan(block).any())

    def _add_by_output(self, total: NDArray[Any], values: NDArray[Any], trees: slice) -> None:
        """Leaf values (trees, rows), added tree by tree to their tree's output row of `total`."""
        # Not mutated, equivalent: both ways add in tree order, the same bits; the bound picks the faster.
        few_rows = values.shape[1] <= FEW_ROWS  # pragma: no mutate
        if few_rows and values.shape[0] == self.n_trees:
            # Few rows, every tree (trees_of_output numbers them all): a call a tree would cost more
            # than the sums. add.accumulate adds in order, one tree after the other (a reduce could
            # pair them), from the start value (start + v0 is v0 + start: IEEE addition commutes).
            for output, its_trees in self.trees_of_output:
                sums = values.take(its_trees, axis=0)
                sums[0] += total[output]
                total[output] = np.add.accumulate(sums)[-1]
            return
        for offset, output in enumerate(self.tree_output[trees]):
            total[output] += values[offset]

    def _add_vectors(self, total: NDArray[Any], values: NDArray[Any], trees: slice) -> None:
        """Leaf value vectors (trees, rows, width; a forest's class fractions), added tree by tree
        to their tree's outputs (columns of `total`)."""
        if self.width == self.n_outputs:
            for tree_values in values:
                total += tree_values
            return
        # Not mutated, equivalent: `values` holds a row for each tree of `trees`, so zip's lengths match.
        for tree_values, output in zip(values, self.tree_output[trees], strict=True):  # pragma: no mutate
            total[:, output : output + self.width] += tree_values

    # The Engine interface ----------------------------------------------------------------------

    def predict_proba(self, rows: NDArray[Any]) -> NDArray[Any]:
        if self.classes is None:
            raise TypeError("predict_proba is only defined for classifiers")
        return self.link(self._scores(rows), self.ensemble.link_parameter)

    def predict(self, rows: NDArray[Any]) -> NDArray[Any]:
        scores = self._scores(rows)
        if self.classes is None:
            return np.ascontiguousarray(self.link(scores, self.ensemble.link_parameter)[:, 0])
        decision = self.ensemble.decision
        if decision == "argmax_raw":
            chosen = np.argmax(scores, axis=1)
        elif decision == "raw_above_zero":
            chosen = (scores[:, 0] > 0).astype(np.intp)
        elif decision == "raw_at_least_zero":
            chosen = (scores[:, 0] >= 0).astype(np.intp)
        else:
            proba = self.link(scores, self.ensemble.link_parameter)
            chosen = np.argmax(proba, axis=1) if decision == "argmax_proba" else (proba[:, 1] > 0.5).astype(np.intp)
        return self.classes[chosen]


def _in_bitsets(
    bitsets: NDArray[np.uint32], offsets: NDArray[np.int32], which: NDArray[np.int32], codes: NDArray[np.intp]
) -> NDArray[np.bool_]:
    """Whether bit `codes[i]` is set in bitset `which[i]` (words `offsets[w]:offsets[w + 1]`)."""
    start = offsets.take(which).astype(np.intp)
    # Not mutated, equivalent: a float64 length compares with a word index exactly.
    length = offsets.take(which + 1).astype(np.intp) - start  # pragma: no mutate
    word = codes >> 5
    inside = word < length
    # Outside its set a code reads the zero word after all sets: its bit is clear.
    words = bitsets.take(np.where(inside, start + word, bitsets.size - 1))
    return ((words >> (codes & (BITSET_WORD_BITS - 1)).astype(np.uint32)) & 1).astype(bool)


class _Layout:
    """The ensemble's nodes laid out for the walk, in one pass over the format's arrays: a slot for
    each tree's root, then a slot for each entry of `children`, so a node's two children sit side
    by side (slots `n_trees + 2n` and `+ 1`) and a tree's slots lie together, in its nodes' order.
    The leaves are slots that lead back to themselves. One record a slot (threshold, feature,
    first child) is one gather a step; a leaf's record holds its leaf number where a node's holds
    its feature, and NaN as its threshold (no comparison sends it right). The arrays the general
    step needs only for some models are None for the others. (Built level by level before: a
    second of a 500-tree forest's cold start.)"""

    def __init__(self, ensemble: TreeEnsemble, has_missing_rules: bool) -> None:
        n_trees, n_nodes = ensemble.n_trees, ensemble.n_nodes
        size = n_trees + 2 * n_nodes  # every node and leaf once: a tree has one leaf more than nodes
        if size >= MAX_NODES:
            raise ValueError(f"{size} nodes and leaves: more than this engine indexes ({MAX_NODES})")
        node_counts = np.diff(ensemble.node_offsets)
        # What each slot holds, as `children` says it: a node (>= 0) or ~leaf.
        roots = np.where(node_counts > 0, ensemble.node_offsets[:-1], ~ensemble.leaf_offsets[:-1])
        reference = np.concatenate([roots, ensemble.children]).astype(np.intp)
        split_slots = np.flatnonzero(reference >= 0)
        leaf_slots = np.flatnonzero(reference < 0)
        split = reference[split_slots]
        dtype = np.dtype(ensemble.input_dtype)
        fields: list[tuple[str, Any]] = [("threshold", dtype), ("feature", np.int32), ("first_child", np.int32)]
        if dtype.itemsize == 4:
            # 16-byte records: one aligned copy each. Not mutated, equivalent: the name is never read.
            fields.append(("padding", np.int32))  # pragma: no mutate
        self.nodes = nodes = np.zeros(size, dtype=fields)
        nodes["threshold"][split_slots] = ensemble.threshold[split]
        nodes["feature"][split_slots] = ensemble.feature[split]
        nodes["first_child"][split_slots] = n_trees + 2 * split
        # Not mutated, equivalent: None stored in this float field is NaN too.
        nodes["threshold"][leaf_slots] = np.nan  # pragma: no mutate
        nodes["feature"][leaf_slots] = ~reference[leaf_slots]
        nodes["first_child"][leaf_slots] = leaf_slots
        self.roots = np.arange(n_trees)
        self.default_right = np.zeros(size, dtype=bool)
        self.default_right[split_slots] = ~ensemble.default_left[split]
        self.missing = None
        if has_missing_rules:
            self.missing = np.full(size, MISSING_NAN, dtype=np.uint8)
            self.missing[split_slots] = ensemble.missing[split]
        self.category = None
        if ensemble.categorical_nodes.size:
            # Not mutated, equivalent: any integer dtype holds the indices until they are copied
            # into `category`.
            # pragma: no mutate start
            category_of = np.full(n_nodes, NUMERIC_SPLIT, dtype=np.int32)
            category_of[ensemble.categorical_nodes] = np.arange(ensemble.categorical_nodes.size, dtype=np.int32)
            # pragma: no mutate end
            self.category = np.full(size, NUMERIC_SPLIT, dtype=np.int32)
            self.category[split_slots] = category_of[split]
        # Each tree's depth: the steps its deepest leaf takes from the root (0 for a lone leaf).
        tree_of_node = np.repeat(np.arange(n_trees), node_counts)
        children = ensemble.children.astype(np.intp).reshape(n_nodes, 2)
        self.depth = np.zeros_like(self.roots)
        level = ensemble.node_offsets[:-1][node_counts > 0].astype(np.intp)
        steps = 0
        while level.size:
            steps += 1
            self.depth[tree_of_node[level]] = steps
            below = children[level].ravel()
            # Not mutated, equivalent: node 0, the first tree's root, is no node's child (validate()
            # refuses cycles), so `below > 0` would do too.
            level = below[below >= 0]  # pragma: no mutate


class _LeafMasks:
    """The leaves found with QuickScorer's bitvectors rather than by a walk, for an ensemble whose
    trees have at most MASK_BITS leaves, no category and no missing rule but NaN's.

    A tree's leaves are numbered left to right (bit p of a tree's word is its p-th leaf). A split
    that sends a value right rules out its left subtree's leaves, a contiguous run of bits. Every
    feature's value falls in a bin: its position among the feature's distinct thresholds (counted
    as the comparison counts them, so a split's outcome is the same over a bin), or a last bin
    for NaN (which goes where `default_left` says). `tables[f][bin, tree]` holds the AND of the
    masks of the splits on `f` that send that bin right; ANDed over features, the lowest set bit
    of a tree's word is the leaf the row reaches, the one the walk reaches: only the same
    comparisons decide it."""

    def __init__(self, ensemble: TreeEnsemble, dtype: np.dtype[Any]) -> None:
        self.dtype = dtype
        self.full = np.iinfo(dtype).max
        n_trees = ensemble.n_trees
        leaf_offsets = ensemble.leaf_offsets.astype(np.intp)
        self.first_leaf = leaf_offsets[:-1]
        position, low, left_count = _in_order(ensemble)
        # Not mutated, equivalent: intp is numpy's default integer (int64) on the 64-bit hosts served.
        tree_of_leaf = np.repeat(np.arange(n_trees, dtype=np.intp), np.diff(leaf_offsets))  # pragma: no mutate
        self.in_order = np.empty(ensemble.n_leaves, dtype=np.intp)
        self.in_order[leaf_offsets[tree_of_leaf] + position] = np.arange(ensemble.n_leaves)
        # The leaf values in that order: a position is looked up in them directly.
        self.leaf_values = ensemble.leaf_values.take(self.in_order, axis=0)
        ones = (np.left_shift(np.uint64(1), left_count.astype(np.uint64)) - np.uint64(1)) << low.astype(np.uint64)
        masks = (~ones).astype(dtype)  # the low bits: a word narrower than 64 keeps its own leaves
        # Not mutated, equivalent: intp is numpy's default integer (int64) on the 64-bit hosts served.
        tree_of_node = np.repeat(np.arange(n_trees, dtype=np.intp), np.diff(ensemble.node_offsets))  # pragma: no mutate
        # Not mutated, equivalent: validate() keeps thresholds in input_dtype, and a float32 threshold
        # made float64 compares with a float32 value exactly as in float32.
        threshold = ensemble.threshold.astype(np.dtype(ensemble.input_dtype))  # pragma: no mutate
        self.side: Any = "left" if ensemble.comparison == "<=" else "right"
        self.features: list[tuple[int, NDArray[Any], NDArray[Any]]] = []
        # The nodes of each feature, in node order: one sort, not a scan of every node a feature.
        # Not mutated, equivalent: the masks are ANDed, in any order; unused last features add nothing.
        by_feature = np.argsort(ensemble.feature, kind="stable")  # pragma: no mutate
        counts = np.bincount(ensemble.feature, minlength=ensemble.n_features)  # pragma: no mutate
        ends = np.cumsum(counts)
        for feature in np.flatnonzero(counts):
            on = by_feature[ends[feature] - counts[feature] : ends[feature]]
            values = np.sort(threshold[on])
            # Not mutated, equivalent: a repeated threshold only repeats its bin's row of the table.
            values = values[np.append(True, values[1:] != values[:-1])]  # pragma: no mutate
            index = np.searchsorted(values, threshold[on])
            table = np.full((values.size + 2, n_trees), self.full, dtype=dtype)
            np.bitwise_and.at(table, (index + 1, tree_of_node[on]), masks[on])
            # Not mutated, equivalent: axis 0 is accumulate's default.
            np.bitwise_and.accumulate(table[:-1], axis=0, out=table[:-1])  # pragma: no mutate
            right = on[~ensemble.default_left[on]]
            np.bitwise_and.at(table, (values.size + 1, tree_of_node[right]), masks[right])
            self.features.append((int(feature), values, table))

    @staticmethod
    def size(ensemble: TreeEnsemble, dtype: np.dtype[Any]) -> int:
        """The bytes of the tables at most (a bin a split, plus two, a tree, per feature)."""
        # Not mutated, equivalent: features after the last one split on add nothing.
        counts = np.bincount(ensemble.feature, minlength=ensemble.n_features)  # pragma: no mutate
        return int((counts + 2 * (counts > 0)).sum()) * ensemble.n_trees * dtype.itemsize

    def positions(self, block: NDArray[Any], has_nan: bool) -> NDArray[np.intp]:
        """The in-order number (`in_order` maps it to the leaf) of the leaf each row of `block`
        reaches in each tree: shape (trees, rows)."""
        n_rows = block.shape[0]
        # (rows, trees): a bin's words for every tree are one row of a table, copied whole.
        # Not mutated, equivalent: words of numpy's default int64 hold the same non-negative bits and
        # give the same lowest set bit below (only the block's memory grows).
        reachable = np.full((n_rows, self.first_leaf.size), self.full, dtype=self.dtype)  # pragma: no mutate
        words = np.empty_like(reachable)
        for feature, values, table in self.features:
            column = block[:, feature]
            bins = values.searchsorted(column, side=self.side)
            if has_nan:
                bins[np.isnan(column)] = values.size + 1
            table.take(bins, axis=0, out=words)
            reachable &= words
        # The bits below the lowest set bit, counted: (word & -word) - 1, in place.
        np.invert(reachable, out=words)
        words += self.dtype.type(1)
        words &= reachable
        words -= self.dtype.type(1)
        # Turned to (trees, rows) as bytes, the narrowest array of the walk.
        positions = np.empty((self.first_leaf.size, n_rows), dtype=np.intp)
        np.add(np.bitwise_count(words).T, self.first_leaf[:, None], out=positions)
        return positions


def _in_order(ensemble: TreeEnsemble) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """Each leaf's position among its tree's leaves left to right; each internal node's first
    leaf's position and its left subtree's number of leaves.

    Marked equivalent below: numpy reads any negative size as the unknown one; counts and
    positions held as float64 are exact and cast back where they index; and node 0, the first
    tree's root, is no node's child (validate() refuses cycles), so `child > 0` would do too."""
    children = ensemble.children.astype(np.intp).reshape(-1, 2)  # pragma: no mutate
    node_counts = np.diff(ensemble.node_offsets)
    levels = []
    current = ensemble.node_offsets[:-1][node_counts > 0].astype(np.intp)
    while current.size:
        levels.append(current)
        below = children[current].reshape(-1)  # pragma: no mutate
        current = below[below >= 0]  # pragma: no mutate
    leaves_under = np.zeros(ensemble.n_nodes, dtype=np.intp)  # pragma: no mutate

    def count(child: NDArray[np.intp]) -> NDArray[np.intp]:
        return np.where(child >= 0, leaves_under.take(np.maximum(child, 0)), 1)  # pragma: no mutate

    for level in reversed(levels):
        leaves_under[level] = count(children[level, 0]) + count(children[level, 1])
    low = np.zeros(ensemble.n_nodes, dtype=np.intp)  # pragma: no mutate
    position = np.zeros(ensemble.n_leaves, dtype=np.intp)
    for level in levels:
        left, right = children[level, 0], children[level, 1]
        middle = low[level] + count(left)
        for child, start in ((left, low[level]), (right, middle)):
            internal = child >= 0  # pragma: no mutate
            low[child[internal]] = start[internal]
            position[~child[~internal]] = start[~internal]
    return position, low, count(children[:, 0])
