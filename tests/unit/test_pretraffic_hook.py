"""The CodeDeploy pre-traffic hook, with botocore's Stubber for Lambda and CodeDeploy."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import hook
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from local.lambda_local import LambdaContext

VERSION = "arn:aws:lambda:us-east-1:123456789012:function:iris-PredictFunction:7"
EVENT = {"DeploymentId": "d-ABCDEF123", "LifecycleEventHookExecutionId": "hook-execution-1"}


def payload(value: Any) -> StreamingBody:
    raw = json.dumps(value).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Stubber, Any, Stubber]]:
    monkeypatch.setenv("NEW_VERSION", VERSION)
    lambda_client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    codedeploy = boto3.client("codedeploy", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(lambda_client) as lambda_stub, Stubber(codedeploy) as codedeploy_stub:
        yield lambda_client, lambda_stub, codedeploy, codedeploy_stub
        lambda_stub.assert_no_pending_responses()
        codedeploy_stub.assert_no_pending_responses()


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


def test_a_version_that_answers_right_passes(
    clients: tuple[Any, Stubber, Any, Stubber], app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    lambda_client, lambda_stub, codedeploy, codedeploy_stub = clients
    for body, _ in hook.CHECKS:
        answer = app_module.handler(hook.predict_event(body), lambda_context)
        lambda_stub.add_response(
            "invoke", {"StatusCode": 200, "Payload": payload(answer)}, {"FunctionName": VERSION, "Payload": ANY}
        )
    expect_status(codedeploy_stub, "Succeeded")

    result = hook.handler(EVENT, None, lambda_client, codedeploy)

    assert result == {"status": "Succeeded", "problems": []}


def test_a_wrong_answer_fails_the_deployment(clients: tuple[Any, Stubber, Any, Stubber]) -> None:
    lambda_client, lambda_stub, codedeploy, codedeploy_stub = clients
    wrong = {"statusCode": 200, "body": '{"prediction":2}'}
    right = {"statusCode": 200, "body": '{"predictions":[0,1,2]}'}
    for answer in (wrong, right):
        lambda_stub.add_response(
            "invoke", {"StatusCode": 200, "Payload": payload(answer)}, {"FunctionName": VERSION, "Payload": ANY}
        )
    expect_status(codedeploy_stub, "Failed")

    result = hook.handler(EVENT, None, lambda_client, codedeploy)

    assert result["status"] == "Failed"
    assert result["problems"] == [
        "{'features': [6.1, 2.8, 4.7, 1.2]}: expected 200 {'prediction': 1}, got 200 {'prediction': 2}"
    ]


def test_a_crashing_version_fails_the_deployment(clients: tuple[Any, Stubber, Any, Stubber]) -> None:
    lambda_client, lambda_stub, codedeploy, codedeploy_stub = clients
    crash = {"errorMessage": "Init error", "errorType": "Runtime.ImportModuleError"}
    lambda_stub.add_response(
        "invoke",
        {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": payload(crash)},
        {"FunctionName": VERSION, "Payload": ANY},
    )
    lambda_stub.add_client_error("invoke", service_error_code="ResourceNotFoundException", http_status_code=404)
    expect_status(codedeploy_stub, "Failed")

    result = hook.handler(EVENT, None, lambda_client, codedeploy)

    assert result["status"] == "Failed"
    assert "the function raised" in result["problems"][0]
    assert "ResourceNotFoundException" in result["problems"][1]


def test_the_event_is_what_the_http_api_sends() -> None:
    event = hook.predict_event({"features": [6.1, 2.8, 4.7, 1.2]})

    assert event["version"] == "2.0"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert json.loads(event["body"]) == {"features": [6.1, 2.8, 4.7, 1.2]}
