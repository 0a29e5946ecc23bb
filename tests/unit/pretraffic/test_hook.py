"""The CodeDeploy pre-traffic hook against the real handler: a fake Lambda client runs
`app.handler` on exactly the payload the hook sends; CodeDeploy is botocore's Stubber."""

from __future__ import annotations

import copy
import io
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import hook
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from build import DEFAULT_SPEC
from build.checks import write_checks
from build.spec import load_spec
from local.lambda_local import LambdaContext

VERSION = "arn:aws:lambda:us-east-1:123456789012:function:iris-PredictFunction:7"
EVENT = {"DeploymentId": "d-ABCDEF123", "LifecycleEventHookExecutionId": "hook-execution-1"}
Invoke = Callable[[dict[str, Any]], dict[str, Any]]


class FakeLambda:
    """A Lambda client whose `invoke` hands the payload, as bytes, to a function."""

    def __init__(self, function: Invoke) -> None:
        self.function = function
        self.payloads: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        assert FunctionName == VERSION
        event = json.loads(Payload)
        self.payloads.append(event)
        answer = json.dumps(self.function(event)).encode()
        return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(answer), len(answer))}


@pytest.fixture(scope="session")
def built_checks(training_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("checks") / "checks.json"
    checks: dict[str, Any] = write_checks(load_spec(DEFAULT_SPEC), out, cache_dir=training_dir)
    assert json.loads(out.read_text()) == checks
    return checks


@pytest.fixture
def use_checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[dict[str, Any]], None]:
    def use(checks: dict[str, Any]) -> None:
        path = tmp_path / "checks.json"
        path.write_text(json.dumps(checks))
        monkeypatch.setattr(hook, "CHECKS_FILE", path)

    return use


@pytest.fixture
def codedeploy(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Stubber]]:
    monkeypatch.setenv("NEW_VERSION", VERSION)
    client = boto3.client("codedeploy", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def expect_status(stub: Stubber, status: str) -> None:
    stub.add_response(
        "put_lifecycle_event_hook_execution_status",
        {"lifecycleEventHookExecutionId": EVENT["LifecycleEventHookExecutionId"]},
        {
            "deploymentId": EVENT["DeploymentId"],
            "lifecycleEventHookExecutionId": EVENT["LifecycleEventHookExecutionId"],
            "status": status,
        },
    )


def real_handler(app_module: ModuleType) -> Invoke:
    return lambda event: app_module.handler(event, LambdaContext())


def test_the_checks_are_scikit_learns_answers_to_held_out_rows(
    built_checks: dict[str, Any], iris_estimator: Any
) -> None:
    single, batch, with_probabilities = built_checks["cases"]
    rows = batch["body"]["instances"]

    assert single["body"] == {"features": rows[0]}
    assert batch["expected"] == {"predictions": iris_estimator.predict(rows).tolist()}
    assert [list(p.values()) for p in with_probabilities["expected"]["probabilities"]] == (
        iris_estimator.predict_proba(rows).tolist()
    )
    assert with_probabilities["query"] == "probabilities=true"


def test_a_version_that_answers_right_passes(
    built_checks: dict[str, Any],
    use_checks: Callable[[dict[str, Any]], None],
    codedeploy: tuple[Any, Stubber],
    app_module: ModuleType,
) -> None:
    use_checks(built_checks)
    client, stub = codedeploy
    fake = FakeLambda(real_handler(app_module))
    expect_status(stub, "Succeeded")

    result = hook.handler(EVENT, None, fake, client)

    assert result == {"status": "Succeeded", "problems": []}
    sent = [json.loads(event["body"]) for event in fake.payloads if event["body"]]
    assert sent == [case["body"] for case in built_checks["cases"]]


def test_another_model_version_fails_the_deployment(
    built_checks: dict[str, Any],
    use_checks: Callable[[dict[str, Any]], None],
    codedeploy: tuple[Any, Stubber],
    app_module: ModuleType,
) -> None:
    checks = copy.deepcopy(built_checks)
    checks["model"]["version"] = "000000000000"
    use_checks(checks)
    client, stub = codedeploy
    expect_status(stub, "Failed")

    result = hook.handler(EVENT, None, FakeLambda(real_handler(app_module)), client)

    assert result["status"] == "Failed"
    assert result["problems"][0].startswith('GET /model: expected 200 serving {"name": "iris-random-forest"')


def test_a_probability_one_ulp_off_fails_the_deployment(
    built_checks: dict[str, Any],
    use_checks: Callable[[dict[str, Any]], None],
    codedeploy: tuple[Any, Stubber],
    app_module: ModuleType,
) -> None:
    checks = copy.deepcopy(built_checks)
    first = checks["cases"][2]["expected"]["probabilities"][0]
    name = max(first, key=first.get)
    first[name] = math.nextafter(first[name], 0.0)
    use_checks(checks)
    client, stub = codedeploy
    expect_status(stub, "Failed")

    result = hook.handler(EVENT, None, FakeLambda(real_handler(app_module)), client)

    assert result["status"] == "Failed"
    assert len(result["problems"]) == 1
    assert result["problems"][0].startswith("case 2 (POST /predict?probabilities=true): expected 200")


def test_a_crashing_or_unreachable_version_fails_the_deployment(
    built_checks: dict[str, Any], use_checks: Callable[[dict[str, Any]], None], codedeploy: tuple[Any, Stubber]
) -> None:
    use_checks(built_checks)
    client, stub = codedeploy
    crash = {"errorMessage": "Init error", "errorType": "Runtime.ImportModuleError"}

    class Crashing(FakeLambda):
        def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
            answer = json.dumps(crash).encode()
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": StreamingBody(io.BytesIO(answer), len(answer)),
            }

    lambda_client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    expect_status(stub, "Failed")
    expect_status(stub, "Failed")

    crashed = hook.handler(EVENT, None, Crashing(lambda event: {}), client)
    with Stubber(lambda_client) as lambda_stub:
        lambda_stub.add_client_error("invoke", service_error_code="ResourceNotFoundException", http_status_code=404)
        unreachable = hook.handler(EVENT, None, lambda_client, client)

    assert crashed["problems"] == [f"GET /model: the function raised {json.dumps(crash)}"]
    assert unreachable["problems"][0].startswith(f"GET /model: invoking {VERSION} failed")
    assert "ResourceNotFoundException" in unreachable["problems"][0]


def test_the_events_are_what_the_http_api_sends() -> None:
    event = hook.http_event("POST", "/predict", "probabilities=true", {"features": [6.1, 2.8, 4.7, 1.2]})

    assert event["version"] == "2.0"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["rawQueryString"] == "probabilities=true"
    assert json.loads(event["body"]) == {"features": [6.1, 2.8, 4.7, 1.2]}
    assert hook.http_event("GET", "/model")["body"] is None
