"""The engine registry: every compiled engine round-trips through one .npz and the gate."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures

from build.engines import (
    ExactnessError,
    UnsupportedEstimatorError,
    check_exactness,
    compile_estimator,
    compiler_for,
    identical,
)
from build.engines.base import serialize
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
    with pytest.raises(UnsupportedEstimatorError, match="no compiled engine for KNeighborsClassifier"):
        compile_estimator(KNeighborsClassifier().fit(IRIS.data, IRIS.target))
    with pytest.raises(ValueError, match="unknown compiled engine 'abacus'"):
        load_engine({"engine": np.array("abacus")})


def test_gate_compares_object_labels_by_type_and_value() -> None:
    labels = np.array(["setosa", "versicolor"], dtype=object)
    copied = np.array(["".join("setosa"), "".join("versicolor")], dtype=object)

    assert identical(labels, copied)
    assert not identical(labels, np.array(["setosa", "virginica"], dtype=object))
    assert not identical(labels, np.array(["setosa", "versicolor"]))
    assert not identical(np.array([1, 2], dtype=object), np.array([1.0, 2.0], dtype=object))


def test_an_unsupported_step_is_named_through_the_registry() -> None:
    pipeline = make_pipeline(PolynomialFeatures(), LogisticRegression(max_iter=1000)).fit(IRIS.data, IRIS.target)

    refusal = r"step .polynomialfeatures. \(PolynomialFeatures\): no compiled engine"
    with pytest.raises(UnsupportedEstimatorError, match=refusal):
        compile_estimator(pipeline)
