"""The Docker-free runner as a user meets it: requests served through the isolated child as HTTP API
events, the template's memory and timeout, Lambda's answers to a function that raises, hangs or
exits, and one-line errors for misuse. A stand-in package (an `app.py` that reports what it got)
keeps these independent of the build; tests/integration runs the real package the same way."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local import lambda_local
from local.lambda_local import (
    LAMBDA_PAYLOAD_LIMIT_BYTES,
    PROJECT_ROOT,
    FunctionFailed,
    FunctionSettings,
    IsolatedFunction,
    LocalRunnerError,
    function_settings,
    read_template,
)
from local.lambda_runtime import FUNCTION_NAME, LAMBDA_DEFAULT_MEMORY_MB, LAMBDA_DEFAULT_TIMEOUT_S
from tests.cloudformation import transformed

LAMBDA_LOCAL = PROJECT_ROOT / "local" / "lambda_local.py"
SEED_BODY = b'{"features": [6.1, 2.8, 4.7, 1.2]}'
STAND_IN_APP = """
import base64, json, os, sys, time

def handler(event, context):
    action = event.get("rawPath") or event.get("action")
    if action == "/raise":
        raise ValueError("the function broke")
    if action == "/exit":
        os._exit(3)
    if action == "/sleep":
        time.sleep(30)
    print("printed by the function")
    seen = {
        "event": event,
        "body": base64.b64decode(event.get("body", "")).decode("latin-1"),
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "isolated": bool(sys.flags.isolated and sys.flags.no_site and sys.flags.dont_write_bytecode),
        "path": sys.path,
        "pid": os.getpid(),
    }
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "cookies": ["a=1"],
            "body": json.dumps(seen)}
"""


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Path:
    package = tmp_path_factory.mktemp("package")
    (package / "app.py").write_text(STAND_IN_APP)
    return package


def run_local(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(LAMBDA_LOCAL), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def assert_one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert re.search(message, result.stderr)


@pytest.fixture(scope="module")
def api(stand_in: Path) -> Iterator[int]:
    """`lambda_local.py start-api` serving the stand-in package on a free port."""
    server = subprocess.Popen(
        [sys.executable, str(LAMBDA_LOCAL), "--package", str(stand_in), "start-api", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    line = server.stderr.readline()
    drain = threading.Thread(target=server.stderr.read, daemon=True)  # a full pipe would stall it
    drain.start()
    try:
        match = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        yield int(match[1])
    finally:
        server.terminate()
        server.wait(timeout=10)
        drain.join(timeout=10)
        server.stderr.close()


def request(port: int, method: str, path: str, body: bytes | None = None, **headers: str) -> tuple[int, Any, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, json.loads(response.read())
    finally:
        connection.close()


def test_a_post_reaches_the_isolated_function_as_an_http_api_event(api: int, stand_in: Path) -> None:
    status, headers, seen = request(
        api, "POST", "/predict?verbose=1", SEED_BODY, **{"Content-Type": "application/json", "Cookie": "b=2; c=3"}
    )

    assert status == 200
    assert headers["set-cookie"] == "a=1"
    event = seen["event"]
    assert (event["version"], event["routeKey"], event["requestContext"]["stage"]) == ("2.0", "$default", "$default")
    assert (event["rawPath"], event["rawQueryString"]) == ("/predict", "verbose=1")
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["headers"]["content-type"] == "application/json"
    assert event["cookies"] == ["b=2", "c=3"]
    assert seen["body"].encode() == SEED_BODY
    assert seen["isolated"] is True
    assert seen["path"][0] == str(stand_in.resolve())
    assert not [entry for entry in seen["path"] if "site-packages" in entry]


def test_repeated_headers_are_joined_with_commas_and_every_cookie_header_split(api: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", api, timeout=60)
    connection.putrequest("GET", "/headers")
    for name, value in [("X-Tag", "a"), ("Cookie", "c=1"), ("x-tag", "b"), ("cookie", "d=2; e=3")]:
        connection.putheader(name, value)
    connection.endheaders()
    event = json.loads(connection.getresponse().read())["event"]
    connection.close()

    assert event["headers"]["x-tag"] == "a,b"
    assert event["cookies"] == ["c=1", "d=2", "e=3"]
    assert "cookie" not in event["headers"]


def test_requests_are_served_by_one_warm_environment(api: int) -> None:
    pids = {request(api, "GET", f"/warm/{index}")[2]["pid"] for index in range(3)}

    assert len(pids) == 1


def test_a_body_at_lambdas_payload_limit_is_served_and_one_byte_more_is_a_413(api: int) -> None:
    at_limit = request(api, "PUT", "/big", b"x" * LAMBDA_PAYLOAD_LIMIT_BYTES)
    over = request(api, "PUT", "/big", b"x" * (LAMBDA_PAYLOAD_LIMIT_BYTES + 1))

    assert at_limit[0] == 200
    assert len(at_limit[2]["body"]) == LAMBDA_PAYLOAD_LIMIT_BYTES
    assert (over[0], over[2]) == (413, {"error": "the body is over Lambda's 6,291,456-byte payload limit: split it"})


@pytest.mark.parametrize(("length", "status"), [("abc", 400), ("-1", 400), ("9" * 50, 413)])
def test_a_bad_content_length_is_a_short_json_error(api: int, length: str, status: int) -> None:
    with socket.create_connection(("127.0.0.1", api), timeout=10) as connection:
        connection.sendall(f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
        response = http.client.HTTPResponse(connection)
        response.begin()
        assert response.status == status
        assert len(json.loads(response.read())["error"]) < 100


def test_a_function_that_raises_is_a_500_as_api_gateway_answers_and_the_server_goes_on(api: int) -> None:
    assert request(api, "GET", "/raise")[::2] == (500, {"message": "Internal Server Error"})
    assert request(api, "GET", "/after")[0] == 200


def test_template_memory_and_timeout_reach_the_function(api: int) -> None:
    """The real template.yaml (CloudFormation tags and all) against the SAM transform's own output."""
    deployed = transformed({})["Resources"][FUNCTION_NAME]["Properties"]

    seen = request(api, "GET", "/settings")[2]

    assert function_settings() == FunctionSettings(deployed["Runtime"], deployed["MemorySize"], deployed["Timeout"])
    assert seen["memory"] == deployed["MemorySize"]
    assert deployed["Timeout"] * 1000 - 5000 < seen["remaining_ms"] <= deployed["Timeout"] * 1000


# The execution environment directly, with a short timeout.
@pytest.fixture
def function(stand_in: Path) -> Iterator[IsolatedFunction]:
    with contextlib.closing(IsolatedFunction(stand_in, FunctionSettings("python3.12", 256, 1))) as isolated:
        yield isolated


def test_a_function_past_its_timeout_is_ended_and_the_next_invocation_is_a_cold_start(
    function: IsolatedFunction,
) -> None:
    def pid() -> int:
        return int(json.loads(function.invoke({"action": "/pid"})["body"])["pid"])

    first = pid()
    with pytest.raises(FunctionFailed) as failed:
        function.invoke({"action": "/sleep"})

    assert failed.value.document == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "Task timed out after 1.00 seconds",
    }
    assert pid() != first


def test_a_function_that_exits_is_a_runtime_exit_error_and_the_next_invocation_starts_afresh(
    function: IsolatedFunction,
) -> None:
    with pytest.raises(FunctionFailed) as failed:
        function.invoke({"action": "/exit"})

    assert failed.value.document == {"errorType": "Runtime.ExitError", "errorMessage": "Runtime exited: exit status 3"}
    assert function.invoke({"action": "/again"})["statusCode"] == 200


def test_a_handler_that_cannot_be_imported_fails_its_invocation_as_lambda_reports_it(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import pytest\n")  # a dependency missing from the package
    with (
        contextlib.closing(IsolatedFunction(tmp_path, FunctionSettings("python3.12", 128, 3))) as function,
        pytest.raises(FunctionFailed) as failed,
    ):
        function.invoke({})

    assert failed.value.document["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'pytest'" in failed.value.document["errorMessage"]


# The command line.
def test_invoke_prints_each_response_or_lambdas_error_document_and_goes_on(stand_in: Path, tmp_path: Path) -> None:
    events = []
    for index, event in enumerate([{"action": "/raise"}, {"action": "/ok"}, {"action": "/raise"}]):
        events.append(tmp_path / f"event-{index}.json")
        events[-1].write_text(json.dumps(event))

    result = run_local("--package", str(stand_in), "invoke", *map(str, events))

    responses = json.loads(result.stdout)  # the function's print went to stderr, its log
    assert [response.get("errorType") for response in responses] == ["ValueError", None, "ValueError"]
    assert responses[0]["errorMessage"] == "the function broke"
    assert responses[1]["statusCode"] == 200
    assert "printed by the function" in result.stderr
    assert result.returncode == 1
    assert result.stderr.strip().endswith("lambda_local.py: 2 of 3 invocations failed (see above)")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"cannot read event .*missing\.json: No such file or directory"),
        (b'{"a": ', r"event .*\.json is not valid JSON: Expecting value"),
    ],
)
def test_an_unreadable_event_is_one_line(stand_in: Path, tmp_path: Path, content: bytes | None, message: str) -> None:
    event = tmp_path / ("missing.json" if content is None else "event.json")
    if content is not None:
        event.write_bytes(content)

    assert_one_line_error(run_local("--package", str(stand_in), "invoke", str(event)), message)


def test_a_missing_package_is_one_line(tmp_path: Path) -> None:
    result = run_local("--package", str(tmp_path), "invoke", str(PROJECT_ROOT / "events" / "http-api-predict.json"))

    assert_one_line_error(result, "no built package at .*: run `sam build`")


def test_a_port_in_use_is_one_line(stand_in: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run_local("--package", str(stand_in), "start-api", "--port", str(port))

    assert_one_line_error(result, rf"cannot listen on 127\.0\.0\.1:{port}: Address already in use")


# template.yaml, read with CloudFormation's tags.
SETTINGS = st.dictionaries(st.sampled_from(["MemorySize", "Timeout"]), st.integers(1, 10_240), max_size=2)


def template(globals_settings: dict[str, Any], own_settings: dict[str, Any]) -> str:
    def properties(indent: str, values: dict[str, Any]) -> str:
        return "".join(f"{indent}{name}: {value}\n" for name, value in values.items())

    return (
        f"Globals:\n  Function:\n    Runtime: python3.12\n{properties('    ', globals_settings)}"
        "Resources:\n  Other:\n    Type: AWS::Serverless::Function\n    Properties:\n      MemorySize: 7\n"
        f"  {FUNCTION_NAME}:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      Environment:\n        Variables:\n          LEVEL: !Ref LogLevel\n          ON: !If [Traced, 'a', 'b']\n"
        f"{properties('      ', own_settings)}"
    )


@pytest.fixture
def template_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "template.yaml"
    monkeypatch.setattr(lambda_local, "TEMPLATE", path)
    return path


# Each tag form SAM reads: scalar, sequence and mapping arguments, !GetAtt's dotted short form.
TAGS = "A: !Ref X\nB: !Sub [a, {b: !GetAtt R.Arn}]\nC: !If [On, !Select [0, !Split [',', 'x']], 1]\nD: !Condition On\n"


@pytest.mark.parametrize("source", ["template.yaml", "tags"])
def test_a_template_is_read_as_sam_reads_it(source: str, tmp_path: Path) -> None:
    from samtranslator.yaml_helper import yaml_parse

    path = lambda_local.TEMPLATE if source == "template.yaml" else tmp_path / "tags.yaml"
    if source == "tags":
        path.write_text(TAGS)

    assert read_template(path) == yaml_parse(path.read_text())


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(globals_settings=SETTINGS, own_settings=SETTINGS)
def test_memory_and_timeout_are_the_functions_own_else_the_globals_else_lambdas_defaults(
    template_file: Path, globals_settings: dict[str, int], own_settings: dict[str, int]
) -> None:
    template_file.write_text(template(globals_settings, own_settings))
    merged = {**globals_settings, **own_settings}

    read = function_settings()

    assert read == FunctionSettings(
        "python3.12",
        merged.get("MemorySize", LAMBDA_DEFAULT_MEMORY_MB),
        merged.get("Timeout", LAMBDA_DEFAULT_TIMEOUT_S),
    )


@pytest.mark.parametrize(
    ("own", "message"),
    [
        ({"Timeout": "!Ref TimeoutParameter"}, 'Timeout is {"Ref": "TimeoutParameter"}; expected a whole number'),
        ({"MemorySize": "'1024'"}, 'MemorySize is "1024"; expected a whole number'),
        ({"Runtime": "python3.11"}, "the package is built for python3.11 (template.yaml) but this is "),
    ],
)
def test_a_setting_the_runner_cannot_use_is_a_clear_error(
    template_file: Path, own: dict[str, str], message: str
) -> None:
    template_file.write_text(template({}, own))

    with pytest.raises(LocalRunnerError, match=re.escape(message)):
        function_settings()


def test_a_template_without_a_runtime_is_a_clear_error(template_file: Path) -> None:
    template_file.write_text(f"Resources:\n  {FUNCTION_NAME}:\n    Properties:\n      MemorySize: 1024\n")

    with pytest.raises(LocalRunnerError, match="no Runtime for PredictFunction"):
        function_settings()


def test_the_function_answers_with_base64_bodies_decoded(api: int) -> None:
    """A binary body reaches the function base64-encoded, as API Gateway sends it, and unchanged."""
    body = bytes(range(256))

    seen = request(api, "POST", "/binary", body, **{"Content-Type": "application/octet-stream"})[2]

    assert seen["event"]["isBase64Encoded"] is True
    assert base64.b64decode(seen["event"]["body"]) == body
