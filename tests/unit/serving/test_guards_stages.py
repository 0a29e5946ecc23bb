"""The stage guard where it is reached: named stages, and custom domains, where API Gateway names a
stage in the event that the client's URL does not carry (tests/unit/test_docs.py covers the
execute-api and Function URL mounts)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from local.lambda_local import LambdaContext
from tests.events import EVENT_BUILDERS, custom_domain_event, http_api_event, response_json


def event_at(shape: str, stage: str, path: str, *, custom_domain: bool, method: str = "POST") -> dict[str, Any]:
    """An event for a client calling `path` on stage `stage`, through the API's execute-api domain
    (the stage is the URL's first segment) or through a custom domain mapped to the stage at its
    root (the URL has no stage segment, the event still names the stage)."""
    body = None if method == "GET" else {"features": [6.1, 2.8, 4.7, 1.2]}
    if custom_domain:
        return custom_domain_event(shape, stage, method=method, path=path, body=body)
    return EVENT_BUILDERS[shape](method=method, path=path, body=body, stage=stage)


# (event shape, the stage the event names) behind a custom domain: the client's URLs carry no stage.
CUSTOM_DOMAIN_MOUNTS = [("http-api", "$default"), ("http-api", "prod"), ("rest-api", "Prod"), ("rest-api", "v1")]


@pytest.mark.parametrize(("shape", "stage"), CUSTOM_DOMAIN_MOUNTS)
def test_behind_a_custom_domain_no_stage_prefix_is_added(
    shape: str, stage: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    def get(path: str) -> dict[str, Any]:
        response: dict[str, Any] = app_module.handler(
            event_at(shape, stage, path, custom_domain=True, method="GET"), lambda_context
        )
        return response

    predicted = app_module.handler(event_at(shape, stage, "/predict", custom_domain=True), lambda_context)
    docs = get("/docs")
    schema = response_json(get("/openapi.json"))

    assert predicted["body"] == '{"prediction":1}'
    assert "url: '/openapi.json'" in docs["body"]
    assert schema["servers"] == [{"url": "/"}]


@pytest.mark.parametrize(
    ("shape", "stage", "custom_domain", "called"),
    [
        # The stage's name as the start of a longer first segment.
        ("http-api", "prod", True, "/production/predict"),
        ("rest-api", "Prod", True, "/Production/predict"),
        # The stage's name again after the stage: stripped once only.
        ("http-api", "prod", False, "/prod/predict"),
        ("rest-api", "Prod", False, "/Prod/predict"),
    ],
)
def test_a_path_that_only_looks_like_a_stage_is_not_stripped_on_a_named_stage(
    shape: str, stage: str, custom_domain: bool, called: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    event = event_at(shape, stage, called, custom_domain=custom_domain)

    response = app_module.handler(event, lambda_context)

    # The 404 names the path the client called, stage segment included when the URL has one.
    client_path = called if custom_domain else f"/{stage}{called}"
    assert response["statusCode"] == 404
    assert response_json(response)["error"].startswith(f"no route for POST {client_path}; available: ")


def test_the_default_stage_has_no_url_segment_to_strip(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    """An HTTP API's `$default` stage is served at the API's root: a client that calls
    /$default/predict asks for a path the API does not have (a named stage would be stripped)."""
    called = http_api_event(method="POST", path="/predict", body={"features": [6.1, 2.8, 4.7, 1.2]}, stage="$default")
    at_root = http_api_event(method="POST", path="/predict", body={"features": [6.1, 2.8, 4.7, 1.2]})
    at_root["requestContext"]["stage"] = "$default"

    response = app_module.handler(called, lambda_context)

    assert called["rawPath"] == "/$default/predict"
    assert response["statusCode"] == 404
    assert response_json(response)["error"].startswith("no route for POST /$default/predict; available: ")
    assert app_module.handler(at_root, lambda_context)["body"] == '{"prediction":1}'
