"""The linear engine's arithmetic (serving/engines/linear.py): scipy's values, without warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import expit as scipy_expit

from serving.engines.linear import expit


@pytest.mark.parametrize("decision", [-800.0, -745.2, -1e300, 710.0, 1e300])
def test_expit_overflows_silently_to_scipys_value(decision: float) -> None:
    decisions = np.array([decision, 0.5])

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = expit(decisions)

    assert result.tobytes() == scipy_expit(decisions).tobytes()
