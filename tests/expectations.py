"""What the handler answers to each file in events/: used in-process and against the built package."""

from __future__ import annotations

from typing import Any, NamedTuple


class Expected(NamedTuple):
    status: int
    body: dict[str, Any] | None = None
    error_contains: str | None = None


STATUS_KEYS = {"status", "message", "model"}

EVENT_EXPECTATIONS = {
    "http-api-get-root.json": Expected(200),
    "rest-api-get-root.json": Expected(200),
    "function-url-get-root.json": Expected(200),
    "http-api-predict.json": Expected(200, {"prediction": 1}),
    "http-api-predict-base64-no-content-type.json": Expected(200, {"prediction": 1}),
    "rest-api-predict.json": Expected(200, {"prediction": 1}),
    "function-url-predict.json": Expected(200, {"prediction": 1}),
    "http-api-predict-wrong-count.json": Expected(422, error_contains="expected 4 numbers"),
    "http-api-predict-string-feature.json": Expected(422, error_contains="features[1]: Input should be a valid number"),
    "http-api-predict-malformed-json.json": Expected(400, error_contains="not valid JSON"),
    "rest-api-predict-nan.json": Expected(422, error_contains="features[1]: Input should be a finite number"),
    "function-url-predict-text-plain.json": Expected(415, error_contains="'text/plain' is not accepted"),
    "http-api-not-found.json": Expected(404, error_contains="no route for GET /nope"),
    "http-api-method-not-allowed.json": Expected(405, error_contains="allowed: POST"),
}


def check_response(name: str, status: int, body: dict[str, Any], model_version: str) -> None:
    """Assert that `body` (already decoded) is what `name` should produce."""
    expected = EVENT_EXPECTATIONS[name]
    assert status == expected.status, (name, body)
    if expected.body is not None:
        assert body == expected.body
    elif expected.error_contains is not None:
        assert set(body) == {"error"}
        assert expected.error_contains in body["error"]
    else:
        assert set(body) == STATUS_KEYS
        assert body["status"] == "ok"
        assert body["model"]["version"] == model_version
