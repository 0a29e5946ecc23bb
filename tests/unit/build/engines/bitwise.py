"""What the XGBoost and LightGBM compiler and native-file tests share: the generated rows, the engine
as the package loads it, and the byte-for-byte comparison with the library's own wrapper."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

from serving.engines.tree_engine import TreeEngine
from serving.engines.trees import TreeEnsemble


@st.composite
def grid_rows(
    draw: st.DrawFn, grid: list[float], n_features: tuple[int, int], n_rows: tuple[int, int]
) -> tuple[NDArray[np.float64], int]:
    """Rows whose cells are drawn from `grid` (repeats make thresholds land on its values; NaN is
    missing), `n_features` and `n_rows` in the given ranges, and a seed for the model fitted on them."""
    features = draw(st.integers(*n_features))
    rows = draw(st.integers(*n_rows))
    cells = draw(st.lists(st.sampled_from(grid), min_size=rows * features, max_size=rows * features))
    return np.array(cells, dtype=np.float64).reshape(rows, features), draw(st.integers(0, 2**16))


def same_bits(left: NDArray[Any], right: NDArray[Any]) -> bool:
    """Equal dtype, shape and bytes."""
    return bool(left.dtype == right.dtype and left.shape == right.shape and left.tobytes() == right.tobytes())


def through_arrays(ensemble: TreeEnsemble) -> TreeEngine:
    """The engine as the package loads it: through the stored arrays."""
    return TreeEngine.from_arrays(ensemble.to_arrays())


def assert_same(estimator: Any, engine: TreeEngine, rows: NDArray[np.float64]) -> None:
    """`predict` and, for a classifier, `predict_proba` equal the estimator's: dtype, shape and bytes."""
    with warnings.catch_warnings():
        # XGBoost warns about its own configuration on predict; the answers are what is compared.
        warnings.simplefilter("ignore")
        expected = np.asarray(estimator.predict(rows))
        actual = engine.predict(rows)
        assert expected.dtype == actual.dtype
        assert expected.tobytes() == actual.tobytes()
        if engine.classes is not None:
            expected_proba = estimator.predict_proba(rows)
            actual_proba = engine.predict_proba(rows)
            assert expected_proba.dtype == actual_proba.dtype
            assert expected_proba.shape == actual_proba.shape
            assert expected_proba.tobytes() == actual_proba.tobytes()
