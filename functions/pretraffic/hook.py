"""CodeDeploy pre-traffic hook: before any traffic shifts to a new version of the prediction
function, call that version with known Iris rows and fail the deployment if it answers
wrong (CodeDeploy then rolls back). Uses only the standard library and the runtime's boto3.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

# The seed contract, and the three species' mean measurements, which any sane Iris model
# classifies as their species.
CHECKS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"features": [6.1, 2.8, 4.7, 1.2]}, {"prediction": 1}),
    (
        {"instances": [[5.006, 3.428, 1.462, 0.246], [5.936, 2.770, 4.260, 1.326], [6.588, 2.974, 5.552, 2.026]]},
        {"predictions": [0, 1, 2]},
    ),
]


def predict_event(body: dict[str, Any]) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event for POST /predict, as the API sends it."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/predict",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "pre-traffic-check"},
        "requestContext": {
            "http": {"method": "POST", "path": "/predict", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "pre-traffic-check",
            "routeKey": "$default",
            "stage": "$default",
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def check_version(lambda_client: Any, function: str) -> list[str]:
    """Every way `function` (a version ARN) answers the checks wrongly; empty when all pass."""
    problems = []
    for body, expected in CHECKS:
        try:
            response = lambda_client.invoke(FunctionName=function, Payload=json.dumps(predict_event(body)).encode())
            payload = json.loads(response["Payload"].read())
        except (BotoCoreError, ClientError, ValueError) as error:
            problems.append(f"{body}: invoking {function} failed: {error}")
            continue
        if "FunctionError" in response:
            problems.append(f"{body}: the function raised {payload}")
            continue
        answer = json.loads(payload.get("body") or "null")
        if payload.get("statusCode") != 200 or answer != expected:
            problems.append(f"{body}: expected 200 {expected}, got {payload.get('statusCode')} {answer}")
    return problems


def handler(event: dict[str, Any], context: Any, lambda_client: Any = None, codedeploy: Any = None) -> dict[str, Any]:
    lambda_client = lambda_client or boto3.client("lambda")
    codedeploy = codedeploy or boto3.client("codedeploy")
    version = os.environ["NEW_VERSION"]
    problems = check_version(lambda_client, version)
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
