"""Bad input gets a 4xx naming what was wrong and what is accepted; nothing is coerced."""

from __future__ import annotations

from types import ModuleType

import pytest

from local.lambda_local import LambdaContext
from tests.events import http_api_event, response_json

ACCEPTED = (
    'expected {"features": [4 numbers]}, {"instances": [rows]} or {"sepal_length": number, '
    '"sepal_width": number, "petal_length": number, "petal_width": number}'
)
FEATURES = "(sepal_length, sepal_width, petal_length, petal_width)"


def invoke(app_module: ModuleType, context: LambdaContext, **event_args: object) -> tuple[int, str]:
    response = app_module.handler(http_api_event(**event_args), context)  # type: ignore[arg-type]
    body = response_json(response)
    assert set(body) == {"error"} or response["statusCode"] == 200
    return response["statusCode"], body.get("error", "")


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ([6.1, 2.8, 4.7], f"features: expected 4 numbers {FEATURES}, got 3"),
        ([6.1, 2.8, 4.7, 1.2, 0.5], f"features: expected 4 numbers {FEATURES}, got 5"),
        ([], f"features: expected 4 numbers {FEATURES}, got 0"),
        ([6.1, "2.8", 4.7, 1.2], 'features[1]: Input should be a valid number (got "2.8")'),
        (["6.1", "2.8", "4.7", "1.2"], 'features[0]: Input should be a valid number (got "6.1")'),
        ([6.1, True, 4.7, 1.2], "features[1]: Input should be a valid number (got true)"),
        ([6.1, 2.8, None, 1.2], "features[2]: Input should be a valid number (got null)"),
        ([6.1, [2.8], 4.7, 1.2], "features[1]: Input should be a valid number (got [2.8])"),
        ([6.1, {"v": 2.8}, 4.7, 1.2], "features[1]: Input should be a valid number"),
        ("6.1, 2.8, 4.7, 1.2", 'features: Input should be a valid list (got "6.1, 2.8, 4.7, 1.2")'),
        (None, "features: Input should be a valid list (got null)"),
        ([0.0] * 1001, "features: List should have at most 1000 items"),
    ],
)
def test_invalid_features_are_rejected(
    features: object, message: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    status, error = invoke(app_module, lambda_context, body={"features": features})

    assert status == 422
    assert message in error


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_numbers_are_rejected(literal: str, app_module: ModuleType, lambda_context: LambdaContext) -> None:
    status, error = invoke(app_module, lambda_context, raw_body=f'{{"features": [6.1, {literal}, 4.7, 1.2]}}')

    assert status == 422
    assert "features[1]: Input should be a finite number" in error
    assert ACCEPTED in error


def test_integer_too_large_for_a_float_is_rejected(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    status, error = invoke(app_module, lambda_context, raw_body='{"features": [6, 3, 5, ' + "9" * 400 + "]}")

    assert status == 422
    assert error.startswith("invalid request: features[3]:")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "invalid request: sepal_length: Field required; sepal_width: Field required; "),
        ({"feature": [6.1, 2.8, 4.7, 1.2]}, "; feature: Extra inputs are not permitted (got [6.1, 2.8, 4.7, 1.2])"),
        ({"features": [6.1, 2.8, 4.7, 1.2], "extra": 1}, "extra: Extra inputs are not permitted (got 1)"),
        ([6.1, 2.8, 4.7, 1.2], "request body must be a JSON object (got [6.1, 2.8, 4.7, 1.2])"),
        ("features", 'request body must be a JSON object (got "features")'),
    ],
)
def test_wrong_body_shape_is_rejected(
    body: object, message: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    status, error = invoke(app_module, lambda_context, body=body)

    assert status == 422
    assert message in error
    assert ACCEPTED in error


def test_empty_body_is_rejected(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    status, error = invoke(app_module, lambda_context, body=None)

    assert status == 400
    assert error == "request body is empty; send a JSON object (see /docs)"


@pytest.mark.parametrize("raw_body", ['{"features": [6.1, 2.8', "features=6.1,2.8,4.7,1.2", "{'features': [1]}"])
def test_malformed_json_is_400(raw_body: str, app_module: ModuleType, lambda_context: LambdaContext) -> None:
    status, error = invoke(app_module, lambda_context, raw_body=raw_body)

    assert status == 400
    assert error.startswith("request body is not valid JSON (")
    assert error.endswith("); send a JSON object")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_non_json_content_type_is_415(content_type: str, app_module: ModuleType, lambda_context: LambdaContext) -> None:
    status, error = invoke(app_module, lambda_context, content_type=content_type)

    assert status == 415
    assert error == (
        f'content-type "{content_type}" is not accepted; send a JSON body with content-type application/json'
    )


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/vnd.iris+json", None])
def test_json_content_types_are_accepted(
    content_type: str | None, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    assert invoke(app_module, lambda_context, content_type=content_type) == (200, "")


@pytest.mark.parametrize("value", [1e300, -1e39, 3.5e38])
def test_numbers_beyond_float32_are_rejected(
    value: float, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    status, error = invoke(app_module, lambda_context, body={"features": [6.1, 2.8, value, 1.2]})

    assert status == 422
    assert (
        f"features[2]: Input should be within ±3.4e38, the range the model compares features in (got {value})" in error
    )


@pytest.mark.parametrize("features", [[6, 3, 5, 2], [6.1, 2.8, 4.7, 1.2], [-3.4e38, 0, 3.4e38, 5e-324]])
def test_finite_json_numbers_are_accepted(
    features: list[float], app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    status, _ = invoke(app_module, lambda_context, body={"features": features})

    assert status == 200
