"""Docker-free stand-ins for `sam local invoke` and `sam local start-api`.

Both run the handler from the built package (`sam build` output) in a Python process
whose import path holds only that package and the standard library, without writing
bytecode, as Lambda's read-only /var/task would:

    python local/lambda_local.py invoke events/http-api-predict.json
    python local/lambda_local.py start-api --port 3000

start-api turns each HTTP request into an API Gateway HTTP API (payload 2.0) event, the
kind the template's HttpApi sends, and the handler's response back into HTTP.
Standard library only: nothing from the caller's environment can leak into the package.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PACKAGE = PROJECT_ROOT / ".aws-sam" / "build" / "PredictFunction"
FUNCTION_NAME = "PredictFunction"
HANDLER = "app.handler"
MEMORY_MB = 1024
TIMEOUT_MS = 10_000
LAMBDA_ENVIRONMENT = {
    "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB),
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}

# A directory standing in for what the Lambda runtime provides beside the package (boto3,
# botocore): needed only to run with tracing on or with a model from S3.
RUNTIME_PATH_VARIABLE = "LAMBDA_LOCAL_RUNTIME_PATH"

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str = FUNCTION_NAME
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = MEMORY_MB
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION_NAME}"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name: str = "local"
    deadline: float = field(default_factory=lambda: time.monotonic() + TIMEOUT_MS / 1000)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def isolate() -> None:
    """Re-run this script isolated from site-packages and without writing bytecode."""
    if not (sys.flags.no_site and sys.flags.isolated and sys.flags.dont_write_bytecode):
        os.execv(sys.executable, [sys.executable, "-I", "-S", "-B", __file__, *sys.argv[1:]])


def load_handler(package: Path) -> Handler:
    if not (package / "app.py").is_file():
        raise SystemExit(f"no built package at {package}: run `sam build` (or `make build`) first")
    for name, value in {**LAMBDA_ENVIRONMENT, "LAMBDA_TASK_ROOT": str(package)}.items():
        os.environ.setdefault(name, value)
    sys.path.insert(0, str(package))
    runtime_provided = os.environ.get(RUNTIME_PATH_VARIABLE)
    if runtime_provided:
        # What Lambda's /var/runtime adds after /var/task (boto3, botocore and their helpers).
        sys.path.append(runtime_provided)
    module_name, function_name = HANDLER.rsplit(".", 1)
    handler: Handler = getattr(importlib.import_module(module_name), function_name)
    return handler


def http_api_event(method: str, target: str, headers: dict[str, str], body: bytes, client_ip: str) -> dict[str, Any]:
    """An API Gateway HTTP API payload 2.0 event for one HTTP request ($default stage)."""
    url = urlsplit(target)
    now = time.time()
    lowered = {name.lower(): value for name, value in headers.items()}
    cookies = [part.strip() for part in lowered.pop("cookie", "").split(";") if part.strip()]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": url.path,
                "protocol": "HTTP/1.1",
                "sourceIp": client_ip,
                "userAgent": lowered.get("user-agent", ""),
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


def response_body(response: dict[str, Any]) -> bytes:
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


def make_request_handler(handler: Handler) -> type[BaseHTTPRequestHandler]:
    class ApiGatewayRequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _invoke(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            event = http_api_event(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
            response = handler(event, LambdaContext())
            payload = response_body(response)
            self.send_response(int(response.get("statusCode", 200)))
            for name, value in (response.get("headers") or {}).items():
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            for cookie in response.get("cookies") or []:
                self.send_header("set-cookie", cookie)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _invoke

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"[start-api] {self.address_string()} {format % args}\n")

    return ApiGatewayRequestHandler


def invoke(package: Path, event_paths: list[Path]) -> None:
    """Invoke one execution environment with each event in turn (a cold start, then warm ones).

    The response goes to stdout (a JSON array of responses for several events); the
    function's logs go to stderr, as with sam local invoke.
    """
    events = [json.loads(path.read_text()) for path in event_paths]
    response_stream, sys.stdout = sys.stdout, sys.stderr
    handler = load_handler(package)
    responses = [handler(event, LambdaContext()) for event in events]
    output = responses[0] if len(responses) == 1 else responses
    response_stream.write(json.dumps(output, indent=2) + "\n")


def start_api(package: Path, host: str, port: int) -> None:
    handler = load_handler(package)
    # One request at a time, like one Lambda execution environment.
    server = HTTPServer((host, port), make_request_handler(handler))
    sys.stderr.write(f"[start-api] serving {package} on http://{host}:{server.server_port} (Ctrl+C to stop)\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main() -> None:
    isolate()
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
    if args.command == "invoke":
        invoke(args.package.resolve(), args.events)
    else:
        start_api(args.package.resolve(), args.host, args.port)


if __name__ == "__main__":
    main()
