"""What the XGBoost and LightGBM compiler tests share: the engine as the package loads it, and the
byte-for-byte comparison with the library's own wrapper."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from serving.engines.tree_engine import TreeEngine
from serving.engines.trees import TreeEnsemble


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
