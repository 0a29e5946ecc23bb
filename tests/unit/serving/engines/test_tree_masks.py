"""The tree engine's leaf masks (QuickScorer's bitvectors, serving/engines/tree_engine.py) find
the leaves the format says, bit for bit as the walk does, on generated ensembles of numeric
splits with NaN routed by `default_left`; and they are built only where they apply."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from serving.engines import tree_engine
from serving.engines.tree_engine import TreeEngine
from serving.engines.trees import MISSING_NAN, TreeEnsemble
from tests.unit.serving.engines.test_trees import (
    INT,
    random_ensemble,
    random_rows,
    reference_scores,
    without_categories,
)


def numeric(ensemble: TreeEnsemble) -> TreeEnsemble:
    """The ensemble with every split numeric and NaN its only missing value: what the masks serve."""
    return without_categories(ensemble, missing=MISSING_NAN)


@given(
    seed=st.integers(0, 2**32 - 1),
    comparison=st.sampled_from(["<=", "<"]),
    input_dtype=st.sampled_from(["float32", "float64"]),
    value_dtype=st.sampled_from(["float32", "float64"]),
    n_rows=st.sampled_from([1, 5, tree_engine.FEW_ROWS, tree_engine.FEW_ROWS + 1]),
)
def test_leaf_masks_find_the_leaves_the_walk_finds_bit_for_bit(
    seed: int, comparison: str, input_dtype: str, value_dtype: str, n_rows: int
) -> None:
    ensemble = numeric(random_ensemble(seed, "truncate", comparison, input_dtype, value_dtype))
    ensemble = TreeEnsemble.from_arrays(ensemble.to_arrays())  # valid as stored
    rows = random_rows(seed, ensemble, n_rows)
    engine = TreeEngine(ensemble, use_native=False)
    assert engine.masks is not None
    walking = TreeEngine(ensemble, use_native=False)
    walking.masks = None

    expected = reference_scores(ensemble, rows)[:, 0]
    assert engine.predict(rows).tobytes() == expected.tobytes()
    assert walking.predict(rows).tobytes() == expected.tobytes()


def test_masks_are_built_only_for_the_numpy_walk_of_numeric_nan_missing_trees_of_small_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ensemble = random_ensemble(11, "truncate", "<=", "float64", "float64")
    assert ensemble.categorical_nodes.size or (ensemble.missing != MISSING_NAN).any()
    assert TreeEngine(ensemble, use_native=False).masks is None
    assert TreeEngine(numeric(ensemble), use_native=False).masks is not None
    assert TreeEngine(numeric(ensemble)).masks is None  # the C walk outruns them
    monkeypatch.setattr(tree_engine, "MASK_BITS", 1)  # trees of more leaves than a word holds
    assert TreeEngine(numeric(ensemble), use_native=False).masks is None
    monkeypatch.setattr(tree_engine, "MASK_BITS", 64)
    monkeypatch.setattr(tree_engine, "MASK_TABLE_BYTES", 1)  # tables too large
    assert TreeEngine(numeric(ensemble), use_native=False).masks is None


@pytest.mark.parametrize("block_bytes", [1, 100, 1 << 20])
def test_mask_blocks_do_not_change_the_answer(block_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    ensemble = numeric(random_ensemble(11, "truncate", "<", "float32", "float64"))
    rows = random_rows(3, ensemble, 500)
    monkeypatch.setattr(tree_engine, "MASK_BLOCK_BYTES", block_bytes)
    assert (
        TreeEngine(ensemble, use_native=False).predict(rows).tobytes()
        == reference_scores(ensemble, rows)[:, 0].tobytes()
    )


def test_masks_are_built_while_their_tables_fit_mask_table_bytes_to_the_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables' memory bound: a bin a split plus two a feature split on, a word a tree, each
    word of the narrowest unsigned type that holds a tree's leaves (here 10 leaves: 2 bytes)."""
    ensemble = random_ensemble(10, "truncate", "<=", "float64", "float64")
    ensemble = numeric(dataclasses.replace(ensemble, n_features=ensemble.n_features + 1))  # one unused
    splits = np.bincount(ensemble.feature, minlength=ensemble.n_features)
    assert splits.tolist() == [6, 3, 1, 0]
    assert (ensemble.n_trees, int(np.diff(ensemble.leaf_offsets).max())) == (3, 10)
    bound = (8 + 5 + 3 + 0) * 3 * 2

    monkeypatch.setattr(tree_engine, "MASK_TABLE_BYTES", bound)
    assert TreeEngine(ensemble, use_native=False).masks is not None
    monkeypatch.setattr(tree_engine, "MASK_TABLE_BYTES", bound - 1)
    assert TreeEngine(ensemble, use_native=False).masks is None


def trees_of_leaves(seed: int, leaf_counts: list[int], comparison: str, input_dtype: str) -> TreeEnsemble:
    """A regressor of numeric trees of random shapes with exactly these numbers of leaves (deeper
    and wider than random_ensemble's, whose trees hold at most 32), NaN routed by `default_left`."""
    rng = np.random.default_rng(seed)
    thresholds = np.array([0.0, -0.0, 1.5, -2.25, 1e-36, 3e38, 7.0], dtype=input_dtype)
    feature: list[int] = []
    children: list[int] = []
    node_offsets, leaf_offsets = [0], [0]
    for n_leaves in leaf_counts:
        # A shape: split a random leaf until there are n_leaves (node 0 the root).
        below: dict[int, tuple[int, int]] = {}
        leaves, made = [0], 1
        while len(leaves) < n_leaves:
            split = leaves.pop(int(rng.integers(len(leaves))))
            below[split] = (made, made + 1)
            leaves += [made, made + 1]
            made += 2
        # Laid out breadth first, nodes and leaves numbered apart, a node's children after it.
        order = [0]
        for shape_node in order:
            order += below.get(shape_node, ())
        nodes = [shape_node for shape_node in order if shape_node in below]
        number = {shape_node: node_offsets[-1] + i for i, shape_node in enumerate(nodes)}
        leaves = [shape_node for shape_node in order if shape_node not in below]
        number |= {shape_node: ~(leaf_offsets[-1] + i) for i, shape_node in enumerate(leaves)}
        for shape_node in nodes:
            children += [number[child] for child in below[shape_node]]
            feature.append(int(rng.integers(3)))
        node_offsets.append(node_offsets[-1] + len(nodes))
        leaf_offsets.append(leaf_offsets[-1] + n_leaves)
    n_nodes = node_offsets[-1]
    return TreeEnsemble(
        kind="regressor",
        n_features=3,
        classes=None,
        input_dtype=input_dtype,
        input_check="any",
        comparison=comparison,
        category_rule="truncate",
        feature=np.array(feature, dtype=INT),
        threshold=rng.choice(thresholds, size=n_nodes),
        children=np.array(children, dtype=INT),
        default_left=rng.random(n_nodes) < 0.5,
        missing=np.full(n_nodes, MISSING_NAN, dtype=np.uint8),
        node_offsets=np.array(node_offsets, dtype=INT),
        leaf_offsets=np.array(leaf_offsets, dtype=INT),
        categorical_nodes=np.zeros(0, dtype=INT),
        category_offsets=np.zeros(1, dtype=INT),
        category_bitsets=np.zeros(0, dtype=np.uint32),
        known_offsets=np.zeros(4, dtype=INT),
        known_categories=np.zeros(0),
        tree_output=np.zeros(len(leaf_counts), dtype=INT),
        leaf_values=rng.choice(np.array([0.0, -0.0, 0.1, 1e16, -3.5, 1.0 / 3.0]), size=(leaf_offsets[-1], 1)),
        base_score=np.zeros(1),
        average=False,
        link="identity",
        link_parameter=1.0,
        score_order="C",
        decision="value",
    )


# A tree's most leaves, and the narrowest unsigned word that holds a bit for each.
WORDS = {8: "uint8", 9: "uint16", 16: "uint16", 17: "uint32", 32: "uint32", 33: "uint64", 64: "uint64"}


@given(
    seed=st.integers(0, 2**32 - 1),
    most=st.sampled_from(sorted(WORDS)),
    comparison=st.sampled_from(["<=", "<"]),
    input_dtype=st.sampled_from(["float32", "float64"]),
)
def test_trees_of_up_to_a_word_of_leaves_take_masks_of_the_narrowest_word_and_answer_as_the_format(
    seed: int, most: int, comparison: str, input_dtype: str
) -> None:
    """A tree of `most` leaves (64: every bit of a uint64 word a leaf) beside smaller ones."""
    ensemble = trees_of_leaves(seed, [most, 1, max(1, most // 3)], comparison, input_dtype)
    ensemble.validate()
    rows = random_rows(seed, ensemble, 40)
    engine = TreeEngine(ensemble, use_native=False)

    assert engine.masks is not None
    assert engine.masks.dtype == np.dtype(WORDS[most])
    assert engine.predict(rows).tobytes() == reference_scores(ensemble, rows)[:, 0].tobytes()


def test_trees_of_more_leaves_than_a_word_holds_are_walked() -> None:
    ensemble = trees_of_leaves(0, [65, 3], "<=", "float64")
    rows = random_rows(0, ensemble, 40)
    engine = TreeEngine(ensemble, use_native=False)

    assert engine.masks is None
    assert engine.predict(rows).tobytes() == reference_scores(ensemble, rows)[:, 0].tobytes()
