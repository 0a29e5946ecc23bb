"""What the handler answers to each file in events/, stated per file: used in-process and
against the built package. Every entry names its status, its content type and the one fact its
body must show; nothing is inferred from a file's name."""

from __future__ import annotations

import json
from typing import Any, Literal, NamedTuple

JSON = "application/json"
HTML = "text/html; charset=utf-8"


class Expected(NamedTuple):
    status: int
    content_type: str
    check: Literal["equals", "error contains", "contains", "running"]
    value: Any


def answers(body: dict[str, Any]) -> Expected:
    """200 with exactly this JSON body."""
    return Expected(200, JSON, "equals", body)


def rejects(status: int, text: str) -> Expected:
    """`status` with a body of only {"error": ...}, whose message contains `text`."""
    return Expected(status, JSON, "error contains", text)


def json_containing(text: str) -> Expected:
    """200 with a JSON body whose compact text contains `text`."""
    return Expected(200, JSON, "contains", text)


def page_containing(text: str) -> Expected:
    """200 with an HTML page containing `text`."""
    return Expected(200, HTML, "contains", text)


# The status route's body: exactly these keys, "ok", and the version of the model served.
RUNNING = Expected(200, JSON, "running", {"status", "message", "model"})


EVENT_EXPECTATIONS = {
    "http-api-get-root.json": RUNNING,
    "rest-api-get-root.json": RUNNING,
    "function-url-get-root.json": RUNNING,
    "http-api-predict.json": answers({"prediction": 1}),
    "http-api-predict-base64-no-content-type.json": answers({"prediction": 1}),
    "rest-api-predict.json": answers({"prediction": 1}),
    "function-url-predict.json": answers({"prediction": 1}),
    "http-api-predict-wrong-count.json": rejects(422, "expected 4 numbers"),
    "http-api-predict-string-feature.json": rejects(422, "features[1]: Input should be a valid number"),
    "http-api-predict-malformed-json.json": rejects(400, "not valid JSON"),
    "rest-api-predict-nan.json": rejects(422, "features[1]: Input should be a finite number"),
    "function-url-predict-text-plain.json": rejects(415, '"text/plain" is not accepted'),
    "http-api-not-found.json": rejects(404, "no route for GET /nope"),
    "http-api-method-not-allowed.json": rejects(405, "allowed: POST"),
    "http-api-get-model.json": json_containing('"features":[{"name":"sepal_length","type":"number"'),
    "http-api-predict-batch.json": answers({"predictions": [1, 0]}),
    "http-api-predict-named.json": answers({"prediction": 1}),
    "http-api-predict-probabilities.json": json_containing(
        '{"prediction":1,"class_name":"versicolor","probabilities":{"setosa":'
    ),
    "http-api-predict-bad-instance.json": rejects(422, "instances[1]: expected 4 numbers"),
    "http-api-named-stage-predict.json": answers({"prediction": 1}),
    "http-api-named-stage-docs.json": page_containing("url: '/prod/openapi.json'"),
    "http-api-get-docs.json": page_containing("url: '/openapi.json'"),
    "rest-api-get-docs.json": page_containing("url: '/Prod/openapi.json'"),
    "rest-api-get-openapi.json": json_containing('"servers":[{"url":"/Prod"}]'),
    "function-url-get-docs.json": page_containing("url: '/openapi.json'"),
    "http-api-v2-health-ready.json": answers({"ready": True}),
    "http-api-v2-model-metadata.json": json_containing(
        '"inputs":[{"name":"input-0","datatype":"FP64","shape":[-1,4]}]'
    ),
    "http-api-v2-infer.json": json_containing(
        '"id":"42","outputs":[{"name":"predict","datatype":"INT64","shape":[2],"data":[1,1]},'
    ),
    "function-url-v2-infer-no-content-type.json": json_containing(
        '"id":"7","outputs":[{"name":"predict","datatype":"INT64","shape":[1],"data":[1]}]'
    ),
    "http-api-v2-infer-unknown-model.json": rejects(404, 'model "resnet" is not served here'),
    "rest-api-v2-infer-bad-datatype.json": rejects(400, 'inputs[0].datatype "BYTES" is not accepted'),
}


def check_response(name: str, status: int, content_type: str, text: str, model_version: str) -> None:
    """Assert that the response (body `text`, already decoded) is what `name` should produce."""
    expected = EVENT_EXPECTATIONS[name]
    assert (status, content_type) == (expected.status, expected.content_type), (name, text)
    if expected.check == "contains":
        assert expected.value in text, (name, text)
        return
    body = json.loads(text)
    if expected.check == "equals":
        assert body == expected.value, name
    elif expected.check == "error contains":
        assert set(body) == {"error"}, name
        assert expected.value in body["error"], (name, body)
    else:
        assert set(body) == expected.value, name
        assert body["status"] == "ok"
        assert body["model"]["version"] == model_version
