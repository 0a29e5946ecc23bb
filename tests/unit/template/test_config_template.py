"""serving/config.py against template.yaml: the function's defaults are the template's values, and
the S3 pin record `make publish` prints deploys a function that loads exactly that pin."""

from __future__ import annotations

from typing import Any

import pytest

from serving.config import (
    DEFAULT_METRICS_NAMESPACE,
    DEFAULT_SERVICE_NAME,
    S3_PIN,
    S3ModelSource,
    load_settings,
    metrics_namespace_for,
    service_name_for,
)
from tests.cloudformation import deployed


def function_variables(parameters: dict[str, str] | None = None) -> dict[str, Any]:
    resources, _ = deployed(parameters)
    variables: dict[str, Any] = resources["PredictFunction"]["Properties"]["Environment"]["Variables"]
    return variables


def test_the_defaults_are_the_templates_values() -> None:
    variables = function_variables()

    # Unset by default: the function names itself after its model (iris-predict, IrisPrediction).
    assert "POWERTOOLS_SERVICE_NAME" not in variables
    assert "POWERTOOLS_METRICS_NAMESPACE" not in variables
    assert function_variables({"MetricsNamespace": "Team"})["POWERTOOLS_METRICS_NAMESPACE"] == "Team"
    assert (service_name_for("iris-random-forest"), metrics_namespace_for("iris-random-forest")) == (
        DEFAULT_SERVICE_NAME,
        DEFAULT_METRICS_NAMESPACE,
    )


def test_the_published_pin_deploys_a_function_loading_that_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = S3ModelSource(bucket="models", key="iris/model.zip", version_id="3HL4kqtJlcpXroDTDmJ", sha256="ab" * 32)
    overrides = dict(pair.split("=", 1) for pair in pinned.parameter_overrides().split(" "))
    assert sorted(overrides) == sorted(parameter for _, _, parameter in S3_PIN)

    for name, value in function_variables(overrides).items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)

    assert load_settings().model_source == pinned
