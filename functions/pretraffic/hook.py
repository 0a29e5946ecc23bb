"""CodeDeploy pre-traffic hook: before any traffic shifts to a new version of the prediction
function, check that it serves the model this deployment was built with and answers the
build's held-out rows exactly as scikit-learn did, and fail the deployment otherwise
(CodeDeploy then rolls back).

The checks come from the build (build/checks.py writes checks.json into this function's
package): requests with scikit-learn's own answers, compared for equality, probabilities
included, so an engine that computes differently on Lambda's hardware is caught here.
Uses only the standard library and the runtime's boto3.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

CHECKS_FILE = Path(__file__).resolve().with_name("checks.json")
MAX_SHOWN = 200


def http_event(method: str, path: str, query: str = "", body: Any = None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as the API sends it."""
    # Not mutated, equivalent: the host is a stand-in, which the function reads for neither path.
    headers = {"content-type": "application/json", "host": "pre-traffic-check"}  # pragma: no mutate
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "pre-traffic-check",
            "routeKey": "$default",
            "stage": "$default",
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _call(lambda_client: Any, function: str, event: dict[str, Any]) -> tuple[int | None, Any]:
    """The status code and JSON body of one invocation; raises RuntimeError on any failure to answer."""
    try:
        response = lambda_client.invoke(FunctionName=function, Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read())
    except (BotoCoreError, ClientError, ValueError) as error:
        raise RuntimeError(f"invoking {function} failed: {error}") from error
    if "FunctionError" in response:
        raise RuntimeError(f"the function raised {_shown(payload)}")
    try:
        return payload.get("statusCode"), json.loads(payload.get("body") or "null")
    except (AttributeError, ValueError) as error:
        raise RuntimeError(f"the function answered {_shown(payload)}, not an HTTP response") from error


def check_version(lambda_client: Any, function: str, checks: dict[str, Any]) -> list[str]:
    """Every way `function` (a version ARN) fails the checks; empty when all pass."""
    expected_model = checks["model"]
    try:
        status, model = _call(lambda_client, function, http_event("GET", "/model"))
    except RuntimeError as error:
        return [f"GET /model: {error}"]
    served = {key: (model or {}).get(key) for key in expected_model} if isinstance(model, dict) else model
    if status != 200 or served != expected_model:
        return [f"GET /model: expected 200 serving {_shown(expected_model)}, got {status} {_shown(served)}"]
    problems = []
    for number, case in enumerate(checks["cases"]):
        request = f"case {number} (POST /predict{'?' + case['query'] if case['query'] else ''})"
        try:
            status, answer = _call(lambda_client, function, http_event("POST", "/predict", case["query"], case["body"]))
        except RuntimeError as error:
            problems.append(f"{request}: {error}")
            continue
        if status != 200 or answer != case["expected"]:
            problems.append(f"{request}: expected 200 {_shown(case['expected'])}, got {status} {_shown(answer)}")
    return problems


def handler(event: dict[str, Any], context: Any, lambda_client: Any = None, codedeploy: Any = None) -> dict[str, Any]:
    lambda_client = lambda_client or boto3.client("lambda")
    codedeploy = codedeploy or boto3.client("codedeploy")
    version = os.environ["NEW_VERSION"]
    checks = json.loads(CHECKS_FILE.read_text())
    problems = check_version(lambda_client, version, checks)
    status = "Failed" if problems else "Succeeded"
    logger.info(
        json.dumps({"message": "pre-traffic check", "version": version, "status": status, "problems": problems})
    )
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"],
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status=status,
    )
    return {"status": status, "problems": problems}
