"""The tree engine's C walk (serving/engines/native.py, tree_walk.c): the same bits as the numpy
walk and the format's row-by-row reference on generated ensembles, whatever its block sizes; the
numpy walk serves where the library is missing or does not load; it needs nothing of the system."""

from __future__ import annotations

import ctypes
import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from build import HOST_ARCHITECTURE
from build.native import compile_tree_walk
from serving.engines import native
from serving.engines.tree_engine import TreeEngine
from serving.engines.trees import MISSING_NAN, MISSING_NONE, TreeEnsemble
from tests.unit.serving.engines.test_trees import (
    random_ensemble,
    random_rows,
    reference_scores,
    small_classifier,
    without_categories,
)

# tree_walk.c's tuning constants other than as shipped, small enough to reach every path and
# boundary the shipped ones do not reach on small ensembles (shipped, every tree of the generated
# ensembles, at most 5 deep, takes the fixed-depth path, 8 rows a group, some groups partial). In
# both, an ensemble's shallow trees take the fixed-depth path and its deeper ones hand their slots
# on, in blocks of a few rows with a partial last one; the second has one row a group and one slot,
# the smallest of each. Each is a build of seconds of -O3: two, in the `slow` test.
SMALL_CONSTANTS = {
    "fixed depth up to 2 in groups of 2, 3 slots handed on, blocks of 5": (
        "FIXED_DEPTH=2",
        "FIXED_GROUP=2",
        "GROUP=3",
        "ROWS_PER_BLOCK=5",
    ),
    "one row a group": ("FIXED_DEPTH=1", "FIXED_GROUP=1", "GROUP=1", "ROWS_PER_BLOCK=2"),
}

# Generated ensembles of every kind of split and rows of either type.
CASES = {
    "seed": st.integers(0, 2**32 - 1),
    "rule": st.sampled_from(["known", "truncate", "nan and none only", "numeric, every missing rule"]),
    "comparison": st.sampled_from(["<=", "<"]),
    "input_dtype": st.sampled_from(["float32", "float64"]),
    "value_dtype": st.sampled_from(["float32", "float64"]),
    "n_rows": st.sampled_from([1, 4, 33, 130]),
}


@pytest.fixture(scope="module")
def small_constants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("walks")
    built = {}
    for name, defines in SMALL_CONSTANTS.items():
        path = compile_tree_walk(HOST_ARCHITECTURE, folder / f"{len(built)}.so", defines=defines)
        assert path is not None, f"the C walk ({name}) did not build"
        built[name] = native.load(path)
    return built


def none_rules_only(ensemble: TreeEnsemble, seed: int) -> TreeEnsemble:
    """The ensemble's numeric splits with NaN and None rules only: the C walk's plain step, where
    a None node's NaN goes where 0.0 goes."""
    rng = np.random.default_rng(seed)
    missing = np.where(rng.random(ensemble.missing.size) < 0.5, MISSING_NAN, MISSING_NONE).astype(np.uint8)
    return TreeEnsemble.from_arrays(without_categories(ensemble, missing).to_arrays())


def assert_the_c_walk_answers_as_the_numpy_walk_and_the_format(
    library: object, seed: int, rule: str, comparison: str, input_dtype: str, value_dtype: str, n_rows: int
) -> None:
    ensemble = random_ensemble(seed, "truncate" if rule != "known" else rule, comparison, input_dtype, value_dtype)
    if rule == "nan and none only":
        ensemble = none_rules_only(ensemble, seed)
    if rule == "numeric, every missing rule":
        ensemble = without_categories(ensemble)
    rows = random_rows(seed, ensemble, n_rows)
    numpy_walk = TreeEngine(ensemble, use_native=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(native, "library", lambda: library)
        c_walk = TreeEngine(ensemble)
    assert c_walk.native is not None
    if rule == "nan and none only":
        # Each node's NaN has one side: the C walk takes its plain step (no missing rules to read).
        assert c_walk.native.structure.missing is None

    expected = reference_scores(ensemble, rows)[:, 0]
    assert c_walk.predict(rows).tobytes() == expected.tobytes()
    assert numpy_walk.predict(rows).tobytes() == expected.tobytes()


@given(**CASES)
def test_the_c_walk_answers_as_the_numpy_walk_and_the_format_bit_for_bit(
    seed: int, rule: str, comparison: str, input_dtype: str, value_dtype: str, n_rows: int
) -> None:
    assert_the_c_walk_answers_as_the_numpy_walk_and_the_format(
        native.library(), seed, rule, comparison, input_dtype, value_dtype, n_rows
    )


@pytest.mark.slow
@given(constants=st.sampled_from(sorted(SMALL_CONSTANTS)), **CASES)
def test_with_other_block_sizes_the_c_walk_answers_the_same_bits(
    small_constants: dict[str, object],
    constants: str,
    seed: int,
    rule: str,
    comparison: str,
    input_dtype: str,
    value_dtype: str,
    n_rows: int,
) -> None:
    assert_the_c_walk_answers_as_the_numpy_walk_and_the_format(
        small_constants[constants], seed, rule, comparison, input_dtype, value_dtype, n_rows
    )


@pytest.mark.parametrize("use_native", [True, False])
@pytest.mark.parametrize(("comparison", "default_left"), [("<=", False), ("<", True)])
@pytest.mark.parametrize("threshold", [0.0, -0.0, 0.5])
def test_nan_at_a_none_node_goes_where_zero_goes(
    use_native: bool, comparison: str, default_left: bool, threshold: float
) -> None:
    """LightGBM's None type reads NaN as 0.0, which a threshold of zero splits: left under "<=",
    right under "<", whatever the default side says (here the other one); 0.5 sends it left."""
    ensemble = small_classifier(
        comparison=comparison,
        threshold=np.array([threshold], dtype=np.float32),
        default_left=np.array([default_left]),
        missing=np.array([MISSING_NONE], dtype=np.uint8),
    )
    engine = TreeEngine(ensemble, use_native=use_native)
    assert (engine.native is not None) == use_native
    zero = engine.predict_proba(np.array([[0.0, 0.0]]))
    assert engine.predict_proba(np.array([[0.0, np.nan]])).tobytes() == zero.tobytes()
    goes_left = threshold >= 0.0 if comparison == "<=" else threshold > 0.0
    assert zero.tolist() == ([[0.75, 0.25]] if goes_left else [[0.25, 0.75]])


def test_without_the_library_the_numpy_walk_serves_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    ensemble = random_ensemble(5, "truncate", "<=", "float64", "float64")
    rows = random_rows(5, ensemble, 50)
    with_library = TreeEngine(ensemble)
    monkeypatch.setattr(native, "LIBRARY", Path("/nonexistent/_tree_walk.so"))
    native.library.cache_clear()
    try:
        without = TreeEngine(ensemble)
    finally:
        native.library.cache_clear()
    assert with_library.native is not None
    assert without.native is None
    assert without.predict(rows).tobytes() == with_library.predict(rows).tobytes()


def test_a_library_that_does_not_load_is_logged_and_the_numpy_walk_serves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "_tree_walk.so"
    broken.write_bytes(b"not a shared object")
    with pytest.raises(OSError, match=r"_tree_walk\.so: ") as refused:
        ctypes.CDLL(str(broken))
    with caplog.at_level(logging.WARNING, logger=native.__name__):
        assert native.load(broken) is None
    # The whole line, with the loader's reason (a file too short for an ELF header): what an operator reads.
    assert [record.getMessage() for record in caplog.records] == [
        f"the tree engine walks with numpy: _tree_walk.so does not load here ({refused.value})"
    ]


def test_the_library_needs_nothing_of_the_system_it_runs_on() -> None:
    """No shared library needed (not even libc) and no symbol to find in one: it loads on any
    Linux of its architecture, whatever the build machine's glibc."""
    library = compile_tree_walk(HOST_ARCHITECTURE)
    assert library is not None
    dynamic = subprocess.run(
        ["readelf", "--dynamic", "--dyn-syms", "--wide", str(library)], capture_output=True, text=True, check=True
    )
    assert "NEEDED" not in dynamic.stdout
    undefined = [line for line in dynamic.stdout.splitlines() if " UND " in line and line.split()[-1] != "UND"]
    assert undefined == []
    assert all(name in dynamic.stdout for name in native.SCORE_FUNCTIONS)


@pytest.mark.parametrize("seed", range(8))
def test_the_c_walk_keeps_the_arrays_it_reads_alive(seed: int) -> None:
    """The structure holds only addresses: the arrays made for it alone (here the None rule's sides
    for NaN) must live as long as the walk, or freed memory taken by other arrays changes answers."""
    ensemble = none_rules_only(random_ensemble(seed, "truncate", "<=", "float64", "float64"), seed)
    rows = random_rows(seed, ensemble, 200)
    engine = TreeEngine(ensemble)
    assert engine.native is not None
    slots = ensemble.n_nodes + ensemble.n_leaves
    taken = [np.full(slots, 1, dtype=np.uint8) for _ in range(64)]  # whatever memory is free

    assert engine.predict(rows).tobytes() == reference_scores(ensemble, rows)[:, 0].tobytes()
    assert all(array.all() for array in taken)
