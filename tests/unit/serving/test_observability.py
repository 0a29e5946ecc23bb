"""What an invocation emits: structured log lines, embedded-metric-format documents, traces."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from build import FUNCTION_DIR
from local.lambda_runtime import LambdaContext
from tests.events import http_api_event
from tests.unit.conftest import LogRecords, one_engine

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


# Tracing around the real entry point: app.handler, with tracing switched on as the template does it, sends the
# handler's segment and a `model.predict` subsegment to X-Ray (an in-memory emitter stands in for the daemon);
# switched off, the function never builds a tracer: the X-Ray SDK (and the libraries it patches) stays out
# of the cold start and of the requests, and nothing is sent. A process per setting (the SDK patches
# libraries globally), on one engine (`one_engine`): the subsegment wraps the model call whichever engine
# makes it, and the SDK's import does not depend on it.
TRACED_APP = textwrap.dedent(
    """
    import json, sys

    import app

    class Context:
        function_name, aws_request_id, memory_limit_in_mb = "f", "r", 128
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"

    # Requests before the test's emitter is in place (none with tracing on: they would go to a daemon).
    before = [app.handler(event, Context())["statusCode"] for event in json.loads(sys.argv[1])]
    xray = "aws_xray_sdk" in sys.modules

    from aws_xray_sdk.core import xray_recorder

    sent = []

    class Emitter:
        def send_entity(self, entity):
            sent.append(entity.to_dict())

        def set_daemon_address(self, address):
            pass

    xray_recorder.configure(emitter=Emitter(), sampling=False)

    def names(entity):
        yield entity["name"]
        for child in entity.get("subsegments", []):
            yield from names(child)

    seen = []
    for event in json.loads(sys.argv[2]):
        sent.clear()
        response = app.handler(event, Context())
        seen.append({"status": response["statusCode"], "names": [n for e in sent for n in names(e)]})
    print(json.dumps({"before": before, "xray": xray, "seen": seen}))
    """
)


def traced_invocations(
    model_dir: Path, events: list[dict[str, Any]], disabled: str, before: tuple[dict[str, Any], ...] = ()
) -> dict[str, Any]:
    """With the template's switch POWERTOOLS_TRACE_DISABLED set to `disabled`: the statuses app.handler
    answers to `before`, whether the X-Ray SDK was imported then, and for each of `events` in turn the
    status and the names of what it sent to X-Ray."""
    env = {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "POWERTOOLS_TRACE_DISABLED": disabled,
        "LAMBDA_TASK_ROOT": str(FUNCTION_DIR),
        "AWS_LAMBDA_FUNCTION_NAME": "f",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "PYTHONPATH": str(FUNCTION_DIR),
    }
    result = subprocess.run(
        [sys.executable, "-c", TRACED_APP, json.dumps(list(before)), json.dumps(events)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    seen: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return seen


@pytest.mark.slow
@one_engine
def test_app_handler_traces_the_model_call(iris_model_dir: Path) -> None:
    predict = http_api_event()
    model = http_api_event(method="GET", path="/model", body=None)

    traced = traced_invocations(iris_model_dir, [predict, model], disabled="false")

    # On, the cold start imports the SDK. Powertools names the handler's subsegment "## <function name>";
    # only /predict calls the model.
    assert traced["xray"] is True
    for answer, subsegments in zip(traced["seen"], [["model.predict"], []], strict=True):
        handler, *inside = sorted(answer["names"])
        assert answer["status"] == 200
        assert handler.startswith("## ")
        assert inside == subsegments


@pytest.mark.slow
@one_engine
def test_tracing_switched_off_costs_the_cold_start_nothing_and_sends_nothing(iris_model_dir: Path) -> None:
    traced = traced_invocations(iris_model_dir, [http_api_event()], disabled="true", before=(http_api_event(),))

    assert traced == {"before": [200], "xray": False, "seen": [{"status": 200, "names": []}]}
