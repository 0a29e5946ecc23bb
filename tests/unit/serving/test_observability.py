"""What an invocation emits: structured log lines, embedded-metric-format documents, traces."""

from __future__ import annotations

import json
import logging
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from local.lambda_local import LambdaContext
from tests.events import http_api_event
from tests.unit.conftest import LogRecords

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.1, 2.8, 4.7, 1.2], [6.3, 3.3, 6.0, 2.5], [6.4, 3.2, 4.5, 1.5]]


def emf_documents(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


def metric_names(document: dict[str, Any]) -> list[str]:
    return [metric["Name"] for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]


def test_a_batch_emits_rows_latency_and_predictions_by_class(
    app_module: ModuleType, lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    app_module.handler(http_api_event(body={"instances": ROWS}), lambda_context)

    [request] = [doc for doc in emf_documents(capsys.readouterr().out) if "RowsPerRequest" in doc]
    assert request["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "IrisPrediction"
    assert request["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert request["service"] == "iris-predict"
    assert metric_names(request) == [
        "RowsPerRequest",
        "ModelLatency",
        "Predictions_setosa",
        "Predictions_versicolor",
        "Predictions_virginica",
    ]
    assert request["RowsPerRequest"] == [4.0]
    assert [request[f"Predictions_{name}"] for name in ("setosa", "versicolor", "virginica")] == [[1.0], [2.0], [1.0]]
    assert request["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Unit"] == "Milliseconds"


def test_cold_start_is_counted_once(
    app_module: ModuleType,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cold_start, "is_cold_start", True)
    capsys.readouterr()

    app_module.handler(http_api_event(), lambda_context)
    app_module.handler(http_api_event(), lambda_context)

    cold_starts = [doc for doc in emf_documents(capsys.readouterr().out) if "ColdStart" in doc]
    assert len(cold_starts) == 1
    assert cold_starts[0]["function_name"] == lambda_context.function_name


def test_rejected_input_is_counted_and_logged(
    app_module: ModuleType,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
    log_records: LogRecords,
) -> None:
    event = http_api_event(body={"features": [6.1, "2.8", 4.7, 1.2]})
    capsys.readouterr()

    app_module.handler(event, lambda_context)

    [document] = [doc for doc in emf_documents(capsys.readouterr().out) if "ValidationErrors" in doc]
    [record] = [r for r in log_records() if r["message"] == "request rejected"]
    assert document["ValidationErrors"] == [1.0]
    assert record["status"] == 422
    assert str(record["error"]).startswith("invalid request: features[1]: Input should be a valid number")
    assert record["correlation_id"] == event["requestContext"]["requestId"]
    assert record["cold_start"] in (True, False)
    assert record["function_name"] == lambda_context.function_name


def test_mangum_is_quiet(app_module: ModuleType) -> None:
    assert logging.getLogger("mangum").getEffectiveLevel() == logging.WARNING
