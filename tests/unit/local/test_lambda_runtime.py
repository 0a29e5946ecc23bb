"""The runner's child, local/lambda_runtime.py, as the runner starts it: isolated, one JSON event a line
on stdin, one answer a line on stdout, the function's prints and the runtime's log on stderr. A
stand-in package (an `app.py` that reports what it got) keeps these independent of the build."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local import lambda_runtime
from local.lambda_local import ISOLATED_PYTHON_FLAGS
from local.lambda_runtime import FUNCTION_NAME, LAMBDA_DEFAULT_MEMORY_MB, RUNTIME_PATH_VARIABLE, LambdaContext

STAND_IN_APP = """
import os, sys

def handler(event, context):
    if event.get("action") == "raise":
        raise KeyError("no such thing")
    print("printed by the function")
    names = ("AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    return {
        "event": event,
        "environment": {name: os.environ.get(name) for name in names},
        "context": [context.function_name, context.memory_limit_in_mb, context.get_remaining_time_in_millis()],
        "path": sys.path,
    }
"""


def run_runtime(package: Path, events: list[Any], **environment: str) -> tuple[list[Any], str]:
    """The child's answers to `events` and its stderr, started as local/lambda_local.py starts it."""
    command = [sys.executable, *ISOLATED_PYTHON_FLAGS, "-u", lambda_runtime.__file__, str(package), "2"]
    lines = "".join(json.dumps(event) + "\n" for event in events)
    result = subprocess.run(
        command, input=lines, capture_output=True, text=True, timeout=60, check=True, env=environment
    )
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


@pytest.fixture
def package(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(STAND_IN_APP)
    return tmp_path


def test_each_event_line_is_answered_by_one_line_and_prints_go_to_the_log(package: Path) -> None:
    answers, log = run_runtime(package, [{"n": 1}, {"n": 2}])

    assert [answer["response"]["event"] for answer in answers] == [{"n": 1}, {"n": 2}]
    assert log.count("printed by the function") == 2


def test_the_handler_sees_lambdas_environment_and_context_and_the_package_first_on_its_path(
    package: Path, tmp_path: Path
) -> None:
    provided = tmp_path / "runtime-provided"

    response = run_runtime(
        package, [{}], AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512", **{RUNTIME_PATH_VARIABLE: str(provided)}
    )[0][0]["response"]

    assert response["environment"] == {
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(package),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    }
    name, memory, remaining_ms = response["context"]
    assert (name, memory) == (FUNCTION_NAME, 512)
    assert 0 < remaining_ms <= 2000
    assert response["path"][0] == str(package)
    assert response["path"][-1] == str(provided)


def test_a_handler_that_raises_is_answered_with_lambdas_error_document_and_the_next_event_served(
    package: Path,
) -> None:
    answers, log = run_runtime(package, [{"action": "raise"}, {"n": 2}])

    error = answers[0]["error"]
    assert (error["errorType"], error["errorMessage"]) == ("KeyError", "'no such thing'")
    assert any("app.py" in frame for frame in error["stackTrace"])
    assert "fatal" not in answers[0]
    assert answers[1]["response"]["event"] == {"n": 2}
    assert "the function raised" in log


@pytest.mark.parametrize(
    ("app", "message"),
    [(None, "No module named 'app'"), ("import pytest\n", "No module named 'pytest'")],
)
def test_a_handler_that_cannot_be_imported_is_one_fatal_import_module_error(
    tmp_path: Path, app: str | None, message: str
) -> None:
    if app is not None:
        (tmp_path / "app.py").write_text(app)

    answers, log = run_runtime(tmp_path, [{}, {}])

    assert len(answers) == 1
    assert answers[0]["fatal"] is True
    assert answers[0]["error"]["errorType"] == "Runtime.ImportModuleError"
    assert answers[0]["error"]["errorMessage"] == message
    assert "init failed: app.handler could not be imported" in log


def test_the_context_counts_down_from_the_timeout_and_never_below_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", raising=False)

    assert 0 < LambdaContext(5).get_remaining_time_in_millis() <= 5000
    assert LambdaContext(-1).get_remaining_time_in_millis() == 0
    assert LambdaContext().memory_limit_in_mb == LAMBDA_DEFAULT_MEMORY_MB
    assert LambdaContext().aws_request_id != LambdaContext().aws_request_id
