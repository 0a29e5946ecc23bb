"""The Docker-free start-api: HTTP requests become HTTP API events and responses become HTTP."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import HTTPServer
from types import ModuleType

import pytest

from local.lambda_local import http_api_event, make_request_handler, response_body

SEED_BODY = b'{"features": [6.1, 2.8, 4.7, 1.2]}'


def test_request_becomes_an_http_api_event() -> None:
    event = http_api_event(
        "POST",
        "/predict?verbose=1",
        {"Content-Type": "application/json", "Host": "127.0.0.1:3000", "Cookie": "a=1; b=2"},
        SEED_BODY,
        "127.0.0.1",
    )

    assert event["version"] == "2.0"
    assert event["rawPath"] == "/predict"
    assert event["rawQueryString"] == "verbose=1"
    assert event["headers"] == {"content-type": "application/json", "host": "127.0.0.1:3000"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["stage"] == "$default"
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == SEED_BODY


def test_request_without_body_has_no_body() -> None:
    event = http_api_event("GET", "/", {}, b"", "127.0.0.1")

    assert "body" not in event
    assert event["isBase64Encoded"] is False


def test_response_body_is_decoded() -> None:
    assert response_body({"body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}) == b"\x00\x01"
    assert response_body({"body": '{"a": 1}', "isBase64Encoded": False}) == b'{"a": 1}'


@pytest.fixture
def local_api(app_module: ModuleType) -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), make_request_handler(app_module.handler))
    yield server
    server.server_close()


def serve_one(server: HTTPServer, request: urllib.request.Request) -> tuple[int, str, dict[str, object]]:
    """Send `request` from a client thread while the server answers it on this (the main) thread,
    as Lambda's runtime does: Mangum runs the app on the main thread's event loop."""
    answer: list[tuple[int, str, dict[str, object]]] = []

    def client() -> None:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answer.append((response.status, response.headers["content-type"], json.load(response)))
        except urllib.error.HTTPError as error:
            answer.append((error.code, error.headers["content-type"], json.load(error)))

    thread = threading.Thread(target=client)
    thread.start()
    server.handle_request()
    thread.join(timeout=10)
    return answer[0]


def url(server: HTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.server_port}{path}"


def test_seed_curl_request_over_http(local_api: HTTPServer) -> None:
    request = urllib.request.Request(
        url(local_api, "/predict"), data=SEED_BODY, headers={"Content-Type": "application/json"}, method="POST"
    )

    assert serve_one(local_api, request) == (200, "application/json", {"prediction": 1})


def test_errors_keep_their_status_over_http(local_api: HTTPServer) -> None:
    request = urllib.request.Request(url(local_api, "/predict"))

    assert serve_one(local_api, request) == (
        405,
        "application/json",
        {"error": "method GET is not allowed on /predict; allowed: POST"},
    )
