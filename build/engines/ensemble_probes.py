"""The exactness gate's probe rows for a compiled tree ensemble of another library (XGBoost,
LightGBM), bounded in number whatever the model's size.

Every split threshold appears in some row, with its neighbours in the dtype the library compares
in; every category code a categorical split tests, and codes around and beyond them; and each
library's own special values (NaN, signed zeros, infinities, LightGBM's zero threshold). A row
holds one probe value per feature, each feature's values dealt in a random order, so the rows
number as many as the longest feature's values (capped at PROBE_ROW_BUDGET, sampled evenly
beyond that), not their sum: a 1,000-tree model's probes stay a few tens of thousands of rows.
Random reference rows with some features replaced by special values follow.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from serving.engines.trees import BITSET_WORD_BITS, TreeEnsemble

PROBE_ROW_BUDGET = 40_000
PROBE_RANDOM_ROWS = 2_000
PROBE_SEED = 0
# A code just past each bitset, one far beyond any, negative codes and fractions.
EXTRA_CODES = (-1.0, -0.5, -0.0, 0.5, 1.5, 2.0**31, -(2.0**31), 1e300)


def _neighbours(values: NDArray[np.float64], dtype: np.dtype[np.floating]) -> NDArray[np.float64]:
    """Each value in `dtype`, and the next value of `dtype` below and above it."""
    exact = values.astype(dtype)
    return np.concatenate(
        [exact, np.nextafter(exact, dtype.type(-np.inf)), np.nextafter(exact, dtype.type(np.inf))]
    ).astype(np.float64)


def _feature_values(ensemble: TreeEnsemble, specials: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    dtype = np.dtype(ensemble.input_dtype)
    categorical = np.zeros(ensemble.n_nodes, dtype=bool)
    categorical[ensemble.categorical_nodes] = True
    numeric = ~categorical
    per_feature = []
    for feature in range(ensemble.n_features):
        at = ensemble.feature == feature
        thresholds = np.unique(ensemble.threshold[at & numeric].astype(np.float64))
        values = [_neighbours(thresholds, dtype), specials]
        nodes = np.flatnonzero(at & categorical)
        if nodes.size:
            positions = np.searchsorted(ensemble.categorical_nodes, nodes)
            widest = int(np.diff(ensemble.category_offsets)[positions].max(initial=0))
            codes = np.arange(widest * BITSET_WORD_BITS + 2, dtype=np.float64)
            values += [codes, codes + 0.5, np.array(EXTRA_CODES)]
        per_feature.append(np.unique(np.concatenate(values)))
    return per_feature


def probe_rows(
    ensemble: TreeEnsemble, reference_rows: NDArray[np.float64], specials: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Rows (float64, as the API hands them to the model) that reach every threshold and its
    neighbours, every category code and `specials`, then reference rows with specials mixed in."""
    rng = np.random.default_rng(PROBE_SEED)
    per_feature = _feature_values(ensemble, specials)
    n_rows = min(max(values.size for values in per_feature), PROBE_ROW_BUDGET)
    rows = np.empty((n_rows, ensemble.n_features), dtype=np.float64)
    for feature, values in enumerate(per_feature):
        if values.size > n_rows:
            values = values[np.linspace(0, values.size - 1, n_rows).astype(np.intp)]
        dealt = np.resize(values, n_rows)
        rows[:, feature] = dealt[rng.permutation(n_rows)]
    reference = np.asarray(reference_rows, dtype=np.float64)
    if not len(reference):
        return rows
    random_rows = reference[rng.integers(len(reference), size=PROBE_RANDOM_ROWS)]
    changed = rng.random(random_rows.shape) < 0.2
    random_rows[changed] = rng.choice(specials, size=int(changed.sum()))
    return np.vstack([rows, random_rows])
