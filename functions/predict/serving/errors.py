"""The function's error hierarchy and the one place errors become HTTP responses.

Every error body has the shape {"error": "<message>"}; messages name what was wrong
and what is accepted. Unexpected exceptions are logged and answered with a generic 500.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
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
# Load errors go to the log, not to a client: longer than a client's quote, still bounded.
MAX_LOGGED_CHARS = 1000


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


class InvalidRowsError(InvalidRequestError):
    """The request does not validate: pydantic's problems, and the bodies the route accepts if given."""

    def __init__(self, problems: Sequence[Mapping[str, Any]], location: str = "", accepted: str | None = None) -> None:
        expected = f"; expected {accepted}" if accepted is not None else ""
        super().__init__(f"invalid request: {describe_problems(problems, location)}{expected}")


class WrongValueCountError(InvalidRequestError):
    """A row in feature order has another number of values than the model has features."""

    def __init__(self, location: str, features: Sequence[str], kind: str, count: int) -> None:
        super().__init__(f"{location}: expected {len(features)} {kind} ({', '.join(features)}), got {count}")


class NotARowError(InvalidRequestError):
    """An instance is neither a list in feature order nor an object keyed by feature name."""

    def __init__(self, location: str, features: Sequence[str], kind: str, value: Any) -> None:
        super().__init__(
            f"{location}: expected a list of {len(features)} {kind} or an object with "
            f"{', '.join(features)} (got {quote(value)})"
        )


class NotAnObjectError(InvalidRequestError):
    """The body is JSON but not an object."""

    def __init__(self, value: Any, accepted: str) -> None:
        super().__init__(f"request body must be a JSON object (got {quote(value)}); expected {accepted}")


class RowsRefusedError(InvalidRequestError):
    """The rows validate but the engine refuses them (an unknown category, a non-finite value)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the model cannot take these rows: {shorten(reason)}")


class MalformedBodyError(ServiceError):
    """The request body is not parseable JSON."""

    status_code = 400


class EmptyBodyError(MalformedBodyError):
    """The request has no body, or only whitespace."""

    def __init__(self) -> None:
        super().__init__("request body is empty; send a JSON object (see /docs)")


class NestedTooDeeplyError(MalformedBodyError):
    """The body nests deeper than the JSON parser can follow."""

    def __init__(self) -> None:
        super().__init__("request body is nested too deeply to parse; send a JSON object")


class InvalidJsonError(MalformedBodyError):
    """The body is not valid JSON (or not UTF-8); `reason` is the parser's."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"request body is not valid JSON ({shorten(reason)}); send a JSON object")


class UnsupportedMediaTypeError(ServiceError):
    """The request declares a content type other than JSON."""

    status_code = 415

    def __init__(self, content_type: str | None) -> None:
        super().__init__(
            f"content-type {quote(content_type)} is not accepted; send a JSON body with content-type application/json"
        )


class PayloadTooLargeError(ServiceError):
    """The request body is over the size the function accepts."""

    status_code = 413

    def __init__(self, limit_bytes: int, max_instances: int) -> None:
        super().__init__(
            f"request body is over the limit of {limit_bytes:,} bytes (Lambda's 6 MB synchronous payload): "
            f"send at most {max_instances:,} instances per request, in several requests if needed"
        )


class InferenceRequestError(ServiceError):
    """The infer request does not follow the protocol or does not fit the model."""

    status_code = 400


class InvalidInferenceRequestError(InferenceRequestError):
    """The infer request does not validate against the protocol's request schema."""

    def __init__(self, problems: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(f"invalid inference request: {describe_problems(problems)}")


class CategoryValuesError(InferenceRequestError):
    """A category feature's tensor holds values the feature does not accept."""

    def __init__(self, where: str, problems: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(describe_problems(problems, f"{where}.data"))


class NestedDataShapeError(InferenceRequestError):
    """A tensor's nested data is not one list per row of the declared shape."""

    def __init__(self, where: str, rows: int, columns: int) -> None:
        super().__init__(f"{where}.data: nested data must be {rows} rows of {columns} values")


class TensorValueTypeError(InferenceRequestError):
    """A tensor value is not of the JSON type its datatype needs."""

    def __init__(self, where: str, index: int, value: Any, datatype: str, kind: str) -> None:
        super().__init__(f"{where}.data[{index}] is {quote(value)}; {datatype} data must be JSON {kind}")


class TensorValueOutOfRangeError(InferenceRequestError):
    """A tensor value is not finite or too large for the model's float type."""

    def __init__(self, where: str, index: int, value: Any, limit: float) -> None:
        super().__init__(f"{where}.data[{index}] is {quote(value)}; values must be finite and within ±{limit:.17g}")


class DatatypeNotAcceptedError(InferenceRequestError):
    """The one input tensor of an all-numeric model has a datatype that is not a number's."""

    def __init__(self, where: str, datatype: str, accepted: Sequence[str]) -> None:
        super().__init__(f"{where}.datatype {quote(datatype)} is not accepted; use one of {', '.join(accepted)}")


class FeatureDatatypeError(InferenceRequestError):
    """A feature's input tensor has a datatype that feature's type does not take."""

    def __init__(
        self, where: str, datatype: str, feature_type: str, feature_name: str, accepted: Sequence[str]
    ) -> None:
        super().__init__(
            f"{where}.datatype {quote(datatype)} is not accepted for {feature_type} feature {quote(feature_name)}; "
            f"use {' or '.join(accepted)}"
        )


class ShapeNotAcceptedError(InferenceRequestError):
    """A tensor's shape is not one the model takes; `expected` describes those it takes."""

    def __init__(self, where: str, shape: Sequence[int], expected: str, max_rows: int) -> None:
        super().__init__(f"{where}.shape {quote(shape)} is not accepted; expected {expected} with 1 <= N <= {max_rows}")


class DataCountError(InferenceRequestError):
    """A tensor holds another number of values than its shape needs."""

    def __init__(self, where: str, count: int, shape: Sequence[int], needed: int) -> None:
        super().__init__(f"{where}.data has {count} values; shape {quote(shape)} needs {needed}")


class UnknownInputError(InferenceRequestError):
    """An input is named for no feature of the model."""

    def __init__(self, index: int, name: str, features: Sequence[str]) -> None:
        super().__init__(
            f"inputs[{index}].name {quote(name)} is not a feature of this model; "
            f"send one input per feature, named by it: {shorten(', '.join(features), MAX_PROBLEM_CHARS)}"
        )


class DuplicateInputError(InferenceRequestError):
    """Two inputs name the same feature."""

    def __init__(self, index: int, name: str) -> None:
        super().__init__(f"inputs[{index}]: feature {quote(name)} is given twice")


class MissingInputsError(InferenceRequestError):
    """Some features have no input."""

    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(
            f"inputs: no input for {shorten(', '.join(missing), MAX_PROBLEM_CHARS)}; send one input per feature, "
            "named by it"
        )


class RowCountMismatchError(InferenceRequestError):
    """The per-feature inputs have different numbers of rows."""

    def __init__(self, index: int, rows: int, first_feature: str, first_rows: int) -> None:
        super().__init__(
            f"inputs[{index}] has {rows} rows; every input must have the same number of rows "
            f"({quote(first_feature)} has {first_rows})"
        )


class InputCountError(InferenceRequestError):
    """An all-numeric model takes exactly one input tensor."""

    def __init__(self, count: int, n_features: int) -> None:
        super().__init__(f"inputs: {count} inputs; this model takes one, of shape [N, {n_features}]")


class OutputNotAvailableError(InferenceRequestError):
    """An output was requested that the model does not produce (a regressor has no probabilities)."""

    def __init__(self, name: str, available: Sequence[str], regressor: bool) -> None:
        why = f" (a regressor has no {name})" if regressor else ""
        super().__init__(f"output {quote(name)} is not available{why}; request {' or '.join(available)}")


class BinaryExtensionError(InferenceRequestError):
    """The request uses Triton's binary tensor extension (for its inputs, or asked for its outputs)."""

    def __init__(self, for_outputs: bool) -> None:
        use = "request JSON outputs" if for_outputs else "send JSON tensors"
        super().__init__(f"the binary tensor extension is not supported; {use} (binary_data=False)")


class ModelNotFoundError(ServiceError):
    """No model with that name, or not that version of it, is served here."""

    status_code = 404

    def __init__(self, name: str, served: str, version: str | None = None, served_version: str | None = None) -> None:
        if version is None:
            super().__init__(f"model {quote(name)} is not served here; this server serves {quote(served)}")
        else:
            super().__init__(
                f"version {quote(version)} of model {quote(name)} is not served here; "
                f"the version served is {quote(served_version)}"
            )


class RouteNotFoundError(ServiceError):
    """No route matches the request path."""

    status_code = 404

    def __init__(self, method: str, path: str, routes: str) -> None:
        super().__init__(f"no route for {shorten(method)} {shorten(path)}; available: {routes}")


class MethodNotAllowedError(ServiceError):
    """The path exists but does not accept the request method."""

    status_code = 405

    def __init__(self, method: str, path: str, allowed: str) -> None:
        super().__init__(f"method {shorten(method)} is not allowed on {shorten(path)}; allowed: {allowed}")


class UnhandledHTTPError(ServiceError):
    """Any other HTTP error raised by the framework, reported with its own status."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(shorten(detail))
        self.status_code = status_code


class ModelLoadError(ServiceError):
    """The model or its manifest is missing, corrupt or incompatible; the function must not start."""


class ModelFileMissingError(ModelLoadError):
    """The manifest or the engine file it names is not where the model is loaded from."""

    def __init__(self, what: str, path: Path) -> None:
        super().__init__(f"{what} not found at {path}")


class InvalidManifestError(ModelLoadError):
    """The manifest does not validate; pydantic's problems, each with its location."""

    def __init__(self, path: Path, problems: Sequence[Mapping[str, Any]]) -> None:
        described = "; ".join(f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in problems)
        super().__init__(f"model manifest {path} is invalid: {shorten(described, MAX_LOGGED_CHARS)}")


class ModelChecksumError(ModelLoadError):
    """The engine file's sha256 is not the one its manifest records."""

    def __init__(self, path: Path, digest: str, expected: str) -> None:
        super().__init__(f"model file {path} has sha256 {digest}, its manifest expects {expected}")


class CompiledModelUnreadableError(ModelLoadError):
    """The compiled engine's file is not a readable .npz of arrays its engine accepts."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"compiled model {path} cannot be read: {shorten(reason)}")


class UnpicklingError(ModelLoadError):
    """The scikit-learn engine's file cannot be unpickled."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"model {path} cannot be unpickled: {shorten(reason)}")


class InterfaceMismatchError(ModelLoadError):
    """The model file records another interface (names, counts, classes) than its manifest claims."""

    def __init__(self, path: Path, key: str, recorded: Any, claimed: Any) -> None:
        super().__init__(
            f"model {path} records {key} {shorten(str(recorded))}, its manifest says {shorten(str(claimed))}"
        )


class PickledVersionError(ModelLoadError):
    """The estimator was pickled by another scikit-learn version than the one shipped."""

    def __init__(self, path: Path, pickled_with: str, running: str) -> None:
        super().__init__(
            f"model {path} was pickled with scikit-learn {pickled_with} but this function runs {running}; "
            "rebuild the package"
        )


class BundleDownloadError(ModelLoadError):
    """The pinned model bundle cannot be read from S3; `reason` is S3's."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"cannot read model bundle {uri}: {shorten(reason, MAX_PROBLEM_CHARS)}")


class InvalidBundleError(ModelLoadError):
    """The model bundle is not a zip of a valid manifest and the engine file it names."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"model bundle {uri} is not a valid bundle: {shorten(reason, MAX_LOGGED_CHARS)}")


class BundleChecksumError(ModelLoadError):
    """The bundle's sha256 is not the one the function is configured to expect."""

    def __init__(self, uri: str, digest: str, expected: str, setting: str) -> None:
        super().__init__(f"model bundle {uri} has sha256 {digest}, {setting} expects {expected}")


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
    method, path = request.method, request.url.path
    if error.status_code == 404:
        return error_response(RouteNotFoundError(method, path, _documented_routes(request.app)))
    if error.status_code == 405:
        allowed = (error.headers or {}).get("Allow", "")
        return error_response(MethodNotAllowedError(method, path, allowed), headers={"Allow": allowed})
    return error_response(UnhandledHTTPError(error.status_code, str(error.detail)), headers=error.headers)


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
