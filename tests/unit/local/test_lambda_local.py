"""The Docker-free runner: HTTP requests become HTTP API events and responses become HTTP; bad
framing gets a small JSON 4xx; invoke reports each failing event and goes on; the function's
settings come from template.yaml; misuse gets one line, never a traceback."""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from samtranslator.yaml_helper import yaml_parse

from local.lambda_local import (
    FUNCTION_NAME,
    LAMBDA_DEFAULT_MEMORY_MB,
    LAMBDA_DEFAULT_TIMEOUT_S,
    LAMBDA_PAYLOAD_LIMIT_BYTES,
    PROJECT_ROOT,
    ExecutionEnvironment,
    FunctionTimedOut,
    LambdaContext,
    LocalApiServer,
    LocalRunnerError,
    RefusedRequest,
    call_with_timeout,
    check_interpreter,
    declared_length,
    function_settings,
    http_api_event,
    read_chunked,
    read_function_settings,
    response_body,
)
from tests.cloudformation import transformed

LAMBDA_LOCAL = PROJECT_ROOT / "local" / "lambda_local.py"
SEED_BODY = b'{"features": [6.1, 2.8, 4.7, 1.2]}'
# Every message of the runner's own stays small whatever the client sent.
MAX_ERROR_BYTES = 300


def fixed(examples: int) -> settings:
    """A fixed budget of fixed examples (seeded from each test's name), and no example database."""
    return settings(derandomize=True, database=None, deadline=None, max_examples=examples)


def test_request_becomes_an_http_api_event() -> None:
    event = http_api_event(
        "POST",
        "/predict?verbose=1",
        [("Content-Type", "application/json"), ("Host", "127.0.0.1:3000"), ("Cookie", "a=1; b=2"), ("Cookie", "c=3")],
        SEED_BODY,
        "127.0.0.1",
    )

    assert event["version"] == "2.0"
    assert event["rawPath"] == "/predict"
    assert event["rawQueryString"] == "verbose=1"
    assert event["headers"] == {"content-type": "application/json", "host": "127.0.0.1:3000"}
    assert event["cookies"] == ["a=1", "b=2", "c=3"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["stage"] == "$default"
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == SEED_BODY


def test_repeated_headers_are_joined_with_commas_as_api_gateway_does() -> None:
    event = http_api_event("GET", "/", [("X-Tag", "a"), ("x-tag", "b"), ("Accept", "*/*")], b"", "127.0.0.1")

    assert event["headers"] == {"x-tag": "a,b", "accept": "*/*"}


def test_request_without_body_has_no_body() -> None:
    event = http_api_event("GET", "/", [], b"", "127.0.0.1")

    assert "body" not in event
    assert event["isBase64Encoded"] is False


PATH_SEGMENTS = st.lists(st.text(alphabet="abcXYZ019-._~%:@!$&'()*+,;=", max_size=8), min_size=1, max_size=6)


@fixed(200)
@given(segments=PATH_SEGMENTS, query=st.text(alphabet="ab=&%+/?", max_size=12))
def test_the_path_reaches_the_function_as_sent(segments: list[str], query: str) -> None:
    """API Gateway does not collapse `//` or read `//host` as an authority: neither may the runner."""
    path = "/" + "/".join(segments)
    target = f"{path}?{query}" if query else path

    event = http_api_event("GET", target, [], b"", "127.0.0.1")

    assert event["rawPath"] == event["requestContext"]["http"]["path"] == path
    assert event["rawQueryString"] == query


def test_response_body_is_decoded() -> None:
    assert response_body({"body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}) == b"\x00\x01"
    assert response_body({"body": '{"a": 1}', "isBase64Encoded": False}) == b'{"a": 1}'


def within_limit(digits: str) -> bool:
    """Content-Length is accepted exactly when it is one run of ASCII digits no greater than the limit."""
    return bool(re.fullmatch(r"[0-9]+", digits)) and int(digits.lstrip("0")[:20] or "0") <= LAMBDA_PAYLOAD_LIMIT_BYTES


VALID_LENGTHS = st.integers(0, LAMBDA_PAYLOAD_LIMIT_BYTES)
HEADER_TEXT = st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=60)
LENGTH_VALUES = st.one_of(
    VALID_LENGTHS.map(str),
    st.integers(LAMBDA_PAYLOAD_LIMIT_BYTES + 1, 10**30).map(str),
    st.integers(max_value=-1).map(str),
    st.integers(1, 6000).map(lambda digits: "9" * digits),
    st.integers(1, 6000).map(lambda zeros: "0" * zeros + "5"),
    HEADER_TEXT,
)


@fixed(400)
@given(value=LENGTH_VALUES)
def test_content_length_is_a_number_of_bytes_within_the_payload_limit(value: str) -> None:
    digits = value.strip()
    if within_limit(digits):
        assert declared_length([value]) == int(digits.lstrip("0") or "0")
        return
    with pytest.raises(RefusedRequest) as refused:
        declared_length([value])
    expected = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if re.fullmatch(r"[0-9]+", digits) else HTTPStatus.BAD_REQUEST
    assert refused.value.status == expected
    assert len(str(refused.value)) < MAX_ERROR_BYTES


@fixed(50)
@given(first=VALID_LENGTHS, second=VALID_LENGTHS)
def test_repeated_content_lengths_must_agree(first: int, second: int) -> None:
    if first == second:
        assert declared_length([str(first), f"{first}, {first}"]) == first
    else:
        with pytest.raises(RefusedRequest, match="conflicting Content-Length"):
            declared_length([str(first), str(second)])


def chunked(chunks: list[bytes], extension: str, uppercase: bool) -> bytes:
    def size(chunk: bytes) -> bytes:
        return (f"{len(chunk):X}" if uppercase else f"{len(chunk):x}").encode()

    encoded = b"".join(size(chunk) + extension.encode() + b"\r\n" + chunk + b"\r\n" for chunk in chunks if chunk)
    return encoded + b"0\r\nX-Trailer: yes\r\n\r\n"


@fixed(200)
@given(
    chunks=st.lists(st.binary(max_size=300), max_size=8),
    extension=st.sampled_from(["", ";ext=1", '; name="v"']),
    uppercase=st.booleans(),
)
def test_a_chunked_body_is_read_whole(chunks: list[bytes], extension: str, uppercase: bool) -> None:
    stream = io.BufferedReader(io.BytesIO(chunked(chunks, extension, uppercase) + b"NEXT REQUEST"))

    assert read_chunked(stream) == b"".join(chunks)
    assert stream.read() == b"NEXT REQUEST"


@fixed(100)
@given(body=st.binary(min_size=2, max_size=400), cut=st.integers(1, 10_000))
def test_a_truncated_or_oversized_chunked_body_is_refused(body: bytes, cut: int) -> None:
    encoded = chunked([body], "", uppercase=False)
    truncated = encoded[: cut % (len(encoded) - 1)]

    with pytest.raises(RefusedRequest) as refused:
        read_chunked(io.BufferedReader(io.BytesIO(truncated)))
    assert refused.value.status == HTTPStatus.BAD_REQUEST
    with pytest.raises(RefusedRequest) as too_large:
        read_chunked(io.BufferedReader(io.BytesIO(encoded)), limit=len(body) - 1)
    assert too_large.value.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


@pytest.mark.parametrize("size_line", [b"-5", b"zz", b"", b"1" * 40, b"0x10"])
def test_a_chunk_size_that_is_not_hexadecimal_is_refused(size_line: bytes) -> None:
    with pytest.raises(RefusedRequest, match="not a hexadecimal number"):
        read_chunked(io.BufferedReader(io.BytesIO(size_line + b"\r\nabc\r\n0\r\n\r\n")))


# template.yaml: generated templates, read by the runner and by a real YAML parser.
def template_text(
    globals_settings: dict[str, int], own_settings: dict[str, int], other_settings: dict[str, int]
) -> str:
    def properties(indent: str, values: dict[str, int]) -> str:
        return "".join(f"{indent}{name}: {value}  # {name}\n" for name, value in values.items())

    return (
        "AWSTemplateFormatVersion: '2010-09-09'\n"
        + (f"Globals:\n  Function:\n    Runtime: python3.12\n{properties('    ', globals_settings)}")
        + "Parameters:\n  Timeout:\n    Type: Number\n    Default: 77\n"
        + "Resources:\n"
        + "  OtherFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        + properties("      ", other_settings)
        + f"  {FUNCTION_NAME}:\n    Type: AWS::Serverless::Function\n    Metadata:\n      Timeout: 66\n"
        + "    Properties:\n      Description: >\n        MemorySize: 55\n"
        + "      Environment:\n        Variables:\n          Timeout: 44\n"
        + properties("      ", own_settings)
        + "Outputs:\n  MemorySize:\n    Value: 33\n"
    )


SETTINGS = st.dictionaries(st.sampled_from(["MemorySize", "Timeout"]), st.integers(1, 10_240), max_size=2)


@fixed(100)
@given(globals_settings=SETTINGS, own_settings=SETTINGS, other_settings=SETTINGS)
def test_memory_and_timeout_are_the_functions_own_else_the_globals_else_lambdas_defaults(
    globals_settings: dict[str, int], own_settings: dict[str, int], other_settings: dict[str, int]
) -> None:
    text = template_text(globals_settings, own_settings, other_settings)
    parsed = yaml_parse(text)
    merged = {**parsed["Globals"]["Function"], **(parsed["Resources"][FUNCTION_NAME]["Properties"] or {})}

    read = read_function_settings(text, FUNCTION_NAME)

    assert read.runtime == "python3.12"
    assert read.memory_mb == merged.get("MemorySize", LAMBDA_DEFAULT_MEMORY_MB)
    assert read.timeout_s == merged.get("Timeout", LAMBDA_DEFAULT_TIMEOUT_S)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f"Resources:\n  {FUNCTION_NAME}:\n    Properties:\n      Runtime: python3.12\n      Timeout: !Ref S\n",
            'Timeout is "!Ref S"; expected a whole number',
        ),
        (f"Resources:\n  {FUNCTION_NAME}:\n    Properties:\n      MemorySize: 1024\n", "no Runtime"),
        ("Globals: {Function: {Runtime: python3.12}}\n", "not a block mapping"),
    ],
)
def test_a_template_the_runner_cannot_read_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(LocalRunnerError, match=message):
        read_function_settings(text, FUNCTION_NAME)


def test_settings_and_context_follow_what_sam_deploys() -> None:
    """The real template.yaml against the SAM transform's own output (Globals applied)."""
    deployed = transformed({})["Resources"][FUNCTION_NAME]["Properties"]
    context = LambdaContext()

    assert function_settings().runtime == deployed["Runtime"]
    assert context.memory_limit_in_mb == deployed["MemorySize"]
    assert deployed["Timeout"] * 1000 - 1000 < context.get_remaining_time_in_millis() <= deployed["Timeout"] * 1000


@fixed(50)
@given(major=st.integers(2, 4), minor=st.integers(0, 20))
def test_only_the_templates_runtime_may_run_the_package(major: int, minor: int) -> None:
    if (major, minor) == (3, 12):
        check_interpreter("python3.12", major, minor, "/usr/bin/python")
        return
    with pytest.raises(LocalRunnerError, match=rf"built for python3\.12 .* this is python{major}\.{minor} "):
        check_interpreter("python3.12", major, minor, "/usr/bin/python")


# The timeout, enforced on the main thread as Lambda's runtime would.
def sleeper(catch: type[BaseException] | None) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            time.sleep(5)
        except BaseException:
            if catch is None:
                raise
        return {"statusCode": 500}

    return handler


@pytest.mark.parametrize("catch", [None, Exception, BaseException])
def test_a_handler_past_its_timeout_is_stopped_even_if_it_catches(catch: type[BaseException] | None) -> None:
    started = time.monotonic()

    with pytest.raises(FunctionTimedOut, match=r"Task timed out after 0\.20 seconds"):
        call_with_timeout(sleeper(catch), {}, LambdaContext(timeout_s=0.2))

    assert time.monotonic() - started < 2
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


def test_a_handler_within_its_timeout_answers() -> None:
    response = call_with_timeout(
        lambda event, context: {"statusCode": 200, "timeout": context.timeout_s}, {}, LambdaContext()
    )

    assert response == {"statusCode": 200, "timeout": float(function_settings().timeout_s)}
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


# start-api over real sockets, with a function that echoes its event.
class EchoFunction:
    """Answers with what it received; counts how many invocations ever overlapped."""

    def __init__(self) -> None:
        self.active = 0
        self.most_active = 0
        self.threads: set[int] = set()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        self.threads.add(threading.get_ident())
        try:
            path = event["rawPath"]
            if path == "/fail":
                raise RuntimeError("the function broke")
            if path == "/malformed":
                return {"statusCode": "two hundred"}
            if path == "/slow":
                time.sleep(0.02)
            body = base64.b64decode(event.get("body", "")).decode("latin-1")
            echoed = {"method": event["requestContext"]["http"]["method"], "path": path, "body": body}
            return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(echoed)}
        finally:
            self.active -= 1


@pytest.fixture(scope="module")
def echo() -> EchoFunction:
    return EchoFunction()


@pytest.fixture(scope="module")
def echo_port(echo: EchoFunction) -> Iterator[int]:
    """start-api with its execution environment on a worker thread (no timeout enforced there)."""
    environment = ExecutionEnvironment()
    server = LocalApiServer(("127.0.0.1", 0), environment)
    threads = [
        threading.Thread(target=server.serve_forever, daemon=True),
        threading.Thread(target=environment.run, args=(echo,), daemon=True),
    ]
    for thread in threads:
        thread.start()
    yield server.server_address[1]
    environment.stop()
    server.shutdown()
    server.server_close()
    for thread in threads:
        thread.join(timeout=10)


def exchange(port: int, request: bytes, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Send raw request bytes on a new connection; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        response = http.client.HTTPResponse(connection, method=method)
        try:
            response.begin()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            response.close()


def assert_runner_error(answer: tuple[int, dict[str, str], bytes], status: int, message: str) -> None:
    code, headers, body = answer
    assert (code, headers["content-type"]) == (status, "application/json")
    assert headers["connection"] == "close"
    assert len(body) < MAX_ERROR_BYTES
    assert re.search(message, json.loads(body)["error"])


def test_an_idle_keep_alive_connection_blocks_no_one(echo_port: int) -> None:
    with (
        socket.create_connection(("127.0.0.1", echo_port), timeout=10) as idle,
        socket.create_connection(("127.0.0.1", echo_port), timeout=10) as kept_alive,
    ):
        idle.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{")  # and then nothing
        kept_alive.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        first = http.client.HTTPResponse(kept_alive)
        first.begin()
        assert json.loads(first.read())["path"] == "/first"
        first.close()

        assert exchange(echo_port, b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0] == 200


def test_connections_are_concurrent_but_invocations_one_at_a_time(echo: EchoFunction, echo_port: int) -> None:
    def client(index: int) -> list[str]:
        connection = http.client.HTTPConnection("127.0.0.1", echo_port, timeout=10)
        try:
            paths = []
            for request in range(5):
                connection.request("POST", "/slow", body=f"{index}-{request}".encode())
                paths.append(json.loads(connection.getresponse().read())["body"])
            return paths
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(client, range(8)))

    assert answers == [[f"{index}-{request}" for request in range(5)] for index in range(8)]
    assert echo.most_active == 1
    assert len(echo.threads) == 1


METHOD_NAMES = st.one_of(
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND"]),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ-_!", min_size=1, max_size=12),
)


@fixed(60)
@given(method=METHOD_NAMES, segments=PATH_SEGMENTS)
def test_any_method_and_path_reach_the_function(echo_port: int, method: str, segments: list[str]) -> None:
    """API Gateway forwards every method and does not collapse `//`: nor does start-api (which
    used to answer HEAD and TRACE with its own HTML 501 and turn `//predict` into `/predict`)."""
    path = "//" + "/".join(segments)
    request = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi".encode()

    status, headers, body = exchange(echo_port, request, method)

    assert status == 200
    expected = json.dumps({"method": method, "path": path, "body": "hi"}).encode()
    assert headers["content-length"] == str(len(expected))
    assert body == (b"" if method == "HEAD" else expected)


@fixed(30)
@given(chunks=st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=5))
def test_a_chunked_request_body_reaches_the_function(echo_port: int, chunks: list[bytes]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", echo_port, timeout=10)
    try:
        connection.request("POST", "/predict", body=iter(chunks), encode_chunked=True)
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())["body"]) == (200, b"".join(chunks).decode("latin-1"))
    finally:
        connection.close()


@fixed(60)
@given(value=LENGTH_VALUES.filter(lambda value: not re.fullmatch(r"\s*0*[0-9]{1,6}\s*", value)))
def test_a_bad_content_length_gets_a_small_json_4xx_and_no_hang(echo_port: int, value: str) -> None:
    request = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\n".encode("latin-1")
    digits = value.strip()
    if within_limit(digits):
        return  # a valid length: the client owes the body
    too_large = bool(re.fullmatch(r"[0-9]+", digits))

    assert_runner_error(
        exchange(echo_port, request),
        413 if too_large else 400,
        "payload limit" if too_large else "Content-Length",
    )


@pytest.mark.parametrize("expect_continue", [True, False])
def test_a_body_over_the_payload_limit_is_refused_and_the_client_reads_why(
    echo_port: int, expect_continue: bool
) -> None:
    size = LAMBDA_PAYLOAD_LIMIT_BYTES + 1
    connection = http.client.HTTPConnection("127.0.0.1", echo_port, timeout=10)
    headers = {"Content-Length": str(size), **({"Expect": "100-continue"} if expect_continue else {})}
    try:
        connection.putrequest("POST", "/predict")
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        if not expect_continue:
            connection.send(b"x" * size)
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (
            413,
            {"error": f"the request body ({size:,} bytes) is over Lambda's 6,291,456-byte payload limit: split it"},
        )
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("head", "status", "message"),
    [
        ("POST /p HTTP/1.1\r\nTransfer-Encoding: gzip, chunked", 400, "Transfer-Encoding .* not supported"),
        ("POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3", 400, "both Content-Length"),
        ("POST /p HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4", 400, "conflicting Content-Length"),
        ("GET http://example.com/p HTTP/1.1", 400, "is not a path"),
        ("GET * HTTP/1.1", 400, "is not a path"),
        ("GARBAGE" * 1000, 400, "Bad request syntax"),
        ("GET /p HTTP/9.9", 505, r"Invalid HTTP version \(9\.9\)"),
        ("GET /p", 505, "HTTP/0.9 is not supported"),
    ],
)
def test_requests_the_runner_cannot_frame_get_its_json_error(
    echo_port: int, head: str, status: int, message: str
) -> None:
    assert_runner_error(exchange(echo_port, f"{head}\r\nHost: x\r\n\r\n".encode()), status, message)


def test_a_body_shorter_than_its_content_length_is_refused(echo_port: int) -> None:
    with socket.create_connection(("127.0.0.1", echo_port), timeout=10) as connection:
        connection.sendall(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        connection.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(connection)
        response.begin()
        assert (response.status, json.loads(response.read())) == (
            400,
            {"error": "the request body ended after 3 of 10 bytes"},
        )
        response.close()


@pytest.mark.parametrize("path", ["/fail", "/malformed"])
def test_a_function_failure_is_a_500_and_the_server_goes_on(echo_port: int, path: str) -> None:
    answer = exchange(echo_port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    assert_runner_error(answer, 500, "the function failed: (RuntimeError|ValueError)")
    assert exchange(echo_port, b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0] == 200


def test_a_timeout_on_the_main_thread_is_a_500() -> None:
    environment = ExecutionEnvironment()
    server = LocalApiServer(("127.0.0.1", 0), environment)
    answers: list[tuple[int, dict[str, str], bytes]] = []

    def client() -> None:
        try:
            answers.append(exchange(server.server_address[1], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        finally:
            environment.stop()

    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    calling = threading.Thread(target=client)
    calling.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LambdaContext, "__post_init__", lambda self: setattr(self, "deadline", time.monotonic() + 0.2))
        environment.run(sleeper(Exception))
    calling.join(timeout=10)
    server.shutdown()
    server.server_close()

    assert_runner_error(answers[0], 500, "the function failed: FunctionTimedOut")


def test_the_seed_request_through_the_function_on_the_main_thread(app_module: ModuleType) -> None:
    """The real function, invoked on the main thread as Lambda's runtime does (Mangum runs the
    app on the main thread's event loop)."""
    environment = ExecutionEnvironment()
    server = LocalApiServer(("127.0.0.1", 0), environment)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    answers: list[tuple[int, Any]] = []

    def call(request: urllib.request.Request) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.load(error)

    def clients() -> None:
        try:
            answers.append(
                call(urllib.request.Request(f"{url}/predict", SEED_BODY, {"Content-Type": "application/json"}))
            )
            answers.append(call(urllib.request.Request(f"{url}/predict")))
        finally:
            environment.stop()

    threading.Thread(target=server.serve_forever, daemon=True).start()
    calling = threading.Thread(target=clients)
    calling.start()
    environment.run(app_module.handler)
    calling.join(timeout=10)
    server.shutdown()
    server.server_close()

    assert answers == [
        (200, {"prediction": 1}),
        (405, {"error": "method GET is not allowed on /predict; allowed: POST"}),
    ]


# The command line: invoke goes on after a failing event; misuse gets one line, never a traceback.
FAKE_HANDLER = """
def handler(event, context):
    if "fail" in event:
        raise ValueError(event["fail"])
    return {"statusCode": 200, "body": str(context.get_remaining_time_in_millis() > 0)}
"""


@pytest.fixture(scope="module")
def fake_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    package = tmp_path_factory.mktemp("package")
    (package / "app.py").write_text(FAKE_HANDLER)
    return package


def run_local(*args: str, python: str = sys.executable, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, str(LAMBDA_LOCAL), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert re.search(message, result.stderr)


def test_invoke_reports_each_failing_event_and_goes_on(fake_package: Path, tmp_path: Path) -> None:
    events = []
    for index, event in enumerate([{"fail": "first"}, {"ok": 1}, {"fail": "third"}, {"ok": 2}]):
        events.append(tmp_path / f"event-{index}.json")
        events[-1].write_text(json.dumps(event))

    result = run_local("--package", str(fake_package), "invoke", *map(str, events))

    responses = json.loads(result.stdout)
    assert [response.get("errorType") for response in responses] == ["ValueError", None, "ValueError", None]
    assert [response.get("errorMessage") for response in responses] == ["first", None, "third", None]
    assert [response.get("body") for response in responses] == [None, "True", None, "True"]
    assert result.returncode == 1
    assert result.stderr.strip().endswith("lambda_local.py: 2 of 4 invocations failed (see above)")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"cannot read event .*missing\.json: No such file or directory"),
        (b'{"a": ', r"event .*\.json is not valid JSON: Expecting value"),
        (b"\xff\xfe{}", r"event .*\.json is not valid JSON"),
    ],
)
def test_an_unreadable_event_is_one_line(
    fake_package: Path, tmp_path: Path, content: bytes | None, message: str
) -> None:
    event = tmp_path / "missing.json"
    if content is not None:
        event = tmp_path / "event.json"
        event.write_bytes(content)

    assert_one_line_error(run_local("--package", str(fake_package), "invoke", str(event)), message)


def test_a_missing_package_is_one_line(tmp_path: Path) -> None:
    result = run_local("--package", str(tmp_path), "invoke", str(PROJECT_ROOT / "events" / "http-api-predict.json"))

    assert_one_line_error(result, "no built package at .*: run `sam build`")


def test_a_port_in_use_is_one_line(fake_package: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run_local("--package", str(fake_package), "start-api", "--port", str(port))

    assert_one_line_error(result, rf"cannot listen on 127\.0\.0\.1:{port}: Address already in use")


OTHER_PYTHONS = sorted(
    str(python)
    for pattern in (".pyenv/versions/3.*/bin/python3.1[013]", "/usr/bin/python3.1[013]")
    for python in (Path.home().glob(pattern) if pattern.startswith(".") else Path("/").glob(pattern[1:]))
)


@pytest.mark.skipif(not OTHER_PYTHONS, reason="no Python other than 3.12 on this machine")
def test_another_interpreter_is_one_line(fake_package: Path) -> None:
    result = run_local("--package", str(fake_package), "invoke", "missing.json", python=OTHER_PYTHONS[0])

    assert_one_line_error(result, r"the package is built for python3\.12 .* but this is python3\.1[013] ")
