"""The compiled engines' boundaries that make mutate found untested: a quoted value exactly at the
length limit, an unknown category among exactly the listed number of known ones, the exact text
of the regressor's predict_proba refusal, and the overflow inside the linear expit. Expected
values are literals from the documented limits, or scipy's own expit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit as scipy_expit
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from build.engines import compile_estimator
from serving.engines import load_engine
from serving.engines.errors import UnknownCategoryError, shortened
from serving.engines.linear import expit
from serving.engines.scikit_learn import ScikitLearnEngine

# Documented in serving/engines/errors.py: a quoted value is at most 40 characters, and an unknown
# category's message lists at most 10 known ones. Written out here, not imported.
QUOTED = 40
LISTED = 10


@given(length=st.integers(0, 2 * QUOTED))
def test_a_value_is_quoted_whole_up_to_the_limit_and_cut_to_it_beyond(length: int) -> None:
    value = "a" * length  # its repr is 2 characters longer: the quotes
    quoted = shortened(value)

    if length + 2 <= QUOTED:
        assert quoted == "'" + value + "'"
    else:
        assert quoted == "'" + "a" * (QUOTED - 4) + "..."
        assert len(quoted) == QUOTED


@given(n_known=st.integers(1, 2 * LISTED))
def test_an_unknown_category_lists_ten_known_ones_and_counts_the_rest(n_known: int) -> None:
    known = [f"c{number}" for number in range(n_known)]

    message = str(UnknownCategoryError("island", "Atlantis", known))

    listed = ", ".join(repr(category) for category in known[:LISTED])
    more = f" and {n_known - LISTED} more" if n_known > LISTED else ""
    assert message == f"unknown category 'Atlantis' for feature 'island'; known: {listed}{more}"


REGRESSORS = {
    "forest": RandomForestRegressor(n_estimators=2, random_state=0),
    "boosted trees": GradientBoostingRegressor(n_estimators=2, random_state=0),
    "linear": Ridge(),
    "pipeline": make_pipeline(StandardScaler(), Ridge()),
}


@pytest.mark.parametrize("kind", sorted(REGRESSORS))
def test_a_regressor_refuses_predict_proba_by_its_exact_message(kind: str) -> None:
    """Every engine, compiled or scikit-learn's, says the same words when asked for a regressor's
    probabilities."""
    rows = np.arange(40.0).reshape(20, 2)
    regressor = REGRESSORS[kind].fit(rows, rows[:, 0])
    engines = {"compiled": load_engine(compile_estimator(regressor)), "scikit-learn": ScikitLearnEngine(regressor)}

    for engine in engines.values():
        with pytest.raises(TypeError) as refused:
            engine.predict_proba(rows)
        assert str(refused.value) == "predict_proba is only defined for classifiers"


@pytest.mark.parametrize("decision", [-800.0, -745.2, -1e300, 710.0, 1e300])
def test_expit_overflows_silently_to_scipys_value(decision: float) -> None:
    decisions = np.array([decision, 0.5])

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = expit(decisions)

    assert result.tobytes() == scipy_expit(decisions).tobytes()
