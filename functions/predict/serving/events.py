"""Which Lambda events the function serves, checked before Mangum reads them.

The function serves HTTP requests in the two payload formats API Gateway and Function URLs
send: 1.0 (REST API; `httpMethod`, `path`, `multiValueHeaders`) and 2.0 (HTTP API and
Function URL; `version: "2.0"`, `requestContext.http`). Mangum trusts every field it reads,
so a hand-made or mistyped event would fail inside it with a raw TypeError, KeyError or
ValueError. The check below declares exactly the fields Mangum and the app read, with their
types, and:

- an HTTP event that breaks it is answered 400 `{"error": ...}`, in its own payload format;
- anything else (SQS, S3, SNS, EventBridge, DynamoDB stream records, `{}`, `[]`, `null`, a
  string or a number: a direct invoke or a misconfigured trigger) raises UnsupportedEventError,
  logged once with the event's top-level keys but none of its contents.

Every string must be encodable as UTF-8 (Mangum encodes headers, query and body; a lone
surrogate from a JSON `"\\ud800"` escape would fail there), a base64 body must be valid base64,
and the host and x-forwarded-port headers must give Mangum a numeric port.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from pydantic import AfterValidator, ConfigDict, TypeAdapter, ValidationError, with_config

from serving.errors import BadRequestError, shorten
from serving.observability import logger, record_rejection

PayloadFormat = Literal["1.0", "2.0"]
Handler = Callable[[Any, Any], dict[str, Any]]

# Keys only an HTTP event has: an event with one of them but neither format's marker
# (`version: "2.0"`, `httpMethod`) is a malformed HTTP event, answered in payload format 2.0.
HTTP_EVENT_KEYS = frozenset({"requestContext", "rawPath", "routeKey", "rawQueryString", "headers", "isBase64Encoded"})
# Mangum reads the port from the host header when it has a colon, else from x-forwarded-port, with int().
HOST = re.compile(r"[^:]*(:[0-9]{1,5})?")
PORT = re.compile(r"[0-9]{1,5}")
JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
SERVED_EVENTS = (
    "API Gateway REST API (payload format 1.0), HTTP API (payload format 2.0) and Lambda Function URL events"
)
MAX_EVENT_KEYS_SHOWN = 10


class MalformedEventError(BadRequestError):
    """An HTTP event without a field the function reads, or with one of the wrong type or an unreadable
    value (a direct invoke or a hand-made test event: API Gateway does not send these). Answered 400
    in the event's own payload format, before Mangum sees it."""

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


def _utf8(text: str) -> str:
    # isascii() is O(1) on CPython's compact strings: the common case costs nothing.
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as error:
            raise ValueError("contains a character that cannot be encoded as UTF-8 (a lone surrogate)") from error
    return text


Text = Annotated[str, AfterValidator(_utf8)]
# Strict: nothing is coerced ("1" is not a bool, 1 is not a string).
STRICT = ConfigDict(strict=True)


@with_config(STRICT)
class _Http(TypedDict):
    method: Text
    path: Text
    sourceIp: Text


@with_config(STRICT)
class _ContextV2(TypedDict):
    http: _Http
    stage: NotRequired[Text]


@with_config(STRICT)
class _EventV2(TypedDict):
    version: Literal["2.0"]
    requestContext: _ContextV2
    rawPath: NotRequired[Text]
    rawQueryString: NotRequired[Text]
    headers: NotRequired[dict[Text, Text]]
    cookies: NotRequired[list[Text]]
    body: NotRequired[Text | None]
    isBase64Encoded: NotRequired[bool]


@with_config(STRICT)
class _Identity(TypedDict):
    sourceIp: NotRequired[Text | None]


@with_config(STRICT)
class _ContextV1(TypedDict):
    stage: NotRequired[Text]
    path: NotRequired[Text]
    identity: NotRequired[_Identity]


@with_config(STRICT)
class _EventV1(TypedDict):
    version: NotRequired[Literal["1.0"]]
    resource: Text
    path: Text
    httpMethod: Text
    requestContext: _ContextV1
    headers: NotRequired[dict[Text, Text] | None]
    multiValueHeaders: NotRequired[dict[Text, list[Text]] | None]
    queryStringParameters: NotRequired[dict[Text, Text] | None]
    multiValueQueryStringParameters: NotRequired[dict[Text, list[Text]] | None]
    body: NotRequired[Text | None]
    isBase64Encoded: NotRequired[bool]


SHAPES: dict[PayloadFormat, TypeAdapter[Any]] = {"1.0": TypeAdapter(_EventV1), "2.0": TypeAdapter(_EventV2)}


def payload_format(event: object) -> PayloadFormat | None:
    """The payload format an HTTP event claims to be in, or None for an event that is not an HTTP request."""
    if not isinstance(event, dict):
        return None
    context = event.get("requestContext")
    # A load balancer's request or an API Gateway authorizer's call: not triggers this function is deployed with.
    if (isinstance(context, dict) and "elb" in context) or "methodArn" in event:
        return None
    if event.get("version") == "2.0":
        return "2.0"
    if "httpMethod" in event:
        return "1.0"
    return "2.0" if HTTP_EVENT_KEYS.intersection(event) else None


def _effective_headers(event: Mapping[str, Any], payload: PayloadFormat) -> dict[str, str]:
    """The headers as Mangum combines them (lower-cased names; 1.0's multi-value lists joined)."""
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    if payload == "1.0":
        multi = event.get("multiValueHeaders") or {}
        headers.update({name.lower(): ", ".join(values) for name, values in multi.items()})
    return headers


def _value_problems(event: Mapping[str, Any], payload: PayloadFormat) -> list[dict[str, Any]]:
    """What the types allow but Mangum cannot read: a bad base64 body, a host or port it cannot parse."""
    problems: list[dict[str, Any]] = []
    body = event.get("body")
    if event.get("isBase64Encoded") and body:
        try:
            base64.b64decode(body, validate=True)
        except binascii.Error as error:
            problems.append({"loc": ("body",), "msg": f"isBase64Encoded is true but the body is not base64 ({error})"})
    headers = _effective_headers(event, payload)
    host = headers.get("host", "")
    if not HOST.fullmatch(host):
        problems.append({"loc": ("headers", "host"), "msg": "expected a host name with an optional numeric port"})
    elif ":" not in host and not PORT.fullmatch(headers.get("x-forwarded-port", "443")):
        problems.append({"loc": ("headers", "x-forwarded-port"), "msg": "expected a port number"})
    return problems


def check_event(event: object) -> None:
    """Raise MalformedEventError for an HTTP event Mangum cannot read, UnsupportedEventError
    (logged) for an event that is not an HTTP request; return for an event the app can serve."""
    payload = payload_format(event)
    if payload is None:
        keys = sorted(str(key) for key in event) if isinstance(event, dict) else []
        json_type = "null" if event is None else JSON_TYPES.get(type(event), type(event).__name__)
        error = UnsupportedEventError(json_type, keys)
        logger.error(
            "unsupported event", extra={"event_type": json_type, "event_keys": error.keys_shown, "error": str(error)}
        )
        raise error
    assert isinstance(event, dict)
    try:
        SHAPES[payload].validate_python(event)
    except ValidationError as error:
        raise MalformedEventError(payload, error.errors(include_url=False, include_input=False)) from error
    problems = _value_problems(event, payload)
    if problems:
        raise MalformedEventError(payload, problems)


def error_response(error: MalformedEventError) -> dict[str, Any]:
    """A 400 `{"error": ...}` in the event's own payload format, as Mangum would have shaped it."""
    record_rejection(error.status_code, error.message)
    headers = {"content-type": "application/json"}
    response: dict[str, Any] = {
        "statusCode": error.status_code,
        "headers": headers,
        "body": json.dumps({"error": error.message}, separators=(",", ":")),
        "isBase64Encoded": False,
    }
    if error.payload_format == "1.0":
        response["multiValueHeaders"] = {}
    return response


def served_events_only(handler: Handler) -> Handler:
    """`handler` for the HTTP events it can read; a 400 for malformed ones; UnsupportedEventError otherwise."""

    def checked(event: Any, context: Any) -> dict[str, Any]:
        try:
            check_event(event)
        except MalformedEventError as error:
            return error_response(error)
        return handler(event, context)

    return checked
