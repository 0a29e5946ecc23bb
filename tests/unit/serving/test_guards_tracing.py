"""Tracing around the real entry point: app.handler, with tracing switched on as the template
does it, sends the handler's segment and a `model.predict` subsegment to X-Ray (an in-memory
emitter stands in for the daemon)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from build import FUNCTION_DIR
from tests.events import http_api_event

TRACED_APP = textwrap.dedent(
    """
    import json, sys
    from aws_xray_sdk.core import xray_recorder

    sent = []

    class Emitter:
        def send_entity(self, entity):
            sent.append(entity.to_dict())

        def set_daemon_address(self, address):
            pass

    xray_recorder.configure(emitter=Emitter(), sampling=False)
    import app

    class Context:
        function_name, aws_request_id, memory_limit_in_mb = "f", "r", 128
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"

    def names(entity):
        yield entity["name"]
        for child in entity.get("subsegments", []):
            yield from names(child)

    seen = []
    for event in json.loads(sys.argv[1]):
        sent.clear()
        response = app.handler(event, Context())
        seen.append({"status": response["statusCode"], "names": [n for e in sent for n in names(e)]})
    print(json.dumps(seen))
    """
)


def traced_invocations(model_dir: Path, events: list[dict[str, Any]], disabled: str = "false") -> list[dict[str, Any]]:
    """For each event in turn, the status app.handler answers and the names of what it sent to X-Ray,
    with the template's switch POWERTOOLS_TRACE_DISABLED set to `disabled`."""
    env = {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "POWERTOOLS_TRACE_DISABLED": disabled,
        "LAMBDA_TASK_ROOT": str(FUNCTION_DIR),
        "AWS_LAMBDA_FUNCTION_NAME": "f",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "PYTHONPATH": str(FUNCTION_DIR),
    }
    # A separate process: the X-Ray SDK patches libraries globally.
    result = subprocess.run(
        [sys.executable, "-c", TRACED_APP, json.dumps(events)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    seen: list[dict[str, Any]] = json.loads(result.stdout.splitlines()[-1])
    return seen


def test_app_handler_traces_the_model_call(iris_model_dir: Path) -> None:
    predict = http_api_event()
    model = http_api_event(method="GET", path="/model", body=None)

    seen = traced_invocations(iris_model_dir, [predict, model])

    # Powertools names the handler's subsegment "## <function name>"; only /predict calls the model.
    for answer, subsegments in zip(seen, [["model.predict"], []], strict=True):
        handler, *inside = sorted(answer["names"])
        assert answer["status"] == 200
        assert handler.startswith("## ")
        assert inside == subsegments


def test_tracing_switched_off_sends_nothing(iris_model_dir: Path) -> None:
    seen = traced_invocations(iris_model_dir, [http_api_event()], disabled="true")

    assert seen == [{"status": 200, "names": []}]


# A cold start and one request, then whether the X-Ray SDK was imported on the way.
COLD_START_IMPORTS = textwrap.dedent(
    """
    import json, sys
    import app

    class Context:
        function_name, aws_request_id, memory_limit_in_mb = "f", "r", 128
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"

    response = app.handler(json.loads(sys.argv[1]), Context())
    print(json.dumps({"status": response["statusCode"], "xray": "aws_xray_sdk" in sys.modules}))
    """
)


def test_tracing_switched_off_costs_the_cold_start_nothing(iris_model_dir: Path) -> None:
    """Off, as the template's switch sets POWERTOOLS_TRACE_DISABLED, the function never builds a
    tracer: the X-Ray SDK (and the libraries it patches) stays out of the cold start. On, it is in."""

    def cold_start(disabled: str) -> dict[str, Any]:
        env = {
            **os.environ,
            "MODEL_DIR": str(iris_model_dir),
            "POWERTOOLS_TRACE_DISABLED": disabled,
            "AWS_LAMBDA_FUNCTION_NAME": "f",
            "PYTHONPATH": str(FUNCTION_DIR),
        }
        result = subprocess.run(
            [sys.executable, "-c", COLD_START_IMPORTS, json.dumps(http_api_event())],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        answer: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
        return answer

    assert cold_start("true") == {"status": 200, "xray": False}
    assert cold_start("false") == {"status": 200, "xray": True}
