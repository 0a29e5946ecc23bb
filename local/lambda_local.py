"""Docker-free stand-ins for `sam local invoke` and `sam local start-api`.

Both run the handler from the built package (`sam build` output) in a Python process
whose import path holds only that package and the standard library, without writing
bytecode, as Lambda's read-only /var/task would:

    python local/lambda_local.py invoke events/http-api-predict.json
    python local/lambda_local.py start-api --port 3000

start-api turns each HTTP request into an API Gateway HTTP API (payload 2.0) event, the
kind the template's HttpApi sends, and the handler's response back into HTTP. It serves
connections concurrently but invokes the handler one event at a time, on the main thread,
like one execution environment. The function's runtime, memory size and timeout come from
template.yaml; the timeout is enforced.
Standard library only: nothing from the caller's environment can leak into the package.
"""

from __future__ import annotations

import argparse
import base64
import functools
import importlib
import json
import logging
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import FrameType

    Event = dict[str, Any]
    Response = dict[str, Any]
    Handler = Callable[[Event, Any], Response]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = PROJECT_ROOT / "template.yaml"
FUNCTION_NAME = "PredictFunction"
# Where sam build puts the function's package: the one definition, for make, the build and the tests.
DEFAULT_PACKAGE = PROJECT_ROOT / ".aws-sam" / "build" / FUNCTION_NAME
# A Python as Lambda runs the package: isolated (no user site, no PYTHON* variables, no script
# directory on the path), no site-packages, no bytecode written (/var/task is read-only).
ISOLATED_PYTHON_FLAGS = ("-I", "-S", "-B")
HANDLER = "app.handler"
PROGRAM = "lambda_local.py"
REGION = "us-east-1"

# What Lambda uses when the template sets neither the function's property nor a Global.
LAMBDA_DEFAULT_MEMORY_MB = 128
LAMBDA_DEFAULT_TIMEOUT_S = 3
# Lambda's synchronous invocation payload limit (6 MB): the runner reads no more body than this.
LAMBDA_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
# How long a refused connection may keep sending (and be read and discarded) after the answer,
# so that the client reads the answer instead of a connection reset.
LINGER_SECONDS = 2.0
# An idle keep-alive connection is closed after this long, so that it holds no thread forever.
IDLE_CONNECTION_SECONDS = 60.0
# Longest chunk-size or trailer line, and most trailer lines, read from a chunked body.
MAX_CHUNK_LINE_BYTES = 1024
MAX_TRAILER_LINES = 100
# RFC 9110 token: what an HTTP method may be made of.
METHOD_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
QUOTED_VALUE_CHARS = 40
MAX_MESSAGE_CHARS = 200

# A directory standing in for what the Lambda runtime provides beside the package (boto3,
# botocore): needed only to run with tracing on or with a model from S3.
RUNTIME_PATH_VARIABLE = "LAMBDA_LOCAL_RUNTIME_PATH"

# The runner's own log (requests served, failures), on stderr beside the function's.
log = logging.getLogger("lambda_local")


class LocalRunnerError(Exception):
    """A problem with how the runner was called or set up, reported as one line."""


class FunctionTimedOut(BaseException):
    """The handler ran past its timeout. A BaseException, so that the function's own
    `except Exception` handlers cannot swallow it: Lambda's timeout cannot be caught either."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"Task timed out after {timeout_s:.2f} seconds")


@dataclass(frozen=True)
class FunctionSettings:
    """The function's settings in template.yaml that the runner emulates."""

    runtime: str
    memory_mb: int
    timeout_s: int


def quoted(value: str) -> str:
    """`value` quoted for a message, shortened so that no message grows with client input."""
    shown = value if len(value) <= QUOTED_VALUE_CHARS else value[:QUOTED_VALUE_CHARS] + "..."
    return json.dumps(shown)


def yaml_scalar(text: str, path: Sequence[str]) -> str | None:
    """The plain scalar at `path` in block-style YAML, or None when absent.

    template.yaml is read without PyYAML on purpose: the runner re-runs itself isolated
    (`python -I -S -B`) with no site-packages, so only the standard library is importable,
    and CloudFormation's tags (`!Ref`, `!If`) would need custom constructors anyway. This
    reads the subset the runner needs: nested block mappings of `Key: value` lines.
    """
    depth, parent_indent, child_indent = 0, -1, 0
    for line in text.splitlines():
        content = line.lstrip(" ")
        if not content or content.startswith("#") or content.startswith("---"):
            continue
        indent = len(line) - len(content)
        if indent <= parent_indent:
            return None  # left the block of the last key found without finding the next
        if child_indent < 0:
            child_indent = indent
        key, colon, value = content.partition(":")
        if indent != child_indent or not colon or value[:1] not in ("", " ") or key.strip("\"'") != path[depth]:
            continue
        scalar = value.split(" #", 1)[0].strip()
        if depth == len(path) - 1:
            return scalar.strip("\"'")
        if scalar:
            dotted = ".".join(path[: depth + 1])
            raise LocalRunnerError(f"template.yaml: {dotted} is not a block mapping, which is all the runner reads")
        depth, parent_indent, child_indent = depth + 1, indent, -1
    return None


def read_function_settings(template_text: str, function: str) -> FunctionSettings:
    """The function's runtime, memory and timeout: its own property, else the Globals one, else
    Lambda's default (there is none for the runtime)."""

    def setting(name: str) -> str | None:
        own = yaml_scalar(template_text, ("Resources", function, "Properties", name))
        return own if own is not None else yaml_scalar(template_text, ("Globals", "Function", name))

    def number(name: str, default: int) -> int:
        value = setting(name)
        if value is None:
            return default
        if not (value.isascii() and value.isdigit()):
            raise LocalRunnerError(f"template.yaml: {function} {name} is {quoted(value)}; expected a whole number")
        return int(value)

    runtime = setting("Runtime")
    if not runtime:
        raise LocalRunnerError(f"template.yaml: no Runtime for {function} (in its Properties or Globals.Function)")
    memory_mb = number("MemorySize", LAMBDA_DEFAULT_MEMORY_MB)
    return FunctionSettings(runtime, memory_mb, number("Timeout", LAMBDA_DEFAULT_TIMEOUT_S))


@functools.lru_cache(maxsize=1)  # not functools.cache: Python 3.8 must get to the interpreter check
def function_settings() -> FunctionSettings:
    try:
        text = TEMPLATE.read_text()
    except OSError as error:
        raise LocalRunnerError(f"cannot read {TEMPLATE}: {error.strerror}") from error
    return read_function_settings(text, FUNCTION_NAME)


def check_interpreter(runtime: str, major: int, minor: int, executable: str) -> None:
    """Refuse to run the package under another Python than the runtime it was built for."""
    running = f"python{major}.{minor}"
    if running != runtime:
        raise LocalRunnerError(
            f"the package is built for {runtime} (Runtime in template.yaml) but this is {running} "
            f"({executable}): run it with {runtime}"
        )


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str = FUNCTION_NAME
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = field(default_factory=lambda: function_settings().memory_mb)
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION_NAME}"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name: str = "local"
    timeout_s: float = field(default_factory=lambda: float(function_settings().timeout_s))
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def call_with_timeout(handler: Handler, event: Event, context: LambdaContext) -> Response:
    """Call the handler; past the context's deadline raise FunctionTimedOut, as Lambda ends the
    invocation. The timer is a signal, so it is enforced only on the main thread (where Lambda's
    runtime runs handlers too); elsewhere the deadline is only reported by the context."""
    if threading.current_thread() is not threading.main_thread():
        return handler(event, context)
    expired = False

    def expire(signum: int, frame: FrameType | None) -> None:
        nonlocal expired
        expired = True
        raise FunctionTimedOut(context.timeout_s)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(context.get_remaining_time_in_millis(), 1) / 1000)
    try:
        response = handler(event, context)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if expired:  # the function caught the timeout (Mangum catches BaseException) and answered anyway
        raise FunctionTimedOut(context.timeout_s)
    return response


class FunctionFailed(Exception):
    """An invocation raised or timed out (already logged); carries Lambda's error document."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.document = {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "stackTrace": traceback.format_tb(error.__traceback__),
        }


def invoke_handler(handler: Handler, event: Event) -> Response:
    """One invocation, as Lambda's runtime makes it: a fresh context, the timeout enforced, and a
    failure logged with its traceback (the function's log) and raised as FunctionFailed."""
    try:
        return call_with_timeout(handler, event, LambdaContext())
    except (Exception, FunctionTimedOut) as error:
        log.exception("the function failed: %s: %s", type(error).__name__, error)
        raise FunctionFailed(error) from error


class ExecutionEnvironment:
    """One Lambda execution environment: events from any thread are invoked one at a time on
    the thread that calls `run` (the main thread, where the timeout can be enforced)."""

    def __init__(self) -> None:
        self._pending: queue.Queue[tuple[Event, Future[Response]] | None] = queue.Queue()

    def invoke(self, event: Event) -> Response:
        """Hand `event` to the environment and wait for the handler's response (or FunctionFailed)."""
        answer: Future[Response] = Future()
        self._pending.put((event, answer))
        return answer.result()

    def run(self, handler: Handler) -> None:
        """Invoke the handler with each pending event until `stop`."""
        while (pending := self._pending.get()) is not None:
            event, answer = pending
            try:
                answer.set_result(invoke_handler(handler, event))
            except FunctionFailed as failure:
                answer.set_exception(failure)

    def stop(self) -> None:
        self._pending.put(None)


def isolate() -> None:
    """Re-run this script isolated from site-packages and without writing bytecode."""
    if not (sys.flags.no_site and sys.flags.isolated and sys.flags.dont_write_bytecode):
        os.execv(sys.executable, [sys.executable, *ISOLATED_PYTHON_FLAGS, __file__, *sys.argv[1:]])


def load_handler(package: Path) -> Handler:
    if not (package / "app.py").is_file():
        raise LocalRunnerError(f"no built package at {package}: run `sam build` (or `make build`) first")
    environment = {
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function_settings().memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "LAMBDA_TASK_ROOT": str(package),
    }
    for name, value in environment.items():
        os.environ.setdefault(name, value)
    sys.path.insert(0, str(package))
    runtime_provided = os.environ.get(RUNTIME_PATH_VARIABLE)
    if runtime_provided:
        # What Lambda's /var/runtime adds after /var/task (boto3, botocore and their helpers).
        sys.path.append(runtime_provided)
    module_name, function_name = HANDLER.rsplit(".", 1)
    handler: Handler = getattr(importlib.import_module(module_name), function_name)
    return handler


def http_api_event(method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes, client_ip: str) -> Event:
    """An API Gateway HTTP API payload 2.0 event for one HTTP request ($default stage).

    The path is kept as sent (API Gateway does not collapse `//`); repeated headers are joined
    with commas and cookies gathered into `cookies`, as API Gateway does.
    """
    path, _, query = target.partition("?")
    now = time.time()
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "cookie":
            cookies += [part.strip() for part in value.split(";") if part.strip()]
        else:
            joined[lowered] = f"{joined[lowered]},{value}" if lowered in joined else value
    event: Event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": joined,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": joined.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": client_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": bool(body),
    }
    if cookies:
        event["cookies"] = cookies
    if body:
        event["body"] = base64.b64encode(body).decode()
    return event


def response_body(response: Response) -> bytes:
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


def http_response(response: Response) -> tuple[int, list[tuple[str, str]], list[str], bytes]:
    """Status, headers, cookies and body of a payload 2.0 response; FunctionFailed if malformed."""
    try:
        headers = [(str(name), str(value)) for name, value in (response.get("headers") or {}).items()]
        cookies = [str(cookie) for cookie in response.get("cookies") or []]
        return HTTPStatus(int(response.get("statusCode", 200))).value, headers, cookies, response_body(response)
    except (AttributeError, TypeError, ValueError) as error:
        log.exception("the function returned a malformed response")
        raise FunctionFailed(error) from error


class RefusedRequest(Exception):
    """A request the runner answers itself, before the function sees it."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def too_large(size: str) -> RefusedRequest:
    limit = f"Lambda's {LAMBDA_PAYLOAD_LIMIT_BYTES:,}-byte payload limit"
    return RefusedRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the request body ({size}) is over {limit}: split it")


def declared_length(values: Sequence[str]) -> int:
    """The body length that Content-Length header values declare (0 without one).

    Accepted: one decimal number of bytes (repeated identically, RFC 9110), at most Lambda's
    payload limit. A value is checked as text before it becomes an int, so that thousands of
    digits cost nothing.
    """
    distinct = {part.strip() for value in values for part in value.split(",")}
    if not distinct:
        return 0
    if len(distinct) > 1:
        shown = ", ".join(sorted(distinct))
        raise RefusedRequest(HTTPStatus.BAD_REQUEST, f"conflicting Content-Length values {quoted(shown)}")
    [value] = distinct
    if not (value.isascii() and value.isdigit()):
        raise RefusedRequest(
            HTTPStatus.BAD_REQUEST, f"Content-Length {quoted(value)} is not a number of bytes (digits 0-9)"
        )
    digits = value.lstrip("0") or "0"
    if len(digits) > len(str(LAMBDA_PAYLOAD_LIMIT_BYTES)):
        raise too_large(f"a {len(digits)}-digit number of bytes")
    length = int(digits)
    if length > LAMBDA_PAYLOAD_LIMIT_BYTES:
        raise too_large(f"{length:,} bytes")
    return length


def read_chunked(stream: BufferedIOBase, limit: int = LAMBDA_PAYLOAD_LIMIT_BYTES) -> bytes:
    """A `Transfer-Encoding: chunked` body (RFC 9112 section 7.1), refused once over `limit`."""

    def line() -> bytes:
        read = stream.readline(MAX_CHUNK_LINE_BYTES + 1)
        if not read.endswith(b"\n"):
            problem = "ended early" if len(read) <= MAX_CHUNK_LINE_BYTES else "has a chunk line that is too long"
            raise RefusedRequest(HTTPStatus.BAD_REQUEST, f"the chunked request body {problem}")
        return read.rstrip(b"\r\n")

    body = bytearray()
    while True:
        size_text = line().split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 16 or not re.fullmatch(rb"[0-9A-Fa-f]+", size_text):
            shown = quoted(size_text.decode("latin-1"))
            raise RefusedRequest(HTTPStatus.BAD_REQUEST, f"chunk size {shown} is not a hexadecimal number of bytes")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > limit:
            raise too_large(f"over {len(body) + size:,} bytes")
        chunk = stream.read(size)
        if len(chunk) < size or line():
            raise RefusedRequest(HTTPStatus.BAD_REQUEST, "a chunk of the request body is shorter than its size")
        body += chunk
    for _ in range(MAX_TRAILER_LINES):
        if not line():
            return bytes(body)
    raise RefusedRequest(HTTPStatus.BAD_REQUEST, f"the chunked request body has over {MAX_TRAILER_LINES} trailer lines")


class ApiGatewayRequestHandler(BaseHTTPRequestHandler):
    """Answers each HTTP request with the function's response to its HTTP API event. Any method
    reaches the function, as API Gateway forwards it; the runner answers only requests it cannot
    frame (bad Content-Length, bad chunking, over the payload limit) and function failures."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_SECONDS
    # Headers and body are two writes: without TCP_NODELAY, Nagle's algorithm holds the body back
    # until the client's delayed ACK of the headers, 40 ms later, on every keep-alive request.
    disable_nagle_algorithm = True
    invoke: Callable[[Event], Response]

    def __getattr__(self, name: str) -> Callable[[], None]:
        # BaseHTTPRequestHandler dispatches to do_<METHOD> and answers 501 without one.
        if name.startswith("do_"):
            return self.forward
        raise AttributeError(name)

    def forward(self) -> None:
        try:
            if not METHOD_TOKEN.fullmatch(self.command):
                raise RefusedRequest(HTTPStatus.BAD_REQUEST, f"method {quoted(self.command)} is not an HTTP token")
            if not self.path.startswith("/"):
                raise RefusedRequest(HTTPStatus.BAD_REQUEST, f"request target {quoted(self.path)} is not a path")
            body = self.read_body()
        except RefusedRequest as refused:
            self.send_error(refused.status, str(refused))
            return
        event = http_api_event(self.command, self.path, self.headers.items(), body, self.client_address[0])
        try:
            status, headers, cookies, payload = http_response(self.invoke(event))
        except FunctionFailed as failure:
            # API Gateway answers a function error, a timeout or a malformed response with a 500.
            self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR, f"the function failed: {failure.document['errorType']}")
            return
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        for cookie in cookies:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def read_body(self) -> bytes:
        transfer_encoding = self.headers.get_all("transfer-encoding")
        if transfer_encoding is None:
            length = declared_length(self.headers.get_all("content-length") or [])
            body = self.rfile.read(length)
            if len(body) < length:
                ended = f"the request body ended after {len(body)} of {length} bytes"
                raise RefusedRequest(HTTPStatus.BAD_REQUEST, ended)
            return body
        codings = [coding.strip().lower() for value in transfer_encoding for coding in value.split(",")]
        if codings != ["chunked"]:
            shown = quoted(", ".join(transfer_encoding))
            raise RefusedRequest(HTTPStatus.BAD_REQUEST, f"Transfer-Encoding {shown} is not supported; send chunked")
        if "content-length" in self.headers:
            both = "a request may not have both Content-Length and Transfer-Encoding"
            raise RefusedRequest(HTTPStatus.BAD_REQUEST, both)
        return read_chunked(self.rfile)

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":
            self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "HTTP/0.9 is not supported; send HTTP/1.1")
            return False
        # The standard library turns a leading `//` into `/` (against open redirects in its file
        # server); API Gateway passes the path on as sent.
        self.path = self.requestline.split()[1]
        return True

    def handle_expect_100(self) -> bool:
        # Refuse an oversized or malformed body before the client sends it.
        try:
            declared_length(self.headers.get_all("content-length") or [])
        except RefusedRequest as refused:
            self.send_error(refused.status, str(refused))
            return False
        return super().handle_expect_100()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every answer of the runner's own: JSON `{"error": ...}`, then the connection closes (the
        rest of the request cannot be trusted), after reading what the client still sends."""
        status = HTTPStatus(code)
        if self.request_version == "HTTP/0.9":
            # Not an HTTP/1.x request line: answer with a status line and headers all the same.
            self.request_version = "HTTP/1.0"
        text = message or explain or status.phrase
        # The standard library's own messages quote the request line whole: shorten them too.
        text = text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "..."
        payload = json.dumps({"error": text}).encode()
        self.log_error("%d %s", status.value, text)
        self.send_response(status.value)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.send_header("connection", "close")
        self.end_headers()
        if self.command != "HEAD" and status.value >= HTTPStatus.OK:
            self.wfile.write(payload)
        self.wfile.flush()
        self.linger()

    def linger(self) -> None:
        """Half-close and discard what the client is still sending (for a bounded time), so that
        closing with unread data does not reset the connection before the client reads the answer."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(65536):
                    break
        except OSError:
            pass  # the client is gone or slow: nothing more to do for it

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class LocalApiServer(ThreadingHTTPServer):
    """One thread per connection, so that an idle keep-alive connection blocks nobody."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], environment: ExecutionEnvironment) -> None:
        handler = type("Handler", (ApiGatewayRequestHandler,), {"invoke": staticmethod(environment.invoke)})
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.info("%s connection ended: %s", client_address[0], error)
        else:
            super().handle_error(request, client_address)


def listen(host: str, port: int, environment: ExecutionEnvironment) -> LocalApiServer:
    try:
        return LocalApiServer((host, port), environment)
    except OSError as error:
        reason = error.strerror or str(error)
        raise LocalRunnerError(f"cannot listen on {host}:{port}: {reason} (--port 0 picks a free port)") from error


def read_event(path: Path) -> Event:
    try:
        event: Event = json.loads(path.read_bytes())
    except OSError as error:
        raise LocalRunnerError(f"cannot read event {path}: {error.strerror}") from error
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise LocalRunnerError(f"event {path} is not valid JSON: {error}") from error
    return event


def invoke(package: Path, event_paths: Sequence[Path]) -> int:
    """Invoke one execution environment with each event in turn (a cold start, then warm ones).

    The response goes to stdout (a JSON array of responses for several events); an event the
    handler raised on gets Lambda's error document and the next event is invoked. The
    function's logs go to stderr, as with sam local invoke. Returns the number of failures.
    """
    events = [read_event(path) for path in event_paths]
    response_stream, sys.stdout = sys.stdout, sys.stderr
    handler = load_handler(package)
    responses: list[Any] = []
    for path, event in zip(event_paths, events, strict=True):
        try:
            responses.append(invoke_handler(handler, event))
        except FunctionFailed as failure:
            log.error("%s: the invocation failed; going on with the next event", path)
            responses.append(failure.document)
    output = responses[0] if len(responses) == 1 else responses
    response_stream.write(json.dumps(output, indent=2) + "\n")
    return sum("errorType" in response for response in responses)


def start_api(package: Path, host: str, port: int) -> None:
    environment = ExecutionEnvironment()
    server = listen(host, port, environment)
    handler = load_handler(package)
    host_name, bound_port = server.server_address[:2]
    try:
        threading.Thread(target=server.serve_forever, name="start-api", daemon=True).start()
        log.info("serving %s on http://%s:%d (Ctrl+C to stop)", package, host_name, bound_port)
        environment.run(handler)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", type=Path, default=DEFAULT_PACKAGE, help="built package directory")
    commands = parser.add_subparsers(dest="command", required=True)
    invoke_parser = commands.add_parser("invoke", help="invoke the handler once with an event file")
    invoke_parser.add_argument(
        "events", type=Path, nargs="+", help="event JSON file(s), e.g. events/http-api-predict.json"
    )
    api_parser = commands.add_parser("start-api", help="serve the handler over HTTP as an HTTP API would")
    api_parser.add_argument("--host", default="127.0.0.1")
    api_parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter(f"[{args.command}] %(message)s"))
    log.addHandler(stderr)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        check_interpreter(function_settings().runtime, sys.version_info.major, sys.version_info.minor, sys.executable)
        isolate()
        if args.command == "invoke":
            failures = invoke(args.package.resolve(), args.events)
            if failures:
                raise LocalRunnerError(f"{failures} of {len(args.events)} invocations failed (see above)")
        else:
            start_api(args.package.resolve(), args.host, args.port)
    except LocalRunnerError as error:
        raise SystemExit(f"{PROGRAM}: {error}") from None


if __name__ == "__main__":
    main()
