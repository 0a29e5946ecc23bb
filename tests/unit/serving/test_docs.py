"""OpenAPI and the docs page behind every way the function is reached."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from local.lambda_runtime import LambdaContext
from tests.events import EVENT_BUILDERS, response_json

# (event shape, stage, the prefix the client's URLs carry)
MOUNTS = [
    ("http-api", None, ""),
    ("http-api", "prod", "/prod"),
    ("rest-api", "Prod", "/Prod"),
    ("rest-api", "v1", "/v1"),
    ("function-url", None, ""),
]


def get(app_module: ModuleType, context: LambdaContext, shape: str, stage: str | None, path: str) -> dict[str, Any]:
    response: dict[str, Any] = app_module.handler(
        EVENT_BUILDERS[shape](method="GET", path=path, body=None, stage=stage), context
    )
    return response


@pytest.mark.parametrize(("shape", "stage", "prefix"), MOUNTS)
def test_docs_page_loads_openapi_from_the_stage(
    shape: str, stage: str | None, prefix: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    response = get(app_module, lambda_context, shape, stage, "/docs")

    assert response["statusCode"] == 200
    assert response["headers"]["content-type"].startswith("text/html")
    assert f"url: '{prefix}/openapi.json'" in response["body"]


@pytest.mark.parametrize(("shape", "stage", "prefix"), MOUNTS)
def test_openapi_names_the_stage_as_server(
    shape: str, stage: str | None, prefix: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    schema = response_json(get(app_module, lambda_context, shape, stage, "/openapi.json"))

    assert schema["servers"] == [{"url": prefix or "/"}]
    assert {"/", "/model", "/predict"} <= set(schema["paths"])
    assert "/docs" not in schema["paths"]


@pytest.mark.parametrize(("shape", "stage", "prefix"), MOUNTS)
def test_predict_works_behind_every_stage(
    shape: str, stage: str | None, prefix: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    response = app_module.handler(EVENT_BUILDERS[shape](stage=stage), lambda_context)

    assert response["body"] == '{"prediction":1}'


def test_on_the_default_stage_no_path_is_taken_for_a_stage(
    app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    # Named stages, where the stage guard is reached, are in tests/unit/serving/test_middleware.py.
    response = get(app_module, lambda_context, "http-api", None, "/prod/predict")

    assert response["statusCode"] == 404


def test_predict_schema_documents_the_three_bodies_with_the_models_example(
    app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    schema = response_json(get(app_module, lambda_context, "http-api", None, "/openapi.json"))

    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    shapes = body["schema"]["oneOf"]
    assert [sorted(shape["properties"]) for shape in shapes] == [
        ["features"],
        ["instances"],
        sorted(["sepal_length", "sepal_width", "petal_length", "petal_width"]),
    ]
    # models/iris.toml's example row and feature names.
    example = [6.1, 2.8, 4.7, 1.2]
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert body["examples"]["features"]["value"] == {"features": example}
    assert body["examples"]["named"]["value"] == dict(zip(names, example, strict=True))
    parameters = schema["paths"]["/predict"]["post"]["parameters"]
    assert [p["name"] for p in parameters] == ["probabilities"]


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in references(item)]
    return []


def test_every_reference_in_the_openapi_document_resolves(
    app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    schema = response_json(get(app_module, lambda_context, "http-api", None, "/openapi.json"))

    refs = references(schema)

    assert refs
    assert {ref.rpartition("/")[0] for ref in refs} == {"#/components/schemas"}
    assert {ref.rpartition("/")[2] for ref in refs} <= set(schema["components"]["schemas"])


ERROR_STATUSES = {
    ("/predict", "post"): ["400", "413", "415", "422", "500"],
    ("/v2/models/{name}/infer", "post"): ["400", "404", "415"],
}


@pytest.mark.parametrize(("path", "method"), list(ERROR_STATUSES))
def test_error_responses_are_documented_as_error_bodies(
    path: str, method: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    document = response_json(get(app_module, lambda_context, "http-api", None, "/openapi.json"))
    responses = document["paths"][path][method]["responses"]
    bad = app_module.handler(EVENT_BUILDERS["http-api"](raw_body="{"), lambda_context)

    for status in ERROR_STATUSES[(path, method)]:
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
        assert responses[status]["description"]
    assert document["components"]["schemas"]["ErrorResponse"] == {
        "properties": {"error": {"type": "string", "title": "Error"}},
        "required": ["error"],
        "title": "ErrorResponse",
        "type": "object",
    }
    assert list(response_json(bad)) == ["error"]
