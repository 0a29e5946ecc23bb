"""serving/config.py: the function's service name, metrics namespace and default stack name
follow the model's name; the default Iris model keeps the names it always had."""

from __future__ import annotations

import pytest

from serving.config import load_settings, metrics_namespace_for, service_name_for


@pytest.mark.parametrize(
    ("model", "service", "batch", "namespace"),
    [
        ("iris-random-forest", "iris-predict", "iris-batch-scoring", "IrisPrediction"),
        ("penguin-species", "penguin-species-predict", "penguin-species-batch-scoring", "PenguinSpeciesPrediction"),
        ("churn_v2.1", "churn_v2.1-predict", "churn_v2.1-batch-scoring", "ChurnV21Prediction"),
    ],
)
def test_names_follow_the_model(model: str, service: str, batch: str, namespace: str) -> None:
    assert service_name_for(model) == service
    assert service_name_for(model, "batch-scoring") == batch
    assert metrics_namespace_for(model) == namespace


def test_the_batch_jobs_function_names_itself_for_its_role(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.cloudformation import deployed

    resources, _ = deployed({"EnableBatchScoring": "true", "InputBucket": "in", "OutputBucket": "out"})
    variables = resources["BatchScoringFunction"]["Properties"]["Environment"]["Variables"]
    for name, value in variables.items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)

    settings = load_settings()

    assert (settings.service_name, settings.role) == (None, "batch-scoring")
    assert service_name_for("iris-random-forest", settings.role) == "iris-batch-scoring"
