"""Unexpected failures: logged with the invocation's context, answered with a generic 500."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import pytest

from local.lambda_local import LambdaContext
from serving.model import LoadedModel, Predictions
from tests.events import http_api_event, response_json, rest_api_event
from tests.unit.conftest import LogRecords


def failing_predict(self: LoadedModel, rows: Sequence[Sequence[float]], probabilities: bool = False) -> Predictions:
    raise RuntimeError("secret internal detail at /var/task/serving/model.py")


@pytest.fixture
def broken_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LoadedModel, "predict", failing_predict)


@pytest.mark.usefixtures("broken_model")
def test_unexpected_error_is_a_generic_500(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    response = app_module.handler(http_api_event(), lambda_context)

    assert response["statusCode"] == 500
    assert response_json(response) == {"error": "internal error; the request was logged and can be retried"}
    assert "secret" not in response["body"]
    assert "Traceback" not in response["body"]


@pytest.mark.usefixtures("broken_model")
def test_unexpected_error_is_logged_with_context(
    app_module: ModuleType, lambda_context: LambdaContext, log_records: LogRecords
) -> None:
    event = rest_api_event()

    app_module.handler(event, lambda_context)

    [record] = log_records()
    assert record["level"] == "ERROR"
    assert record["message"] == "unhandled error"
    assert record["path"] == "/Prod/predict"
    assert "RuntimeError: secret internal detail" in str(record["exception"])
    assert record["correlation_id"] == event["requestContext"]["requestId"]
    assert record["function_request_id"] == lambda_context.aws_request_id
    assert record["service"] == "iris-predict"
