"""The engine registry: every compiled engine round-trips through one .npz and the gate."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression

from build.compile_forest import serialize
from build.engines import ExactnessError, UnsupportedEstimatorError, check_exactness, compile_estimator, compiler_for
from serving.engines import load_engine

IRIS = load_iris()


def round_trip(arrays: dict[str, Any]) -> dict[str, Any]:
    with np.load(io.BytesIO(serialize(arrays)), allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


@pytest.mark.parametrize("prefix", ["", "steps/1/"])
@pytest.mark.parametrize(
    "estimator",
    [RandomForestClassifier(n_estimators=5, random_state=0), RandomForestRegressor(n_estimators=5, random_state=0)],
)
def test_forest_through_the_registry_is_exact(estimator: Any, prefix: str) -> None:
    estimator.fit(IRIS.data, IRIS.target)
    arrays = round_trip(compile_estimator(estimator, prefix))
    engine = load_engine(arrays, prefix)

    assert engine.n_features == 4
    assert (engine.classes is None) == (not hasattr(estimator, "classes_"))
    probes = compiler_for(estimator).probe_rows(estimator, IRIS.data)
    assert check_exactness(estimator, engine, {"iris": IRIS.data, "probes": probes}) == len(IRIS.data) + len(probes)


def test_gate_names_a_difference() -> None:
    estimator = RandomForestClassifier(n_estimators=5, random_state=0).fit(IRIS.data, IRIS.target)
    arrays = compile_estimator(estimator)
    arrays["leaf_values"] = arrays["leaf_values"] * (1 + 1e-15)

    with pytest.raises(ExactnessError, match="iris: predict_proba differs"):
        check_exactness(estimator, load_engine(arrays), {"iris": IRIS.data})


def test_unknown_estimator_and_kind_are_refused() -> None:
    with pytest.raises(UnsupportedEstimatorError, match="no compiled engine for LogisticRegression"):
        compile_estimator(LogisticRegression())
    with pytest.raises(ValueError, match="unknown compiled engine 'abacus'"):
        load_engine({"engine": np.array("abacus")})
