"""The links compute what their libraries compute, to the bit."""

from __future__ import annotations

import numpy as np
from scipy.special import expit as scipy_expit
from sklearn.utils.extmath import softmax as sklearn_softmax

from serving.engines.links import LINKS, expit


def test_expit_is_scipys_to_the_bit() -> None:
    rng = np.random.default_rng(0)
    # Around 0, where both tails saturate, where libm's exp overflows (-709.78), subnormals, NaN.
    edges = np.array(
        [0.0, -0.0, 5e-324, -5e-324, 36.7, -36.7, 699.9, 700.0, 709.78, -709.78, -709.79, -745.2, 1e308, -1e308, np.nan]
    )
    raw = np.concatenate([edges, rng.normal(0, 1, 2000), rng.normal(0, 300, 2000)])

    assert expit(raw).tobytes() == scipy_expit(raw).tobytes()
    assert expit(raw.reshape(-1, 1)).tobytes() == scipy_expit(raw.reshape(-1, 1)).tobytes()


def test_softmax_is_scikit_learns_in_either_memory_order() -> None:
    """Nine classes: numpy sums eight or more values pairwise along a row in C order, one column at
    a time in F order; the link keeps the scores' order, as scikit-learn's losses do."""
    scores = np.random.default_rng(1).normal(0, 5, size=(500, 9))
    for ordered in (np.ascontiguousarray(scores), np.asfortranarray(scores)):
        expected = sklearn_softmax(ordered.copy(order="K"), copy=False)
        assert LINKS["softmax"](ordered, 1.0).tobytes() == expected.tobytes()


def test_binary_links_give_both_columns_as_scikit_learn_does() -> None:
    scores = np.random.default_rng(2).normal(0, 3, size=(100, 1))

    proba = LINKS["expit"](scores, 1.0)
    assert proba[:, 1].tobytes() == scipy_expit(scores[:, 0]).tobytes()
    assert proba[:, 0].tobytes() == (1 - scipy_expit(scores[:, 0])).tobytes()
    assert LINKS["exponential_loss"](scores, 1.0)[:, 1].tobytes() == scipy_expit(2 * scores[:, 0]).tobytes()
