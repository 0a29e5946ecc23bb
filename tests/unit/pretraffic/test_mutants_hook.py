"""The pre-traffic hook's side of its contracts, field by field: the HTTP API event it hands the
function (API Gateway's payload format 2.0, as docs for `sam local` and Mangum read it), the
clients it makes when Lambda calls it with none, the verdict it reports to CodeDeploy and the line
it logs. make mutate found that the real handler ignores most of the event's fields and the stubbed
clients bypass the defaults, so a hook sending a broken event or talking to the wrong service passed.
Expected values are written out here, never read back from the hook."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import hook
import pytest
from botocore.response import StreamingBody
from hypothesis import given
from hypothesis import strategies as st

VERSION = "arn:aws:lambda:us-east-1:123456789012:function:iris-PredictFunction:7"
EVENT = {"DeploymentId": "d-ABCDEF123", "LifecycleEventHookExecutionId": "hook-execution-1"}
GOOD_MODEL = {"name": "iris", "version": "0123456789ab"}
BOTH = [("GET", "/model"), ("POST", "/predict")]
GOOD_CASE = {"query": "", "body": {"features": [6.1, 2.8, 4.7, 1.2]}, "expected": {"prediction": 1}}

paths = st.from_regex(r"/[a-z]{1,12}", fullmatch=True)
queries = st.from_regex(r"([a-z]{1,8}=[a-z0-9]{1,8})?", fullmatch=True)
bodies = st.none() | st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4)


@given(method=st.sampled_from(["GET", "POST"]), path=paths, query=queries, body=bodies)
def test_the_event_is_an_http_api_payload_2_0_request(method: str, path: str, query: str, body: Any) -> None:
    event = hook.http_event(method, path, query, body)

    assert event == {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json", "host": "pre-traffic-check"},
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "pre-traffic-check",
            "routeKey": "$default",
            "stage": "$default",
        },
        "body": event["body"],
        "isBase64Encoded": False,
    }
    # The body is the JSON text of the request (a str, as API Gateway sends it), or absent.
    assert event["body"] is None if body is None else json.loads(event["body"]) == body


def test_an_event_without_query_or_body_has_empty_ones() -> None:
    event = hook.http_event("GET", "/model")

    assert event["rawQueryString"] == ""
    assert event["body"] is None


class RecordingLambda:
    """Answers every invocation with `answer` (status, body) and records what it was sent."""

    def __init__(self, answers: dict[str, tuple[int, Any]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        event = json.loads(Payload)
        self.calls.append((FunctionName, event))
        status, body = self.answers[event["rawPath"]]
        answer = json.dumps({"statusCode": status, "body": json.dumps(body)}).encode()
        return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(answer), len(answer))}


class RecordingCodeDeploy:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_lifecycle_event_hook_execution_status(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append(arguments)
        return {}


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEW_VERSION", VERSION)
    path = tmp_path / "checks.json"
    path.write_text(json.dumps({"model": GOOD_MODEL, "cases": [GOOD_CASE]}))
    monkeypatch.setattr(hook, "CHECKS_FILE", path)


@pytest.mark.parametrize(
    ("answers", "requests", "status", "problems"),
    [
        ({"/model": (200, GOOD_MODEL), "/predict": (200, {"prediction": 1})}, BOTH, "Succeeded", []),
        (
            {"/model": (200, GOOD_MODEL), "/predict": (200, {"prediction": 2})},
            BOTH,
            "Failed",
            ['case 0 (POST /predict): expected 200 {"prediction": 1}, got 200 {"prediction": 2}'],
        ),
        (
            {"/model": (503, {"error": "x"})},
            [("GET", "/model")],
            "Failed",
            [f'GET /model: expected 200 serving {json.dumps(GOOD_MODEL)}, got 503 {{"name": null, "version": null}}'],
        ),
    ],
)
def test_the_verdict_goes_to_codedeploy_and_the_log(
    checks: None,
    caplog: pytest.LogCaptureFixture,
    answers: dict[str, tuple[int, Any]],
    requests: list[tuple[str, str]],
    status: str,
    problems: list[str],
) -> None:
    lambda_client, codedeploy = RecordingLambda(answers), RecordingCodeDeploy()

    with caplog.at_level(logging.INFO):
        result = hook.handler(EVENT, None, lambda_client, codedeploy)

    assert result == {"status": status, "problems": problems}
    assert codedeploy.calls == [
        {"deploymentId": "d-ABCDEF123", "lifecycleEventHookExecutionId": "hook-execution-1", "status": status}
    ]
    assert [
        (function, event["requestContext"]["http"]["method"], event["rawPath"])
        for function, event in lambda_client.calls
    ] == [(VERSION, method, path) for method, path in requests]
    logged = [json.loads(record.getMessage()) for record in caplog.records if record.name == "root"]
    assert logged == [{"message": "pre-traffic check", "version": VERSION, "status": status, "problems": problems}]
    assert all(record.levelno == logging.INFO for record in caplog.records if record.name == "root")


def test_without_clients_it_makes_lambdas_and_codedeploys(checks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    services = {
        "lambda": RecordingLambda({"/model": (200, GOOD_MODEL), "/predict": (200, {"prediction": 1})}),
        "codedeploy": RecordingCodeDeploy(),
    }

    def client(service: str) -> Any:
        made.append(service)
        return services[service]

    monkeypatch.setattr(hook.boto3, "client", client)

    assert hook.handler(EVENT, None) == {"status": "Succeeded", "problems": []}
    assert sorted(made) == ["codedeploy", "lambda"]
    assert services["codedeploy"].calls[0]["status"] == "Succeeded"


# The hook quotes an answer in a problem at most this long (hook.MAX_SHOWN), written out here.
SHOWN = 200


@given(length=st.integers(SHOWN - 10, SHOWN + 10))
def test_an_answer_is_quoted_whole_up_to_the_limit_and_cut_to_it_beyond(length: int) -> None:
    value = "a" * (length - 2)  # its JSON text has the two quotes
    quoted = hook._shown(value)

    if length <= SHOWN:
        assert quoted == json.dumps(value)
    else:
        assert quoted == '"' + "a" * (SHOWN - 4) + "..."


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        # An HTTP response without a body is answered as JSON null.
        ({"statusCode": 200}, f"GET /model: expected 200 serving {json.dumps(GOOD_MODEL)}, got 200 null"),
        ([1, 2], "GET /model: the function answered [1, 2], not an HTTP response"),
    ],
)
def test_an_answer_that_is_no_model_is_named_in_the_verdict(answer: Any, problem: str) -> None:
    class Answering(RecordingLambda):
        def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
            text = json.dumps(answer).encode()
            return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(text), len(text))}

    checks = {"model": GOOD_MODEL, "cases": [GOOD_CASE]}

    assert hook.check_version(Answering({}), VERSION, checks) == [problem]


def test_a_case_the_function_fails_to_answer_is_named_and_the_next_case_still_checked() -> None:
    crash = {"errorMessage": "boom", "errorType": "RuntimeError"}

    class CrashingOnFirstCase(RecordingLambda):
        def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
            answered = super().invoke(FunctionName, Payload)
            if len(self.calls) != 2:  # call 1 is GET /model, call 2 the first case
                return answered
            text = json.dumps(crash).encode()
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": StreamingBody(io.BytesIO(text), len(text)),
            }

    lambda_client = CrashingOnFirstCase({"/model": (200, GOOD_MODEL), "/predict": (200, {"prediction": 2})})
    checks = {"model": GOOD_MODEL, "cases": [GOOD_CASE, GOOD_CASE]}

    assert hook.check_version(lambda_client, VERSION, checks) == [
        f"case 0 (POST /predict): the function raised {json.dumps(crash)}",
        'case 1 (POST /predict): expected 200 {"prediction": 1}, got 200 {"prediction": 2}',
    ]
