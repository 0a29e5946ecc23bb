"""Docker-free stand-ins for `sam local invoke` and `sam local start-api` (`make invoke`, `make start-api`):

    python local/lambda_local.py invoke events/http-api-predict.json [more.json ...]
    python local/lambda_local.py start-api [--port 3000]

The built package runs as on Lambda: in a child process of the template's Python running
local/lambda_runtime.py, isolated (`-I -S -B`: only the package and the standard library
importable, no bytecode written), one invocation at a time, with the memory size and timeout of
template.yaml (read here, in the parent, with the SAM translator's YAML loader, which knows
CloudFormation's tags). A timeout or a crash ends the child: the next invocation is a cold start
in a new one, as on Lambda. start-api is the standard library's ThreadingHTTPServer turning
requests into HTTP API events. What is written here is what only Lambda and API Gateway define:
the event, the error documents, the limits, the timeouts.

local/score.py imports this file in an isolated process too: the YAML reader (not importable
there) and the HTTP server are imported where used.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

sys.path.append(str(Path(__file__).resolve().parent))  # lambda_runtime.py, beside it, as isolated processes import it
import lambda_runtime
from lambda_runtime import FUNCTION_NAME, LAMBDA_DEFAULT_MEMORY_MB, LAMBDA_DEFAULT_TIMEOUT_S, log

if TYPE_CHECKING:
    from collections.abc import Sequence
    from email.message import Message

    Event = dict[str, Any]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = PROJECT_ROOT / "template.yaml"
# Where sam build puts the function's package: the one definition, for make, the build and the tests.
DEFAULT_PACKAGE = PROJECT_ROOT / ".aws-sam" / "build" / FUNCTION_NAME
# Python as Lambda runs the package: isolated (no user site, no PYTHON* variables, no script
# directory on the path), no site-packages, no bytecode written (/var/task is read-only).
ISOLATED_PYTHON_FLAGS = ("-I", "-S", "-B")
# Lambda's init phase limit, its invocation payload limit and API Gateway's request limit (a
# larger body is not even read).
LAMBDA_INIT_LIMIT_S = 10
LAMBDA_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
API_GATEWAY_PAYLOAD_LIMIT_BYTES = 10 * 1024 * 1024
MAX_MESSAGE_CHARS = 200


class LocalRunnerError(Exception):
    """A problem with how the runner was called or set up, reported as one line."""


class FunctionFailed(Exception):
    """An invocation failed (the function raised, timed out or exited); carries Lambda's error document."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(f"{document['errorType']}: {document['errorMessage']}")
        self.document = document


class FunctionSettings(NamedTuple):
    runtime: str
    memory_mb: int
    timeout_s: int


def read_template(path: Path) -> Any:
    """A SAM template's YAML, CloudFormation's short-form tags (!Ref, !If...) as their long forms, as
    SAM reads them (samtranslator's constructor), on libyaml's parser (in PyYAML's wheels):
    samtranslator's yaml_parse, on the pure-Python one, takes about 0.2 s of CPU over template.yaml.
    Raises OSError or yaml.YAMLError."""
    import yaml
    from samtranslator.yaml_helper import intrinsics_multi_constructor

    # A loader of its own: adding the tags to PyYAML's would change how others (cfn-lint) read YAML.
    loader: Any = type("TemplateLoader", (yaml.CSafeLoader,), {})
    loader.add_multi_constructor("!", intrinsics_multi_constructor)
    return yaml.load(path.read_text(), Loader=loader)


def function_settings() -> FunctionSettings:
    """The function's runtime, memory and timeout in template.yaml (its own property, else the
    Globals one, else Lambda's default; none for the runtime), refused unless this Python is the
    runtime the package is built for."""
    import yaml  # the parent's only: the isolated child has no site-packages

    try:
        template = read_template(TEMPLATE)
    except (OSError, yaml.YAMLError) as error:
        raise LocalRunnerError(f"cannot read {TEMPLATE}: {error}") from error
    own = ((template.get("Resources") or {}).get(FUNCTION_NAME) or {}).get("Properties") or {}
    merged = {**((template.get("Globals") or {}).get("Function") or {}), **own}
    if not isinstance(merged.get("Runtime"), str):
        raise LocalRunnerError(f"template.yaml: no Runtime for {FUNCTION_NAME} (in its Properties or Globals.Function)")
    numbers = {"MemorySize": LAMBDA_DEFAULT_MEMORY_MB, "Timeout": LAMBDA_DEFAULT_TIMEOUT_S}
    for name, default in numbers.items():
        numbers[name] = value = merged.get(name, default)
        if type(value) is not int or value < 1:
            shown = json.dumps(value, default=str)[:MAX_MESSAGE_CHARS]
            raise LocalRunnerError(f"template.yaml: {FUNCTION_NAME} {name} is {shown}; expected a whole number")
    settings = FunctionSettings(merged["Runtime"], numbers["MemorySize"], numbers["Timeout"])
    if settings.runtime != f"python{sys.version_info.major}.{sys.version_info.minor}":
        raise LocalRunnerError(
            f"the package is built for {settings.runtime} (template.yaml) but this is {sys.executable}"
        )
    return settings


def check_package(package: Path) -> None:
    if not (package / f"{lambda_runtime.HANDLER_MODULE}.py").is_file():
        raise LocalRunnerError(f"no built package at {package}: run `sam build` (or `make build`) first")


class IsolatedFunction:
    """The package's handler in a child process of the template's Python, invoked one event at a
    time from any thread; started at the first invocation and after one that ended it."""

    def __init__(self, package: Path, settings: FunctionSettings) -> None:
        check_package(package)
        self.package, self.settings = package.resolve(), settings
        self.lock = threading.Lock()
        self.child: subprocess.Popen[str] | None = None

    def invoke(self, event: Event) -> Any:
        """The handler's response to `event`; FunctionFailed with Lambda's error document if it
        raised, ran past its timeout (plus Lambda's init limit on a cold start) or exited."""
        with self.lock:
            cold = self.child is None
            if self.child is None:
                arguments = [lambda_runtime.__file__, str(self.package), str(self.settings.timeout_s)]
                # Unbuffered (-u) as Lambda's runtime makes the function's output; a session of its own:
                # Ctrl+C stops the runner, which ends the child.
                command = [sys.executable, *ISOLATED_PYTHON_FLAGS, "-u", *arguments]
                environment = {**os.environ, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.settings.memory_mb)}
                pipe = subprocess.PIPE
                self.child = subprocess.Popen(
                    command, stdin=pipe, stdout=pipe, env=environment, text=True, start_new_session=True
                )
            child = self.child
            assert child.stdin is not None
            assert child.stdout is not None
            with contextlib.suppress(BrokenPipeError):  # if it already failed, its last words are on stdout
                child.stdin.write(json.dumps(event) + "\n")
                child.stdin.flush()
            limit = self.settings.timeout_s + (LAMBDA_INIT_LIMIT_S if cold else 0)
            ready = select.select([child.stdout], [], [], limit)[0]
            reply = json.loads(child.stdout.readline() or "null") if ready else None
            if reply is None or reply.get("fatal"):
                self.close()
            if not ready:
                timed_out = f"Task timed out after {self.settings.timeout_s:.2f} seconds"
                raise FunctionFailed({"errorType": "Sandbox.Timedout", "errorMessage": timed_out})
            if reply is None:
                status = f"signal {-child.returncode}" if child.returncode < 0 else f"exit status {child.returncode}"
                raise FunctionFailed({"errorType": "Runtime.ExitError", "errorMessage": f"Runtime exited: {status}"})
            if "error" in reply:
                raise FunctionFailed(reply["error"])
            return reply["response"]

    def close(self) -> None:
        """End the child, if it runs."""
        if self.child is not None:
            self.child.kill()  # nothing if it already exited
            with contextlib.suppress(BrokenPipeError), self.child:  # closes its pipes, waits
                pass
            self.child = None


def invoke(function: IsolatedFunction, event_paths: Sequence[Path]) -> int:
    """Invoke one execution environment with each event in turn (a cold start, then warm ones) and
    print the responses (a JSON array for several events), Lambda's error document for a failed
    one, whose next event is still invoked. Returns the number of failures."""
    events = []
    for path in event_paths:
        try:
            events.append(json.loads(path.read_bytes()))
        except OSError as error:
            raise LocalRunnerError(f"cannot read event {path}: {error.strerror}") from error
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
            raise LocalRunnerError(f"event {path} is not valid JSON: {error}") from error
    responses: list[Any] = []
    for path, event in zip(event_paths, events, strict=True):
        try:
            responses.append(function.invoke(event))
        except FunctionFailed as failure:
            log.error("%s: the invocation failed (%s); going on with the next event", path, failure)
            responses.append(failure.document)
    sys.stdout.write(json.dumps(responses[0] if len(responses) == 1 else responses, indent=2) + "\n")
    return sum(isinstance(response, dict) and "errorType" in response for response in responses)


def http_api_event(method: str, target: str, headers: Message, body: bytes, client_ip: str) -> Event:
    """An API Gateway HTTP API payload 2.0 event for one HTTP request ($default stage): repeated
    headers joined with commas and cookies gathered into `cookies`, as API Gateway does."""
    path, _, query = target.partition("?")
    names = dict.fromkeys(name.lower() for name in headers if name.lower() != "cookie")
    joined = {name: ",".join(headers.get_all(name, [])) for name in names}
    cookies = [part.strip() for value in headers.get_all("cookie", []) for part in value.split(";") if part.strip()]
    now = time.time()
    http = {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": client_ip}
    context: dict[str, Any] = {"accountId": lambda_runtime.ACCOUNT_ID, "apiId": "local", "domainPrefix": "local"}
    context |= {
        "domainName": joined.get("host", "127.0.0.1"),
        "stage": "$default",
        "http": {**http, "userAgent": joined.get("user-agent", "")},
        "requestId": str(uuid.uuid4()),
        "routeKey": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    event: Event = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query}
    event |= {"headers": joined, "requestContext": context, "isBase64Encoded": bool(body)}
    if cookies:
        event["cookies"] = cookies
    if body:
        event["body"] = base64.b64encode(body).decode()
    return event


def start_api(function: IsolatedFunction, host: str, port: int) -> None:
    """Serve HTTP: each request, any method, becomes an HTTP API event for the function. The
    runner answers only what API Gateway answers itself, as JSON: a body it cannot read or over
    the payload limits, and a failed invocation (500, API Gateway's own body)."""
    from http import HTTPStatus
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    json_type = [("content-type", "application/json")]

    class ApiGateway(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 60  # an idle keep-alive connection holds its thread no longer
        disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK wait

        def forward(self) -> None:
            length = self.headers.get("content-length", "0").strip()
            if "transfer-encoding" in self.headers:
                return self.send_error(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
            if not (length.isascii() and length.isdigit()):
                return self.send_error(HTTPStatus.BAD_REQUEST, f"Content-Length {json.dumps(length)} is not a number")
            if len(length) > 9 or int(length) > API_GATEWAY_PAYLOAD_LIMIT_BYTES:
                over = f"the request body is over {API_GATEWAY_PAYLOAD_LIMIT_BYTES >> 20} MB"
                return self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, over)
            body = self.rfile.read(int(length))  # read even when over Lambda's limit: the client reads the answer
            if len(body) > LAMBDA_PAYLOAD_LIMIT_BYTES:
                limit = f"Lambda's {LAMBDA_PAYLOAD_LIMIT_BYTES:,}-byte payload limit"
                return self.reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, json_type, f"the body is over {limit}: split it")
            event = http_api_event(self.command, self.path, self.headers, body, self.client_address[0])
            try:
                response = function.invoke(event)
                headers = [*(response.get("headers") or {}).items()]
                headers += [("set-cookie", cookie) for cookie in response.get("cookies") or []]
                raw = response.get("body") or ""
                payload = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
                status = HTTPStatus(int(response.get("statusCode", 200)))
            except (FunctionFailed, AttributeError, TypeError, ValueError) as failure:
                log.error("%s %s: the function failed: %s", self.command, self.path, failure)
                return self.reply(HTTPStatus.INTERNAL_SERVER_ERROR, json_type, b'{"message":"Internal Server Error"}')
            return self.reply(status, headers, payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = forward  # API Gateway's ANY

        def reply(self, status: int, headers: list[tuple[str, Any]], payload: bytes | str) -> None:
            """The answer; a str payload is one of the runner's own refusals, sent as `{"error": ...}`."""
            if isinstance(payload, str):
                payload = json.dumps({"error": payload[:MAX_MESSAGE_CHARS]}).encode()
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in ("content-length", "transfer-encoding"):
                    self.send_header(name, str(value))
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # The standard library's refusals too; then the connection closes: its rest cannot be trusted.
            self.reply(code, [*json_type, ("connection", "close")], message or HTTPStatus(code).phrase)

    try:
        server = ThreadingHTTPServer((host, port), ApiGateway)  # its threads are daemons: Ctrl+C ends them
    except OSError as failure:
        reason = failure.strerror or str(failure)
        raise LocalRunnerError(f"cannot listen on {host}:{port}: {reason} (--port 0 picks a free port)") from failure
    log.info("serving %s on http://%s:%d (Ctrl+C to stop)", function.package, *server.server_address[:2])
    with server:
        server.serve_forever()


def main() -> None:
    lambda_runtime.log_to_stderr()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", type=Path, default=DEFAULT_PACKAGE, help="built package directory")
    commands = parser.add_subparsers(dest="command", required=True)
    invoke_parser = commands.add_parser("invoke", help="invoke the handler with event files, like sam local invoke")
    invoke_parser.add_argument("events", type=Path, nargs="+", help="event files, e.g. events/http-api-predict.json")
    api_parser = commands.add_parser("start-api", help="serve the handler over HTTP, like sam local start-api")
    api_parser.add_argument("--host", default="127.0.0.1")
    api_parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    try:
        with contextlib.closing(IsolatedFunction(args.package, function_settings())) as function:
            if args.command == "start-api":
                start_api(function, args.host, args.port)
            elif failures := invoke(function, args.events):
                raise LocalRunnerError(f"{failures} of {len(args.events)} invocations failed (see above)")
    except LocalRunnerError as failure:
        raise SystemExit(f"lambda_local.py: {failure}") from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
