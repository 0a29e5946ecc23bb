"""The CodeDeploy pre-traffic hook against the real handler: a fake Lambda client runs
`app.handler` on exactly the payload the hook sends; CodeDeploy is botocore's Stubber."""

from __future__ import annotations

import copy
import io
import ipaddress
import json
import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import hook
import jmespath
import pytest
from aws_lambda_powertools.logging import correlation_paths
from botocore.response import StreamingBody
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from build import DEFAULT_SPEC, PROJECT_ROOT
from build.checks import write_checks
from build.spec import load_spec
from local.lambda_runtime import LambdaContext

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


# The pre-traffic hook's side of its contracts, field by field: the HTTP API event it hands the function (API
# Gateway's payload format 2.0, as docs for `sam local` and Mangum read it), the clients it makes when Lambda calls it
# with none, the verdict it reports to CodeDeploy and the line it logs. The real handler ignores most of the event's
# fields and the stubbed clients bypass the defaults, so these check what a broken event or the wrong service would
# change.


GOOD_MODEL = {"name": "iris", "version": "0123456789ab"}
BOTH = [("GET", "/model"), ("POST", "/predict")]
GOOD_CASE = {"query": "", "body": {"features": [6.1, 2.8, 4.7, 1.2]}, "expected": {"prediction": 1}}

paths = st.from_regex(r"/[a-z]{1,12}", fullmatch=True)
queries = st.from_regex(r"([a-z]{1,8}=[a-z0-9]{1,8})?", fullmatch=True)
bodies = st.none() | st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4)


@given(method=st.sampled_from(["GET", "POST"]), path=paths, query=queries, body=bodies)
def test_the_event_carries_the_request_where_payload_2_0_readers_look(
    method: str, path: str, query: str, body: Any
) -> None:
    """Where Mangum reads a payload 2.0 request; that the function answers the event is checked
    against the real handler above."""
    event = hook.http_event(method, path, query, body)

    assert event["version"] == "2.0"
    assert (event["requestContext"]["http"]["method"], event["rawPath"], event["rawQueryString"]) == (
        method,
        path,
        query,
    )
    assert event["headers"]["content-type"] == "application/json"
    assert event["isBase64Encoded"] is False
    # The body is the JSON text of the request (a str, as API Gateway sends it), or absent.
    assert event["body"] is None if body is None else json.loads(event["body"]) == body


def key_paths(value: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if not isinstance(value, dict):
        return {prefix}
    return {prefix} | {path for key, item in value.items() for path in key_paths(item, (*prefix, key))}


def test_the_event_has_a_real_http_api_events_fields_and_fixed_values() -> None:
    """Every field where the HTTP API's own event (events/http-api-predict.json) has it, header names
    in lower case, and what the $default stage sends: its route key and stage, HTTP/1.1, an IP."""
    real = json.loads((PROJECT_ROOT / "events" / "http-api-predict.json").read_text())
    event = hook.http_event("POST", "/predict", "", {"features": [6.1, 2.8, 4.7, 1.2]})

    assert key_paths(event) <= key_paths(real)
    context, real_context = event["requestContext"], real["requestContext"]
    assert (event["routeKey"], context["routeKey"], context["stage"]) == ("$default", "$default", "$default")
    assert (real["routeKey"], real_context["routeKey"], real_context["stage"]) == ("$default", "$default", "$default")
    assert context["http"]["protocol"] == real_context["http"]["protocol"] == "HTTP/1.1"
    assert ipaddress.ip_address(context["http"]["sourceIp"]).is_loopback
    # The function logs it as each line's correlation id: the check's requests are told from users'.
    assert jmespath.search(correlation_paths.API_GATEWAY_HTTP, event) == "pre-traffic-check"


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


@given(length=st.integers(hook.MAX_SHOWN - 10, hook.MAX_SHOWN + 10))
def test_an_answer_is_quoted_whole_up_to_the_limit_and_cut_to_it_beyond(length: int) -> None:
    """A problem quotes what the function answered, bounded: whole up to the limit, its start and
    "..." beyond, never longer."""
    value = "a" * (length - 2)  # its JSON text has the two quotes
    quoted = hook._shown(value)

    if length <= hook.MAX_SHOWN:
        assert quoted == json.dumps(value)
    else:
        assert quoted == '"' + "a" * (hook.MAX_SHOWN - 4) + "..."
        assert len(quoted) == hook.MAX_SHOWN


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
