"""The function's error hierarchy and the one place errors become HTTP responses.

Every error body has the shape {"error": "<message>"}; messages name what was wrong
and what is accepted. Unexpected exceptions are logged and answered with a generic 500.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from serving.observability import record_rejection

INTERNAL_ERROR_MESSAGE = "internal error; the request was logged and can be retried"
# Rejected input, counted in the ValidationErrors metric (unknown routes and methods are not).
VALIDATION_STATUSES = frozenset({400, 413, 415, 422})
# Error bodies stay small whatever the client sent: each quoted client value is cut to
# MAX_QUOTED_CHARS, at most MAX_LISTED_PROBLEMS problems are listed, and no message exceeds
# MAX_MESSAGE_CHARS (a backstop: a body over Lambda's 6 MB response limit is a 5xx).
MAX_QUOTED_CHARS = 80
MAX_LISTED_PROBLEMS = 5
# A problem's own text (pydantic's, or a validator's list of accepted values), never client input.
MAX_PROBLEM_CHARS = 400
MAX_MESSAGE_CHARS = 2000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shorten(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """Client text (a path, a key) for an error message: at most `limit` ASCII characters, with
    control and non-ASCII characters escaped, so its JSON encoding stays as short."""
    return _cut(text[: limit + 1].encode("unicode_escape").decode("ascii"), limit)


def quote(value: Any, limit: int = MAX_QUOTED_CHARS) -> str:
    """A client value as JSON for an error message, at most `limit` characters.

    Rendered piece by piece and stopped once over the limit, so quoting a 6 MB value costs
    no more than quoting a short one and a deeply nested one cannot exhaust the stack
    (every level adds a character before descending).
    """
    pieces: list[str] = []
    size = 0

    def emit(text: str) -> None:
        nonlocal size
        pieces.append(text)
        size += len(text)

    def render(item: Any) -> None:
        if isinstance(item, dict):
            emit("{")
            for index, (key, inner) in enumerate(item.items()):
                if size > limit:
                    return
                emit(f"{', ' if index else ''}{json.dumps(str(key)[: limit + 1])}: ")
                render(inner)
            emit("}")
        elif isinstance(item, list | tuple):
            emit("[")
            for index, inner in enumerate(item):
                if size > limit:
                    return
                emit(", " if index else "")
                render(inner)
            emit("]")
        else:
            emit(json.dumps(item[: limit + 1] if isinstance(item, str) else item, default=str))

    render(value)
    return _cut("".join(pieces), limit)


class ServiceError(Exception):
    """Base of every error the API reports to its client."""

    status_code = 500

    def __init__(self, message: str) -> None:
        self.message = _cut(message, MAX_MESSAGE_CHARS)
        super().__init__(self.message)


class InvalidRequestError(ServiceError):
    """The request body is JSON but does not match what the route accepts."""

    status_code = 422


class NoProbabilitiesError(InvalidRequestError):
    """Probabilities were asked of a regressor, which predicts a number, not classes."""

    def __init__(self, model_name: str) -> None:
        super().__init__(
            f"model {quote(model_name)} is a regressor: it predicts a number, not class probabilities; "
            "omit ?probabilities=true"
        )


class MalformedBodyError(ServiceError):
    """The request body is not parseable JSON."""

    status_code = 400


class UnsupportedMediaTypeError(ServiceError):
    """The request declares a content type other than JSON."""

    status_code = 415


class PayloadTooLargeError(ServiceError):
    """The request body is over the size the function accepts."""

    status_code = 413


class RouteNotFoundError(ServiceError):
    """No route matches the request path."""

    status_code = 404


class MethodNotAllowedError(ServiceError):
    """The path exists but does not accept the request method."""

    status_code = 405


class UnhandledHTTPError(ServiceError):
    """Any other HTTP error raised by the framework, reported with its own status."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


class ModelLoadError(ServiceError):
    """The model or its manifest is missing, corrupt or incompatible; the function must not start."""


def error_response(error: ServiceError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    if error.status_code in VALIDATION_STATUSES:
        record_rejection(error.status_code, error.message)
    return JSONResponse({"error": error.message}, status_code=error.status_code, headers=headers)


def _format_location(location: Sequence[int | str], prefix: str = "") -> str:
    text = prefix
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f".{shorten(part)}" if text else shorten(part)
    return text or "body"


def describe_problems(problems: Sequence[Mapping[str, Any]], prefix: str = "") -> str:
    """pydantic's errors as one line: the first few, each with its location, what was wrong and
    the value received; then how many more there were."""
    described = [
        f"{_format_location(problem['loc'], prefix)}: {_cut(problem['msg'], MAX_PROBLEM_CHARS)}"
        + (f" (got {quote(problem['input'])})" if "input" in problem and problem["type"] != "missing" else "")
        for problem in problems[:MAX_LISTED_PROBLEMS]
    ]
    if len(problems) > MAX_LISTED_PROBLEMS:
        described.append(f"and {len(problems) - MAX_LISTED_PROBLEMS:,} more")
    return "; ".join(described)


def describe_validation_error(error: RequestValidationError) -> ServiceError:
    """FastAPI's validation error (of query parameters: bodies are parsed by the routes) as one message."""
    details = describe_problems([{**problem, "loc": problem["loc"][1:]} for problem in error.errors()])
    return InvalidRequestError(f"invalid request: {details}")


def _documented_routes(app: FastAPI) -> str:
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return ", ".join(f"{method.upper()} {path}" for path, operations in paths.items() for method in operations)


async def _handle_service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    return error_response(error)


async def _handle_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return error_response(describe_validation_error(error))


async def _handle_http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    method, path = shorten(request.method), shorten(request.url.path)
    if error.status_code == 404:
        routes = _documented_routes(request.app)
        return error_response(RouteNotFoundError(f"no route for {method} {path}; available: {routes}"))
    if error.status_code == 405:
        allowed = (error.headers or {}).get("Allow", "")
        message = f"method {method} is not allowed on {path}; allowed: {allowed}"
        return error_response(MethodNotAllowedError(message), headers={"Allow": allowed})
    return error_response(UnhandledHTTPError(error.status_code, shorten(str(error.detail))), headers=error.headers)


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _handle_service_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(HTTPException, _handle_http_error)


# Events: checked before Mangum sees them (serving/events.py).

SERVED_EVENTS = (
    "API Gateway REST API (payload format 1.0), HTTP API (payload format 2.0) and Lambda Function URL events"
)
MAX_EVENT_KEYS_SHOWN = 10


class MalformedEventError(ServiceError):
    """An HTTP event without a field the function reads, or with one of the wrong type or an unreadable
    value (a direct invoke or a hand-made test event: API Gateway does not send these)."""

    status_code = 400

    def __init__(self, payload_format: str, problems: Sequence[Mapping[str, Any]]) -> None:
        first = problems[0]
        where = ".".join(shorten(str(part)) for part in first["loc"]) or "event"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(
            f"malformed HTTP event (payload format {payload_format}): {where}: {shorten(first['msg'])}{more}; "
            f"this function serves {SERVED_EVENTS}"
        )
        self.payload_format = payload_format


class UnsupportedEventError(Exception):
    """The function was invoked with an event that is not an HTTP request (a direct invoke or a
    misconfigured trigger: SQS, S3, SNS, EventBridge, DynamoDB streams...). Raised, not answered:
    such an invoke has no HTTP client to answer."""

    def __init__(self, json_type: str, keys: Sequence[str]) -> None:
        self.keys_shown = [shorten(key) for key in keys[:MAX_EVENT_KEYS_SHOWN]]
        more = f" and {len(keys) - MAX_EVENT_KEYS_SHOWN} more" if len(keys) > MAX_EVENT_KEYS_SHOWN else ""
        received = f"a JSON {json_type}" + (f" with keys {', '.join(self.keys_shown)}{more}" if keys else "")
        super().__init__(f"this function serves {SERVED_EVENTS} only; it was invoked with {received}")
