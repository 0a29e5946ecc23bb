"""A clear answer for any event: events that are not HTTP requests raise the function's own
error (logged once, keys only), malformed HTTP events get a 400 in their own payload format,
and the warm environment keeps serving after each of them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from local.lambda_runtime import LambdaContext
from serving.events import UnsupportedEventError
from tests.events import EVENT_BUILDERS, http_api_event, response_json, rest_api_event
from tests.sam_events import NON_HTTP_SAMPLES, SAM_HTTP_SAMPLES, sam_sample
from tests.unit.conftest import LogRecords

SERVED = "serves API Gateway REST API (payload format 1.0), HTTP API (payload format 2.0) and Lambda Function URL"
JSON_VALUES: dict[str, Any] = {"empty-object": {}, "array": [], "null": None, "string": "hello", "number": 42}


def assert_still_serving(app_module: ModuleType, context: LambdaContext) -> None:
    assert app_module.handler(http_api_event(), context)["body"] == '{"prediction":1}'


def leaf_strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from leaf_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaf_strings(item)
    elif isinstance(value, str):
        yield value


def check_refused(event: Any, app_module: ModuleType, context: LambdaContext, log_records: LogRecords) -> None:
    with pytest.raises(UnsupportedEventError, match=re.escape(SERVED)) as raised:
        app_module.handler(event, context)

    [record] = [r for r in log_records() if r["message"] == "unsupported event"]
    keys = sorted(event) if isinstance(event, dict) else []
    assert record["level"] == "ERROR"
    assert record["event_keys"] == keys[:10]
    assert record["error"] == str(raised.value)
    # None of the event's values is logged (strings it shares with the Lambda context, like the region, aside).
    context_values = [str(getattr(context, name)) for name in dir(context) if not name.startswith("_")]
    line, known = json.dumps(record), keys + context_values
    assert not [text for text in leaf_strings(event) if len(text) > 6 and text in line and text not in str(known)]
    assert_still_serving(app_module, context)


@pytest.mark.parametrize(("service", "event_type"), NON_HTTP_SAMPLES)
def test_events_of_other_services_are_refused_with_the_served_shapes(
    service: str, event_type: str, app_module: ModuleType, lambda_context: LambdaContext, log_records: LogRecords
) -> None:
    check_refused(sam_sample(service, event_type), app_module, lambda_context, log_records)


@pytest.mark.parametrize("name", sorted(JSON_VALUES))
def test_bare_json_values_are_refused(
    name: str, app_module: ModuleType, lambda_context: LambdaContext, log_records: LogRecords
) -> None:
    check_refused(JSON_VALUES[name], app_module, lambda_context, log_records)


def test_the_refusal_names_what_it_received(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    many_keys = {f"key-{index:02}": index for index in range(25)}

    with pytest.raises(UnsupportedEventError) as raised:
        app_module.handler(many_keys, lambda_context)

    assert str(raised.value).endswith(
        "only; it was invoked with a JSON object with keys " + ", ".join(sorted(many_keys)[:10]) + " and 15 more"
    )


@pytest.mark.parametrize(("service", "event_type"), sorted(SAM_HTTP_SAMPLES))
def test_sam_http_samples_are_served(
    service: str, event_type: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    response = app_module.handler(sam_sample(service, event_type), lambda_context)

    assert response["statusCode"] == 404
    assert response_json(response)["error"].startswith("no route for")


def set_header(event: dict[str, Any], name: str, value: Any) -> None:
    """Set a header wherever the event's format carries it (1.0: both headers maps)."""
    for key in [key for key in event["headers"] if key.lower() == name]:
        del event["headers"][key]
    event["headers"][name] = value
    if "multiValueHeaders" in event:
        event["multiValueHeaders"] = {key: [item] for key, item in event["headers"].items()}


def drop(*path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(event: dict[str, Any]) -> None:
        target = event
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def put(value: Any, *path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(event: dict[str, Any]) -> None:
        target = event
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def header(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda event: set_header(event, name, value)


def invalid_base64(event: dict[str, Any]) -> None:
    event["isBase64Encoded"] = True
    event["body"] = "not base64!"


# (mutation, where the message says the problem is); each applies to every shape unless listed.
EVERY_SHAPE: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "invalid-base64": (invalid_base64, "body: isBase64Encoded is true but the body is not base64"),
    "body-lone-surrogate": (put('{"features": "\ud800"}', "body"), "body: Value error, contains a character"),
    "body-number": (put(7, "body"), "body"),
    "is-base64-string": (put("true", "isBase64Encoded"), "isBase64Encoded: Input should be a valid boolean"),
    "forwarded-port-word": (header("x-forwarded-port", "https"), "headers.x-forwarded-port: expected a port"),
    "host-ipv6": (header("host", "[::1]:443"), "headers.host: expected a host name"),
    "host-port-word": (header("host", "example.com:https"), "headers.host: expected a host name"),
    "host-empty-port": (header("host", "example.com:"), "headers.host: expected a host name"),
    "header-surrogate": (header("user-agent", "\udcff"), "contains a character that cannot be encoded"),
    "header-number": (header("accept", 1), "Input should be a valid string"),
    "request-context-missing": (drop("requestContext"), "requestContext: Field required"),
    "request-context-null": (put(None, "requestContext"), "requestContext: Input should be a valid dictionary"),
}
BY_FORMAT: dict[str, dict[str, tuple[Callable[[dict[str, Any]], None], str]]] = {
    "2.0": {
        "headers-null": (put(None, "headers"), "headers: Input should be a valid dictionary"),
        "http-missing": (drop("requestContext", "http"), "requestContext.http: Field required"),
        "method-missing": (drop("requestContext", "http", "method"), "requestContext.http.method: Field required"),
        "source-ip-number": (put(1, "requestContext", "http", "sourceIp"), "sourceIp: Input should be a valid string"),
        "query-number": (put(1, "rawQueryString"), "rawQueryString: Input should be a valid string"),
        "cookies-string": (put("a=b", "cookies"), "cookies: Input should be a valid list"),
        "version-number": (put(2, "version"), "version: Input should be '2.0'"),
    },
    "1.0": {
        "method-number": (put(1, "httpMethod"), "httpMethod: Input should be a valid string"),
        "path-missing": (drop("path"), "path: Field required"),
        "resource-missing": (drop("resource"), "resource: Field required"),
        "identity-null": (put(None, "requestContext", "identity"), "identity: Input should be a valid dictionary"),
        "multi-value-header-string": (put({"Accept": "*/*"}, "multiValueHeaders"), "Input should be a valid list"),
        "query-list": (put(["a"], "queryStringParameters"), "queryStringParameters: Input should be a valid dict"),
    },
}
CASES = [
    (shape, name)
    for shape in sorted(EVENT_BUILDERS)
    for name in [*EVERY_SHAPE, *BY_FORMAT["1.0" if shape == "rest-api" else "2.0"]]
]


@pytest.mark.parametrize(("shape", "name"), CASES)
def test_malformed_http_events_get_a_400_in_their_format(
    shape: str, name: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    payload = "1.0" if shape == "rest-api" else "2.0"
    mutate, where = {**EVERY_SHAPE, **BY_FORMAT[payload]}[name]
    good = app_module.handler(EVENT_BUILDERS[shape](), lambda_context)
    event = EVENT_BUILDERS[shape]()
    mutate(event)

    response = app_module.handler(event, lambda_context)

    assert response["statusCode"] == 400
    assert set(response) == set(good)
    assert response["headers"]["content-type"] == "application/json"
    [message] = response_json(response).values()
    assert message.startswith(f"malformed HTTP event (payload format {payload}): ")
    assert where in message
    assert f"this function {SERVED} events" in message
    assert len(message) < 500
    assert_still_serving(app_module, lambda_context)


def test_rest_api_sends_null_headers_without_any(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    event = rest_api_event(method="GET", path="/", body=None, content_type=None)
    event["headers"] = event["multiValueHeaders"] = None

    assert app_module.handler(event, lambda_context)["statusCode"] == 200
