"""What every engine, compiled or scikit-learn's, answers alike (serving/engines/base.py's Protocol)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from build.engines import compile_estimator
from serving.engines import load_engine
from serving.engines.base import check_format_version
from serving.engines.scikit_learn import ScikitLearnEngine

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


@pytest.mark.parametrize("stored", [np.array(1.0), np.array([1]), np.array("1")])
def test_a_format_version_that_is_no_integer_is_refused_saying_what_it_is(stored: np.ndarray) -> None:
    with pytest.raises(ValueError, match=rf"^compiled forest format_version is a {stored.ndim}-d .* not an integer$"):
        check_format_version({"forest.format_version": stored}, "forest.", "forest", 1)


@pytest.mark.parametrize("found", [0, 2, 99])
def test_arrays_of_another_format_version_are_refused_naming_both_versions_and_the_fix(found: int) -> None:
    arrays = {"forest.format_version": np.array(found)}
    message = f"^compiled forest format {found}, expected 1: rebuild the package$"
    with pytest.raises(ValueError, match=message):
        check_format_version(arrays, "forest.", "forest", 1)
    check_format_version({"forest.format_version": np.array(1)}, "forest.", "forest", 1)  # its own version reads
