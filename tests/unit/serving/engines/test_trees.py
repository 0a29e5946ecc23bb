"""The tree format (serving/engines/trees.py) and its evaluator (serving/engines/tree_engine.py):
every rule of the format's docstring, checked against a row-by-row reference walk on generated
ensembles; every refusal of validate() by its message; the engine's own refusals."""

from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from serving.engines import load_engine, tree_engine
from serving.engines.errors import NonFiniteInputError
from serving.engines.links import softmax_in_place
from serving.engines.tree_engine import TreeEngine
from serving.engines.trees import (
    FORMAT_VERSION,
    MISSING_NAN,
    MISSING_NONE,
    MISSING_ZERO,
    ZERO_THRESHOLD,
    InvalidTreeEnsembleError,
    TreeEnsemble,
)

INT = np.int32


def _bit(words: NDArray[np.uint32], code: int) -> bool:
    return 0 <= code < 32 * words.size and bool((int(words[code // 32]) >> (code % 32)) & 1)


def _goes_left(ensemble: TreeEnsemble, node: int, value: Any) -> bool:
    """The format's docstring, rule by rule, for one value at one node."""
    kind = int(ensemble.missing[node])
    default = bool(ensemble.default_left[node])
    categorical = np.flatnonzero(ensemble.categorical_nodes == node)
    if categorical.size:
        i = int(categorical[0])
        words = ensemble.category_bitsets[ensemble.category_offsets[i] : ensemble.category_offsets[i + 1]]
        if ensemble.category_rule == "known":
            feature = int(ensemble.feature[node])
            known = ensemble.known_categories[ensemble.known_offsets[feature] : ensemble.known_offsets[feature + 1]]
            matches = np.flatnonzero(known == value)
            return _bit(words, int(matches[0])) if matches.size else default
        if np.isnan(value):
            if kind == MISSING_NAN:
                return default
            value = 0.0
        code = np.trunc(float(value))
        if not 0 <= code <= 2**31 - 1:
            return default
        return _bit(words, int(code))
    if np.isnan(value):
        if kind == MISSING_NAN:
            return default
        value = value.dtype.type(0)
    if kind == MISSING_ZERO and abs(float(value)) <= ZERO_THRESHOLD:
        return default
    threshold = ensemble.threshold[node]
    return bool(value <= threshold) if ensemble.comparison == "<=" else bool(value < threshold)


def reference_scores(ensemble: TreeEnsemble, rows: NDArray[np.float64]) -> NDArray[Any]:
    """The scores, walking each row through each tree node by node in Python."""
    with np.errstate(over="ignore"):
        features = rows.astype(ensemble.input_dtype)
    width = ensemble.leaf_values.shape[1]
    counts = np.zeros(ensemble.n_outputs)
    for output in ensemble.tree_output:
        counts[output : output + width] += 1
    result = []
    for row in features:
        scores = ensemble.base_score.copy()
        for tree in range(ensemble.n_trees):
            has_nodes = ensemble.node_offsets[tree + 1] > ensemble.node_offsets[tree]
            reference = int(ensemble.node_offsets[tree]) if has_nodes else ~int(ensemble.leaf_offsets[tree])
            while reference >= 0:
                left = _goes_left(ensemble, reference, row[ensemble.feature[reference]])
                reference = int(ensemble.children[2 * reference + (0 if left else 1)])
            start = int(ensemble.tree_output[tree])
            for offset in range(width):
                scores[start + offset] = scores[start + offset] + ensemble.leaf_values[~reference, offset]
        if ensemble.average:
            with np.errstate(over="ignore", invalid="ignore"):
                scores = scores / np.maximum(counts, 1).astype(scores.dtype)
        result.append(scores)
    return np.array(result, dtype=ensemble.leaf_values.dtype)


def without_categories(ensemble: TreeEnsemble, missing: int | NDArray[np.uint8] | None = None) -> TreeEnsemble:
    """The ensemble with no categorical split and no known category (its category nodes then split
    numerically), and the `missing` rule (or a rule a node) when one is named."""
    changes: dict[str, Any] = {}
    if missing is not None:
        changes["missing"] = np.broadcast_to(np.asarray(missing, dtype=np.uint8), ensemble.missing.shape).copy()
    return dataclasses.replace(
        ensemble,
        category_rule="truncate",
        categorical_nodes=np.zeros(0, dtype=INT),
        category_offsets=np.zeros(1, dtype=INT),
        category_bitsets=np.zeros(0, dtype=np.uint32),
        known_offsets=np.zeros(ensemble.n_features + 1, dtype=INT),
        known_categories=np.zeros(0),
        **changes,
    )


def random_ensemble(seed: int, rule: str, comparison: str, input_dtype: str, value_dtype: str) -> TreeEnsemble:
    """A regressor of random trees (depth up to 5), splits of every kind, leaves of 1 or 2 values."""
    rng = np.random.default_rng(seed)
    n_features = int(rng.integers(1, 4))
    width = int(rng.integers(1, 3))
    n_outputs = width + int(rng.integers(0, 3))
    thresholds = np.array([0.0, -0.0, 1.5, -2.25, 1e-36, -1e-36, 3e38, 7.0], dtype=input_dtype)
    known = {
        f: np.unique(rng.choice([-1.0, 0.0, 0.5, 2.0, 3.0, 40.0], size=int(rng.integers(1, 5))))
        for f in range(n_features)
    }
    # Under the known rule a feature is categorical or numeric; under truncate any split reads any feature.
    is_categorical = rng.random(n_features) < 0.5
    features, values, children, default_left, missing = [], [], [], [], []
    categorical, category_words = [], []
    node_offsets, leaf_offsets, leaf_values = [0], [0], []

    for _ in range(int(rng.integers(1, 5))):
        node_base, leaf_base = node_offsets[-1], leaf_offsets[-1]
        tree_nodes: list[int] = []
        n_leaves = 0
        # Breadth first: a node's children come after it.
        pending: list[tuple[int, int, int]] = [(0, -1, 0)]  # depth, parent, side
        order: list[tuple[int, int, int, bool]] = []
        while pending:
            depth, parent, side = pending.pop(0)
            split = depth < 5 and rng.random() < 0.7
            order.append((depth, parent, side, split))
            if split:
                index = len(order) - 1
                pending += [(depth + 1, index, 0), (depth + 1, index, 1)]
        position = {}
        for index, (_, _, _, split) in enumerate(order):
            if split:
                position[index] = node_base + len(tree_nodes)
                tree_nodes.append(index)
            else:
                position[index] = ~(leaf_base + n_leaves)
                n_leaves += 1
        tree_children = {index: [0, 0] for index in tree_nodes}
        for index, (_, parent, side, _) in enumerate(order):
            if parent >= 0:
                tree_children[parent][side] = position[index]
        for index in tree_nodes:
            node = position[index]
            feature = int(rng.integers(n_features))
            features.append(feature)
            values.append(rng.choice(thresholds))
            children += tree_children[index]
            default_left.append(bool(rng.random() < 0.5))
            missing.append(
                int(rng.choice([MISSING_NAN, MISSING_ZERO, MISSING_NONE])) if rule == "truncate" else MISSING_NAN
            )
            if is_categorical[feature] if rule == "known" else rng.random() < 0.3:
                categorical.append(node)
                n_codes = known[feature].size if rule == "known" else 45
                category_words.append(
                    np.packbits(rng.random(32 * ((n_codes + 31) // 32)) < 0.5, bitorder="little")
                    .view("<u4")
                    .astype(np.uint32)
                )
        node_offsets.append(node_base + len(tree_nodes))
        leaf_offsets.append(leaf_base + n_leaves)
        leaf_values.append(rng.choice([0.0, -0.0, 0.1, 1e16, -3.5, 1.0 / 3.0], size=(n_leaves, width)))
    n_trees = len(node_offsets) - 1
    known_values = [known[f] if rule == "known" and is_categorical[f] else np.zeros(0) for f in range(n_features)]
    return TreeEnsemble(
        kind="regressor",
        n_features=n_features,
        classes=None,
        input_dtype=input_dtype,
        input_check="any",
        comparison=comparison,
        category_rule=rule,
        feature=np.array(features, dtype=INT),
        threshold=np.array(values, dtype=input_dtype),
        children=np.array(children, dtype=INT),
        default_left=np.array(default_left, dtype=bool),
        missing=np.array(missing, dtype=np.uint8),
        node_offsets=np.array(node_offsets, dtype=INT),
        leaf_offsets=np.array(leaf_offsets, dtype=INT),
        categorical_nodes=np.array(categorical, dtype=INT),
        category_offsets=np.cumsum([0] + [w.size for w in category_words]).astype(INT),
        category_bitsets=np.concatenate([np.zeros(0, np.uint32), *category_words]),
        known_offsets=np.cumsum([0] + [k.size for k in known_values]).astype(INT),
        known_categories=np.concatenate([np.zeros(0), *known_values]),
        tree_output=rng.integers(0, n_outputs - width + 1, size=n_trees).astype(INT),
        leaf_values=np.concatenate(leaf_values).astype(value_dtype),
        base_score=rng.choice([0.0, -0.0, 0.5], size=n_outputs).astype(value_dtype),
        average=bool(rng.random() < 0.3),
        link="identity",
        link_parameter=1.0,
        score_order="C",
        decision="value",
    )


def random_rows(seed: int, ensemble: TreeEnsemble, n_rows: int) -> NDArray[np.float64]:
    """Rows of thresholds and their neighbours, categories and non-categories, NaN, signed zeros,
    infinities and LightGBM's zero threshold."""
    rng = np.random.default_rng(seed)
    thresholds = ensemble.threshold.astype(np.float64)
    pool = np.concatenate(
        [
            thresholds,
            np.nextafter(ensemble.threshold, np.inf).astype(np.float64),
            np.nextafter(ensemble.threshold, -np.inf).astype(np.float64),
            ensemble.known_categories,
            [
                np.nan,
                0.0,
                -0.0,
                np.inf,
                -np.inf,
                ZERO_THRESHOLD,
                -ZERO_THRESHOLD,
                1e-35,
                2.0**31,
                2.0**31 - 1,  # the largest category code (a float32 row rounds it to 2**31)
                -1.0,
                3.7,
                33.0,
                44.9,
                70.0,  # a code one word past a 45-code set's two words
                1e300,
            ],
        ]
    )
    rows = rng.choice(pool, size=(n_rows, ensemble.n_features))
    # A column of known categories refuses infinity (tested on its own): NaN there instead.
    known = np.flatnonzero(np.diff(ensemble.known_offsets) > 0)
    with np.errstate(over="ignore"):
        overflows = np.isinf(rows[:, known].astype(ensemble.input_dtype))
    rows[:, known] = np.where(overflows, np.nan, rows[:, known])
    return rows


@given(
    seed=st.integers(0, 2**32 - 1),
    rule=st.sampled_from(["known", "truncate"]),
    comparison=st.sampled_from(["<=", "<"]),
    input_dtype=st.sampled_from(["float32", "float64"]),
    value_dtype=st.sampled_from(["float32", "float64"]),
    use_native=st.booleans(),
)
def test_the_engine_computes_what_the_format_says_bit_for_bit(
    seed: int, rule: str, comparison: str, input_dtype: str, value_dtype: str, use_native: bool
) -> None:
    """With the C walk (built by the tests as the build builds it) and with the numpy walk."""
    ensemble = random_ensemble(seed, rule, comparison, input_dtype, value_dtype)
    rows = random_rows(seed, ensemble, 60)
    engine = TreeEngine(TreeEnsemble.from_arrays(ensemble.to_arrays()), use_native=use_native)
    assert (engine.native is not None) == use_native

    scores = engine.predict(rows)

    expected = reference_scores(ensemble, rows)[:, 0]
    assert scores.dtype == expected.dtype
    assert scores.tobytes() == expected.tobytes()


@pytest.mark.parametrize("width", [1, 3])
@pytest.mark.parametrize("order", ["C", "F"])
def test_a_softmax_sums_its_scores_in_the_librarys_memory_order(width: int, order: str) -> None:
    """numpy sums a row of 12 scores pairwise when they are contiguous, one by one when they are
    not: the probabilities' last bits follow the memory order the library's scores have."""
    rng = np.random.default_rng(4)
    ensemble = random_ensemble(4, "truncate", "<=", "float64", "float64")
    n_leaves = ensemble.leaf_values.shape[0]
    ensemble = dataclasses.replace(
        ensemble,
        kind="classifier",
        classes=np.arange(12),
        leaf_values=rng.standard_normal((n_leaves, width)),
        tree_output=rng.integers(0, 12 - width + 1, size=ensemble.n_trees).astype(INT),
        base_score=rng.standard_normal(12),
        average=False,
        link="softmax",
        score_order=order,
        decision="argmax_proba",
    )
    ensemble.validate()
    rows = random_rows(4, ensemble, 200)
    scores = reference_scores(ensemble, rows)
    other = "F" if order == "C" else "C"

    expected = softmax_in_place(np.array(scores, order=order))
    assert expected.tobytes() != softmax_in_place(np.array(scores, order=other)).tobytes()
    assert TreeEngine(ensemble, use_native=False).predict_proba(rows).tobytes() == expected.tobytes()
    assert TreeEngine(ensemble).predict_proba(rows).tobytes() == expected.tobytes()


@given(
    seed=st.integers(0, 2**32 - 1),
    rule=st.sampled_from(["known", "truncate", "numeric"]),
    use_native=st.booleans(),
)
def test_float32_sums_overflow_to_infinity_quietly_as_the_librarys(seed: int, rule: str, use_native: bool) -> None:
    """Leaves near float32's largest value: sums reach infinity of either sign, without a warning."""
    ensemble = random_ensemble(seed, "truncate" if rule == "numeric" else rule, "<=", "float32", "float32")
    if rule == "numeric":
        ensemble = without_categories(ensemble, missing=MISSING_NAN)
    rng = np.random.default_rng(seed)
    ensemble = dataclasses.replace(
        ensemble, leaf_values=rng.choice(np.array([3e38, -3e38, 1.0], dtype=np.float32), ensemble.leaf_values.shape)
    )
    rows = random_rows(seed, ensemble, 30)
    engine = TreeEngine(ensemble, use_native=use_native)
    with np.errstate(over="ignore"):  # the reference's own float32 sums
        expected = reference_scores(ensemble, rows)[:, 0]

    assert engine.predict(rows).tobytes() == expected.tobytes()


@given(
    seed=st.integers(0, 2**32 - 1),
    splits=st.sampled_from(["categorical, no Zero rule", "Zero rules, no category"]),
    comparison=st.sampled_from(["<=", "<"]),
    input_dtype=st.sampled_from(["float32", "float64"]),
)
def test_a_batch_without_nan_still_reads_categories_and_lightgbms_zero_as_missing(
    seed: int, splits: str, comparison: str, input_dtype: str
) -> None:
    """The numpy walk's step that ignores missing rules and categories serves NaN-free batches of
    numeric splits only: a NaN-free batch (known categories only, once coded) through categorical
    splits, or near zero through LightGBM's Zero splits, answers as the format says."""
    rng = np.random.default_rng(seed)
    if splits == "categorical, no Zero rule":
        ensemble = random_ensemble(seed, "known", comparison, input_dtype, "float64")
    else:
        ensemble = without_categories(random_ensemble(seed, "truncate", comparison, input_dtype, "float64"))
    rows = random_rows(seed, ensemble, 60)
    rows[np.isnan(rows)] = 0.0
    offsets = ensemble.known_offsets
    for column in np.flatnonzero(np.diff(offsets) > 0):
        rows[:, column] = rng.choice(ensemble.known_categories[offsets[column] : offsets[column + 1]], size=60)
    engine = TreeEngine(ensemble, use_native=False)

    assert engine.predict(rows).tobytes() == reference_scores(ensemble, rows)[:, 0].tobytes()


@pytest.mark.parametrize("pairs", [1, 7, 1 << 16])
@pytest.mark.parametrize("rows_per_block", [1, 3, 2048])
def test_blocks_chunks_and_set_aside_pairs_do_not_change_the_answer(
    pairs: int, rows_per_block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows in blocks, trees in chunks, pairs set aside every level or never: the same bits."""
    ensemble = random_ensemble(11, "truncate", "<=", "float64", "float64")
    rows = random_rows(3, ensemble, 500)
    expected = reference_scores(ensemble, rows)[:, 0]
    monkeypatch.setattr(tree_engine, "PAIRS_PER_WALK", pairs)
    monkeypatch.setattr(tree_engine, "ROWS_PER_BLOCK", rows_per_block)
    for every, fraction in [(1, 0.0), (4, 0.25), (1000, 1.0)]:
        monkeypatch.setattr(tree_engine, "COMPACT_EVERY", every)
        monkeypatch.setattr(tree_engine, "COMPACT_FRACTION", fraction)
        assert TreeEngine(ensemble, use_native=False).predict(rows).tobytes() == expected.tobytes()


@given(
    seed=st.integers(0, 2**32 - 1),
    rule=st.sampled_from(["known", "truncate"]),
    workers=st.integers(2, 4),
    rows_per_thread=st.integers(1, 9),
    rows_per_block=st.integers(1, 5),
    n_rows=st.integers(1, 40),
    use_native=st.booleans(),
)
def test_a_batch_split_across_threads_answers_as_one_thread_and_the_format_do(
    seed: int, rule: str, workers: int, rows_per_thread: int, rows_per_block: int, n_rows: int, use_native: bool
) -> None:
    """Rows split into runs a thread (of sizes that cross the block size and the thread threshold),
    walked in C or in numpy: the same bits as one thread and as the row-by-row reference."""
    ensemble = random_ensemble(seed, rule, "<=", "float32", "float64")
    rows = random_rows(seed, ensemble, n_rows)
    engine = TreeEngine(ensemble, use_native=use_native)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tree_engine, "ROWS_PER_BLOCK", rows_per_block)
        patch.setattr(tree_engine, "WORKERS", 1)
        alone = engine.predict(rows)
        patch.setattr(tree_engine, "WORKERS", workers)
        patch.setattr(tree_engine, "ROWS_PER_THREAD", rows_per_thread)
        patch.setattr(tree_engine, "PAIRS_PER_THREAD", rows_per_thread)
        split = engine.predict(rows)
    assert split.tobytes() == alone.tobytes() == reference_scores(ensemble, rows)[:, 0].tobytes()


def test_an_error_in_a_scoring_thread_is_raised_to_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never a batch answered with some rows left at their start value."""
    ensemble = random_ensemble(11, "truncate", "<=", "float64", "float64")
    rows = random_rows(3, ensemble, 20)
    engine = TreeEngine(ensemble)
    monkeypatch.setattr(tree_engine, "WORKERS", 2)
    monkeypatch.setattr(tree_engine, "ROWS_PER_THREAD", 5)
    monkeypatch.setattr(tree_engine, "PAIRS_PER_THREAD", 5)
    fill = engine._fill

    def fail_after_the_first_rows(total: Any, features: Any, start: int, stop: int) -> None:
        if start > 0:
            raise MemoryError("no memory for the second run of rows")
        fill(total, features, start, stop)

    monkeypatch.setattr(engine, "_fill", fail_after_the_first_rows)
    with pytest.raises(MemoryError, match="second run of rows"):
        engine.predict(rows)


@pytest.mark.parametrize(
    ("use_native", "pairs_per_thread", "n_rows", "runs"),
    [
        # numpy: a run of at least ROWS_PER_THREAD (4) rows a thread, at most WORKERS (3) runs.
        (False, 10, 7, [(0, 7)]),
        (False, 10, 8, [(0, 4), (4, 8)]),
        (False, 10, 13, [(0, 4), (4, 8), (8, 13)]),
        (False, 10, 100, [(0, 33), (33, 66), (66, 100)]),
        # C: a run of at least PAIRS_PER_THREAD (tree, row) pairs of the 2 trees, at most WORKERS
        # runs, at least a row a run.
        (True, 10, 4, [(0, 4)]),
        (True, 10, 10, [(0, 5), (5, 10)]),
        (True, 10, 100, [(0, 33), (33, 66), (66, 100)]),
        (True, 1, 2, [(0, 1), (1, 2)]),
    ],
)
def test_a_batch_is_split_into_even_runs_of_rows_one_a_cpu_when_each_is_worth_a_thread(
    use_native: bool, pairs_per_thread: int, n_rows: int, runs: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = TreeEngine(small_classifier(), use_native=use_native)
    assert (engine.native is not None) == use_native
    monkeypatch.setattr(tree_engine, "WORKERS", 3)
    monkeypatch.setattr(tree_engine, "ROWS_PER_THREAD", 4)
    monkeypatch.setattr(tree_engine, "PAIRS_PER_THREAD", pairs_per_thread)
    filled: list[tuple[int, int]] = []
    fill = engine._fill

    def record(total: Any, features: Any, start: int, stop: int) -> None:
        filled.append((start, stop))
        fill(total, features, start, stop)

    monkeypatch.setattr(engine, "_fill", record)
    engine.predict(np.zeros((n_rows, 2)))
    assert sorted(filled) == runs


@pytest.mark.parametrize(("pairs", "rows_per_block", "mask_block_bytes"), [(1, 3, 1), (7, 5, 100), (40, 2048, 1 << 20)])
def test_walks_and_mask_blocks_stay_within_their_memory_bounds(
    pairs: int, rows_per_block: int, mask_block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A walk takes at most ROWS_PER_BLOCK rows and PAIRS_PER_WALK (tree, row) pairs (or one
    tree); a block of leaf masks at most MASK_BLOCK_BYTES of words (or one row)."""
    monkeypatch.setattr(tree_engine, "PAIRS_PER_WALK", pairs)
    monkeypatch.setattr(tree_engine, "ROWS_PER_BLOCK", rows_per_block)
    monkeypatch.setattr(tree_engine, "MASK_BLOCK_BYTES", mask_block_bytes)
    walked = random_ensemble(11, "truncate", "<=", "float64", "float64")
    masked = without_categories(walked, missing=MISSING_NAN)
    rows = random_rows(3, walked, 300)
    for ensemble in (walked, masked):
        engine = TreeEngine(ensemble, use_native=False)
        assert (engine.masks is not None) == (ensemble is masked)
        assert engine.n_trees > 1
        shapes: list[tuple[int, int]] = []
        add = engine._add

        def record(*args: Any, add: Any = add, shapes: list[tuple[int, int]] = shapes) -> None:
            shapes.append(args[3].shape)  # the leaves: (trees, rows)
            add(*args)

        monkeypatch.setattr(engine, "_add", record)
        assert engine.predict(rows).tobytes() == reference_scores(ensemble, rows)[:, 0].tobytes()
        if engine.masks is None:
            assert all(n_rows <= rows_per_block for _, n_rows in shapes)
            assert all(n_trees == 1 or n_trees * n_rows <= pairs for n_trees, n_rows in shapes)
        else:
            words = engine.n_trees * engine.masks.dtype.itemsize
            assert all(n_rows == 1 or n_rows * words <= mask_block_bytes for _, n_rows in shapes)


def deepest_leaf(ensemble: TreeEnsemble, tree: int) -> int:
    """The steps from a tree's root to its deepest leaf, following `children` (0: a lone leaf)."""
    if ensemble.node_offsets[tree + 1] == ensemble.node_offsets[tree]:
        return 0
    level, steps = [int(ensemble.node_offsets[tree])], 0
    while level:
        steps += 1
        level = [int(child) for node in level for child in ensemble.children[2 * node : 2 * node + 2] if child >= 0]
    return steps


@given(seed=st.integers(0, 2**32 - 1), rule=st.sampled_from(["known", "truncate"]))
def test_each_tree_is_walked_the_depth_of_its_deepest_leaf_and_no_further(seed: int, rule: str) -> None:
    """Every level the walk takes costs a pass over its pairs: a tree's depth is no more than its
    deepest leaf's (and no less, or the walk would stop short of it)."""
    ensemble = random_ensemble(seed, rule, "<=", "float64", "float64")
    engine = TreeEngine(ensemble, use_native=False)

    assert engine.depth.tolist() == [deepest_leaf(ensemble, tree) for tree in range(ensemble.n_trees)]


def small_classifier(**changes: Any) -> TreeEnsemble:
    """Two trees over two features: one split each, and a tree of one leaf."""
    fields: dict[str, Any] = {
        "kind": "classifier",
        "n_features": 2,
        "classes": np.array([3, 7]),
        "input_dtype": "float32",
        "input_check": "no_infinity",
        "comparison": "<=",
        "category_rule": "known",
        "feature": np.array([1], dtype=INT),
        "threshold": np.array([0.5], dtype=np.float32),
        "children": np.array([~0, ~1], dtype=INT),
        "default_left": np.array([True]),
        "missing": np.array([MISSING_NAN], dtype=np.uint8),
        "node_offsets": np.array([0, 1, 1], dtype=INT),
        "leaf_offsets": np.array([0, 2, 3], dtype=INT),
        "categorical_nodes": np.zeros(0, dtype=INT),
        "category_offsets": np.zeros(1, dtype=INT),
        "category_bitsets": np.zeros(0, dtype=np.uint32),
        "known_offsets": np.zeros(3, dtype=INT),
        "known_categories": np.zeros(0),
        "tree_output": np.zeros(2, dtype=INT),
        "leaf_values": np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]),
        "base_score": np.zeros(2),
        "average": True,
        "link": "identity",
        "link_parameter": 1.0,
        "score_order": "C",
        "decision": "argmax_proba",
    }
    return TreeEnsemble(**{**fields, **changes})


def test_a_small_classifier_answers_its_leaves_averaged_and_its_first_maximum() -> None:
    engine = TreeEngine(small_classifier())
    rows = np.array([[9.0, 0.5], [9.0, 0.5000001], [0.0, np.nan]])

    assert engine.predict_proba(rows).tolist() == [[0.75, 0.25], [0.25, 0.75], [0.75, 0.25]]
    assert engine.predict(rows).tolist() == [3, 7, 3]


def one_category_split(rule: str) -> dict[str, Any]:
    """small_classifier's changes that make its split categorical on feature 1: codes 1 and 3 go
    left; under "known" the categories are 10, 20, 30 and 40 (codes 0 to 3)."""
    known = rule == "known"
    return {
        "category_rule": rule,
        "threshold": np.zeros(1, dtype=np.float32),
        "default_left": np.array([False]),
        "categorical_nodes": np.zeros(1, dtype=INT),
        "category_offsets": np.array([0, 1], dtype=INT),
        "category_bitsets": np.array([0b1010], dtype=np.uint32),
        "known_offsets": np.array([0, 0, 4 if known else 0], dtype=INT),
        "known_categories": np.array([10.0, 20.0, 30.0, 40.0] if known else []),
    }


@pytest.mark.parametrize("use_native", [True, False])
@pytest.mark.parametrize(
    ("rule", "left", "right"),
    [
        ("known", [20.0, 40.0], [10.0, 30.0, 25.0, np.nan]),
        # 32 and 64 have bit 0 of a word past the set's one: missing, not the set's code 0.
        ("truncate", [1.0, 3.0, 1.5], [0.0, 2.0, 32.0, 64.0, 33.0, -1.0, np.nan]),
    ],
)
def test_one_categorical_split_sends_each_value_to_its_side_alone_or_in_a_batch(
    use_native: bool, rule: str, left: list[float], right: list[float]
) -> None:
    """A value whose code is in the set goes left; any other, or a missing one, to the default side
    (right). Each row alone is a batch without NaN, which the numpy walk steps without missing
    rules: a categorical split must still be read as one."""
    ensemble = small_classifier(**one_category_split(rule))
    engine = TreeEngine(ensemble, use_native=use_native)
    assert (engine.native is not None) == use_native
    rows = np.array([[0.0, value] for value in left + right])
    expected = [3] * len(left) + [7] * len(right)

    assert engine.predict(rows).tolist() == expected
    assert [int(engine.predict(row[None])[0]) for row in rows] == expected
    assert engine.predict_proba(rows).tobytes() == reference_scores(ensemble, rows).tobytes()


@pytest.mark.parametrize("use_native", [True, False])
def test_averaged_outputs_are_each_divided_by_the_trees_that_add_to_them(use_native: bool) -> None:
    """Two-value leaves: the split tree adds to outputs 0 and 1, the lone leaf to 1 and 2."""
    ensemble = small_classifier(
        classes=np.array([0, 1, 2]),
        tree_output=np.array([0, 1], dtype=INT),
        base_score=np.zeros(3),
        link="identity",
    )
    rows = np.array([[0.0, 0.0], [0.0, 1.0]])

    scores = TreeEngine(ensemble, use_native=use_native).predict_proba(rows)

    assert scores.tolist() == [[1.0, 0.25, 0.5], [0.0, 0.75, 0.5]]
    assert scores.tobytes() == reference_scores(ensemble, rows).tobytes()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "ranker"}, "kind 'ranker' is not one of"),
        ({"n_features": 0}, "n_features 0 must be from 1 to"),
        ({"input_dtype": "float16"}, "input_dtype 'float16' is not one of"),
        ({"input_check": "some"}, "input_check 'some' is not one of"),
        ({"comparison": ">"}, "comparison '>' is not one of"),
        ({"category_rule": "round"}, "category_rule 'round' is not one of"),
        ({"link": "probit"}, "link 'probit' is not one of"),
        ({"link_parameter": float("nan")}, "link_parameter nan is not finite"),
        ({"score_order": "A"}, "score_order 'A' is not one of"),
        ({"feature": np.array([2], dtype=INT)}, "feature holds a column outside 0..1"),
        ({"feature": np.array([1], dtype=np.int64)}, "feature is a 1-d int64 array, expected 1-d int32"),
        ({"feature": [1]}, "feature is not an array"),
        ({"threshold": np.array([0.5])}, "threshold is a 1-d float64 array, expected 1-d float32"),
        ({"threshold": np.array([np.nan], dtype=np.float32)}, "threshold holds NaN"),
        ({"children": np.array([~0], dtype=INT)}, "children has 1 entries for 1 nodes"),
        ({"default_left": np.array([1], dtype=np.uint8)}, "default_left is a 1-d uint8 array"),
        ({"missing": np.array([3], dtype=np.uint8)}, "missing holds an unknown rule"),
        ({"node_offsets": np.array([0], dtype=INT)}, "an ensemble needs at least one tree"),
        ({"node_offsets": np.array([0, 0, 1], dtype=INT)}, "a tree does not have one leaf more"),
        ({"leaf_offsets": np.array([0, 2, 2], dtype=INT)}, "leaf_offsets must be 3 increasing offsets from 0 to 3"),
        ({"leaf_offsets": np.array([0, 3, 3], dtype=INT)}, "leaf_offsets must be 3 increasing offsets from 0 to 3"),
        ({"children": np.array([~0, ~0], dtype=INT)}, "a leaf has no parent or several"),
        ({"children": np.array([~0, ~2], dtype=INT)}, "children holds a node or leaf outside its tree"),
        (
            {"children": np.array([0, ~1], dtype=INT)},
            "children holds a node or leaf outside its tree, or a node before",
        ),
        ({"leaf_values": np.array([[1.0, np.inf], [0.0, 1.0], [0.5, 0.5]])}, "leaf_values are not all finite"),
        ({"leaf_values": np.zeros((3, 0))}, "leaf_values has no columns"),
        ({"leaf_values": np.zeros(3)}, "leaf_values is a 1-d float64 array, expected 2-d float32 or float64"),
        ({"base_score": np.zeros(2, dtype=np.float32)}, "base_score is a 1-d float32 array, expected 1-d float64"),
        ({"base_score": np.array([0.0, np.nan])}, "base_score is not all finite"),
        ({"tree_output": np.array([0, 1], dtype=INT)}, "tree_output must give each of the 2 trees outputs within"),
        (
            {"categorical_nodes": np.array([1], dtype=INT), "category_offsets": np.zeros(2, dtype=INT)},
            "categorical_nodes must be increasing node indices",
        ),
        (
            {"category_offsets": np.array([0, 1], dtype=INT)},
            "category_offsets must be 1 non-decreasing offsets from 0 to 0",
        ),
        (
            {"known_offsets": np.array([0, 2, 2], dtype=INT), "known_categories": np.array([2.0, 1.0])},
            "each feature's known_categories must be strictly increasing",
        ),
        (
            {"known_offsets": np.array([0, 1, 1], dtype=INT), "known_categories": np.array([np.inf])},
            "known_categories are not all finite",
        ),
        (
            {**one_category_split("known"), "missing": np.array([MISSING_NONE], dtype=np.uint8)},
            "under the known rule, a categorical split's missing value is NaN",
        ),
        ({"classes": np.array([3, 3])}, "classes must be unique"),
        ({"classes": None}, "a classifier has no classes"),
        ({"decision": "value"}, "decision 'value' is not one of"),
        ({"kind": "regressor"}, "a regressor has classes"),
        ({"kind": "regressor", "classes": None}, "a regressor's decision is 'value'"),
    ],
)
def test_arrays_no_compiler_writes_are_refused_by_their_message(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTreeEnsembleError, match=re.escape(message)):
        small_classifier(**changes).validate()


def test_a_cycle_of_nodes_is_refused() -> None:
    """Node 1 is its own grandchild's child: refused before any walk could loop."""
    ensemble = small_classifier(
        feature=np.array([0, 0], dtype=INT),
        threshold=np.array([0.5, 0.5], dtype=np.float32),
        children=np.array([1, ~0, 1, ~1], dtype=INT),
        default_left=np.array([True, True]),
        missing=np.zeros(2, dtype=np.uint8),
        node_offsets=np.array([0, 2, 2], dtype=INT),
        leaf_offsets=np.array([0, 3, 4], dtype=INT),
        leaf_values=np.ones((4, 2)),
    )
    with pytest.raises(
        InvalidTreeEnsembleError, match="children holds a node or leaf outside its tree, or a node before"
    ):
        ensemble.validate()


def test_the_stored_arrays_are_read_back_the_same_and_checked_at_load() -> None:
    arrays = small_classifier().to_arrays("final/")
    assert str(arrays["final/engine"]) == "trees"
    engine = load_engine(arrays, "final/")
    rows = np.array([[0.0, 1.0]])
    assert engine.predict_proba(rows).tobytes() == TreeEngine(small_classifier()).predict_proba(rows).tobytes()

    arrays["final/format_version"] = np.array(99)
    with pytest.raises(ValueError, match=f"compiled tree ensemble format 99, expected {FORMAT_VERSION}: rebuild"):
        load_engine(arrays, "final/")
    arrays = small_classifier().to_arrays()
    del arrays["leaf_values"]
    with pytest.raises(InvalidTreeEnsembleError, match="leaf_values is missing"):
        TreeEnsemble.from_arrays(arrays)
    arrays = small_classifier().to_arrays()
    arrays["average"] = np.array("yes")
    with pytest.raises(InvalidTreeEnsembleError, match="average is a <U3 scalar, expected a bool"):
        TreeEnsemble.from_arrays(arrays)


def not_accepted(problem: str) -> str:
    """The whole message of an input the model refuses, as a pattern."""
    return f"^input contains {re.escape(problem)}, which this model does not accept$"


def test_rows_the_library_refuses_are_refused() -> None:
    engine = TreeEngine(small_classifier())
    with pytest.raises(ValueError, match=r"expected rows of 2 features, got shape \(1, 3\)"):
        engine.predict(np.zeros((1, 3)))
    for value in (np.inf, -np.inf, 1e39):
        with pytest.raises(NonFiniteInputError, match=not_accepted("infinity, or a value too large for float32")):
            engine.predict(np.array([[0.0, value]]))
    finite_only = TreeEngine(small_classifier(input_check="finite"))
    with pytest.raises(NonFiniteInputError, match=not_accepted("NaN or infinity, or a value too large for float32")):
        finite_only.predict(np.array([[np.nan, 0.0]]))
    categorical = TreeEngine(
        small_classifier(
            input_check="any", known_offsets=np.array([0, 1, 1], dtype=INT), known_categories=np.array([1.0])
        )
    )
    with pytest.raises(NonFiniteInputError, match=not_accepted("infinity in a categorical feature")):
        categorical.predict(np.array([[np.inf, 0.0]]))
    assert categorical.predict(np.array([[0.0, np.inf]])).tolist() == [7]


@pytest.mark.parametrize("use_native", [True, False])
def test_an_empty_batch_answers_no_rows(use_native: bool) -> None:
    engine = TreeEngine(small_classifier(), use_native=use_native)
    assert (engine.native is not None) == use_native
    assert engine.predict(np.zeros((0, 2))).tolist() == []
    assert engine.predict_proba(np.zeros((0, 2))).shape == (0, 2)


def test_a_signalling_nan_is_read_as_nan_without_a_floating_point_warning() -> None:
    """Its conversion to float32 raises the invalid flag, which numpy would report as a warning."""
    signalling_nan = np.array([0x7FF0000000000001], dtype=np.uint64).view(np.float64)[0]
    engine = TreeEngine(small_classifier())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert engine.predict_proba(np.array([[0.0, signalling_nan]])).tolist() == [[0.75, 0.25]]


@pytest.mark.parametrize("input_dtype", ["float32", "float64"])
def test_the_walk_holds_a_16_byte_record_a_node_or_leaf(input_dtype: str) -> None:
    """What the engine's memory grows with (float32 thresholds padded to 16 bytes)."""
    ensemble = random_ensemble(11, "truncate", "<=", input_dtype, "float64")
    engine = TreeEngine(ensemble, use_native=False)
    assert engine.nodes.nbytes == 16 * (ensemble.n_nodes + ensemble.n_leaves)


def test_an_ensemble_of_more_nodes_and_leaves_than_the_engine_indexes_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ensemble = random_ensemble(11, "truncate", "<=", "float64", "float64")
    size = ensemble.n_nodes + ensemble.n_leaves
    monkeypatch.setattr(tree_engine, "MAX_NODES", size + 1)
    rows = random_rows(3, ensemble, 20)
    assert TreeEngine(ensemble).predict(rows).tobytes() == reference_scores(ensemble, rows)[:, 0].tobytes()
    monkeypatch.setattr(tree_engine, "MAX_NODES", size)
    with pytest.raises(ValueError, match=f"^{size} nodes and leaves: more than this engine indexes \\({size}\\)$"):
        TreeEngine(ensemble)


def test_a_regressor_has_no_probabilities() -> None:
    engine = TreeEngine(random_ensemble(0, "known", "<=", "float64", "float64"))
    with pytest.raises(TypeError, match="only defined for classifiers"):
        engine.predict_proba(np.zeros((1, engine.n_features)))
    assert engine.classes is None


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        ("argmax_raw", [0, 0, 0]),  # one score column: its first maximum is always the first class
        ("raw_above_zero", [0, 1, 1]),
        ("raw_at_least_zero", [1, 1, 1]),
        ("proba_above_half", [0, 0, 1]),
        ("argmax_proba", [0, 0, 1]),
    ],
)
def test_each_decision_picks_the_class_its_library_picks(decision: str, expected: list[int]) -> None:
    """Scores 0, 1e-20 and 2 (x <= 0.5, x <= 1 or neither), through expit: probabilities
    [0.5, 0.5] (1e-20 does not move it off one half) and [0.12, 0.88]."""
    ensemble = small_classifier(
        classes=np.array([0, 1]),
        feature=np.array([0, 0], dtype=INT),
        threshold=np.array([1.0, 0.5], dtype=np.float32),
        children=np.array([1, ~2, ~0, ~1], dtype=INT),
        default_left=np.array([True, True]),
        missing=np.zeros(2, dtype=np.uint8),
        node_offsets=np.array([0, 2], dtype=INT),
        leaf_offsets=np.array([0, 3], dtype=INT),
        leaf_values=np.array([[0.0], [1e-20], [2.0]]),
        tree_output=np.zeros(1, dtype=INT),
        base_score=np.zeros(1),
        average=False,
        link="expit",
        decision=decision,
    )

    assert TreeEngine(ensemble).predict(np.array([[0.0, 0.0], [0.7, 0.0], [5.0, 0.0]])).tolist() == expected
