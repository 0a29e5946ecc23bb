"""What the handler answers to each file in events/: used in-process and against the built package."""

from __future__ import annotations

import json
from typing import Any, NamedTuple


class Expected(NamedTuple):
    status: int
    body: dict[str, Any] | None = None
    error_contains: str | None = None
    contains: str | None = None


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
    "function-url-predict-text-plain.json": Expected(415, error_contains='"text/plain" is not accepted'),
    "http-api-not-found.json": Expected(404, error_contains="no route for GET /nope"),
    "http-api-method-not-allowed.json": Expected(405, error_contains="allowed: POST"),
    "http-api-get-model.json": Expected(200, contains='"features":[{"name":"sepal_length","type":"number"'),
    "http-api-predict-batch.json": Expected(200, {"predictions": [1, 0]}),
    "http-api-predict-named.json": Expected(200, {"prediction": 1}),
    "http-api-predict-probabilities.json": Expected(
        200, contains='{"prediction":1,"class_name":"versicolor","probabilities":{"setosa":'
    ),
    "http-api-predict-bad-instance.json": Expected(422, error_contains="instances[1]: expected 4 numbers"),
    "http-api-named-stage-predict.json": Expected(200, {"prediction": 1}),
    "http-api-named-stage-docs.json": Expected(200, contains="url: '/prod/openapi.json'"),
    "http-api-get-docs.json": Expected(200, contains="url: '/openapi.json'"),
    "rest-api-get-docs.json": Expected(200, contains="url: '/Prod/openapi.json'"),
    "rest-api-get-openapi.json": Expected(200, contains='"servers":[{"url":"/Prod"}]'),
    "function-url-get-docs.json": Expected(200, contains="url: '/openapi.json'"),
    "http-api-v2-health-ready.json": Expected(200, {"ready": True}),
    "http-api-v2-model-metadata.json": Expected(
        200, contains='"inputs":[{"name":"input-0","datatype":"FP64","shape":[-1,4]}]'
    ),
    "http-api-v2-infer.json": Expected(
        200, contains='"id":"42","outputs":[{"name":"predict","datatype":"INT64","shape":[2],"data":[1,1]},'
    ),
    "function-url-v2-infer-no-content-type.json": Expected(
        200, contains='"id":"7","outputs":[{"name":"predict","datatype":"INT64","shape":[1],"data":[1]}]'
    ),
    "http-api-v2-infer-unknown-model.json": Expected(404, error_contains='model "resnet" is not served here'),
    "rest-api-v2-infer-bad-datatype.json": Expected(400, error_contains='inputs[0].datatype "BYTES" is not accepted'),
}


def check_response(name: str, status: int, text: str, model_version: str) -> None:
    """Assert that the response body `text` (already decoded) is what `name` should produce."""
    expected = EVENT_EXPECTATIONS[name]
    assert status == expected.status, (name, text)
    if expected.contains is not None:
        assert expected.contains in text, (name, text)
        return
    body = json.loads(text)
    if expected.body is not None:
        assert body == expected.body
    elif expected.error_contains is not None:
        assert set(body) == {"error"}
        assert expected.error_contains in body["error"]
    else:
        assert set(body) == STATUS_KEYS
        assert body["status"] == "ok"
        assert body["model"]["version"] == model_version
