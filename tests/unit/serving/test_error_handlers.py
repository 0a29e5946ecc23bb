"""The one registered handler: every error the routes raise, and the framework's own, answered as
{"error": message} with the error's status; rejected input counted, unknown routes not."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from fastapi import FastAPI
from mangum import Mangum

from local.lambda_runtime import LambdaContext
from serving.error_handlers import VALIDATION_STATUSES, register_error_handlers
from serving.errors import (
    MAX_MESSAGE_CHARS,
    BadRequestError,
    InvalidRequestError,
    ModelLoadError,
    NoProbabilitiesError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceError,
    UnsupportedMediaTypeError,
)
from serving.events import MalformedEventError
from serving.observability import metrics
from tests.events import http_api_event, response_json

Client = Callable[..., dict[str, Any]]

RAISED: dict[str, ServiceError] = {
    "bad-request": BadRequestError("request body is empty"),
    "not-found": NotFoundError('model "x" is not served here'),
    "too-large": PayloadTooLargeError("request body is over the limit"),
    "media-type": UnsupportedMediaTypeError('content-type "text/csv" is not accepted'),
    "invalid": InvalidRequestError("features: expected 4 numbers, got 3"),
    "no-probabilities": NoProbabilitiesError("diabetes"),
    "teapot": ServiceError("a framework error passed on", status_code=418),
    "long": InvalidRequestError("x" * (MAX_MESSAGE_CHARS * 2)),
}


def raising(error: ServiceError) -> Callable[[], Coroutine[Any, Any, None]]:
    async def route() -> None:
        raise error

    return route


@pytest.fixture(scope="module")
def client() -> Client:
    """A request, as an HTTP API event, to an app whose routes raise the errors above."""
    app = FastAPI()
    for path, error in RAISED.items():
        app.add_api_route(f"/{path}", raising(error), methods=["GET"])
    register_error_handlers(app)
    handler = Mangum(app, lifespan="off")
    return lambda method, path: handler(http_api_event(method=method, path=path), LambdaContext())


def validation_errors() -> float:
    recorded = metrics.metric_set.get("ValidationErrors", {"Value": []})["Value"]
    return float(sum(recorded))


@pytest.mark.parametrize("path", sorted(RAISED))
def test_a_raised_error_is_answered_with_its_status_and_message(client: Client, path: str) -> None:
    error = RAISED[path]
    before = validation_errors()

    response = client("GET", f"/{path}")

    assert response["statusCode"] == error.status_code
    assert response_json(response) == {"error": error.message}
    assert len(error.message) <= MAX_MESSAGE_CHARS
    assert validation_errors() - before == (1 if error.status_code in VALIDATION_STATUSES else 0)


def test_each_class_carries_the_status_it_is_answered_with() -> None:
    statuses = {
        BadRequestError: 400,
        MalformedEventError: 400,
        NotFoundError: 404,
        PayloadTooLargeError: 413,
        UnsupportedMediaTypeError: 415,
        InvalidRequestError: 422,
        NoProbabilitiesError: 422,
        ModelLoadError: 500,
        ServiceError: 500,
    }

    assert {error_type: error_type.status_code for error_type in statuses} == statuses


def test_the_frameworks_own_errors_are_answered_in_the_same_shape(client: Client) -> None:
    unknown = client("GET", "/nowhere")
    wrong_method = client("POST", "/invalid")

    assert unknown["statusCode"] == 404
    assert response_json(unknown)["error"].startswith("no route for GET /nowhere; available: ")
    assert wrong_method["statusCode"] == 405
    assert response_json(wrong_method) == {"error": "method POST is not allowed on /invalid; allowed: GET"}
    assert wrong_method["headers"]["allow"] == "GET"
