"""Classes of client input that used to reach a 5xx or disagree with the docs, each generated."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from local.lambda_local import LambdaContext
from serving.errors import MAX_LISTED_PROBLEMS, MAX_QUOTED_CHARS, describe_problems, quote, shorten
from tests.events import EVENT_BUILDERS, SEED_BODY, http_api_event, response_json, response_text

MODEL = "iris-random-forest"
INFER = f"/v2/models/{MODEL}/infer"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=50,
)


def call(app_module: ModuleType, context: LambdaContext, **event_args: Any) -> tuple[int, Any]:
    response = app_module.handler(http_api_event(**event_args), context)
    return response["statusCode"], response_json(response) if response.get("body") else None


def infer_body(data: list[Any], datatype: str, rows: int = 1) -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "shape": [rows, 4], "datatype": datatype, "data": data}]}


@given(value=json_values, limit=st.integers(8, 200))
def test_quoted_values_are_bounded(value: Any, limit: int) -> None:
    quoted = quote(value, limit)

    assert len(quoted) <= limit
    full = json.dumps(value)
    assert quoted == full if len(full) <= limit else quoted == full[: limit - 3] + "..."


@given(text=st.text(), limit=st.integers(8, 200))
def test_shortened_text_is_bounded_ascii(text: str, limit: int) -> None:
    shortened = shorten(text, limit)

    assert len(shortened) <= limit
    assert shortened.isascii()


def test_quoting_a_deep_or_huge_value_is_cheap_and_safe() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]

    assert quote(deep) == "[" * (MAX_QUOTED_CHARS - 3) + "..."
    assert quote(["x" * 6_000_000]) == '["' + "x" * (MAX_QUOTED_CHARS - 5) + "..."


@given(count=st.integers(0, 50))
def test_at_most_a_few_problems_are_listed(count: int) -> None:
    problems = [{"loc": (f"field{i}",), "msg": "Field required", "type": "missing"} for i in range(count)]

    described = describe_problems(problems)

    assert described.count("Field required") == min(count, MAX_LISTED_PROBLEMS)
    assert described.endswith(f"and {count - MAX_LISTED_PROBLEMS} more") == (count > MAX_LISTED_PROBLEMS)


media_types = st.builds(
    lambda kind, subtype, suffix, parameters: f"{kind}/{subtype}{suffix}{parameters}",
    st.sampled_from(["application", "text", "image", "multipart", "APPLICATION"]),
    st.sampled_from(["json", "x", "vnd.iris", "JSON", "plain"]),
    st.sampled_from(["", "+json", "+JSON", "+xml"]),
    st.sampled_from(["", "; charset=utf-8", ";", '; a="b"']),
)


@pytest.mark.parametrize("path", ["/predict", INFER])
def test_one_json_rule_for_every_post_route(path: str, app_module: ModuleType, lambda_context: LambdaContext) -> None:
    body = SEED_BODY if path == "/predict" else infer_body([6.1, 2.8, 4.7, 1.2], "FP64")

    @given(content_type=media_types)
    def follows_the_rule(content_type: str) -> None:
        kind, subtype = content_type.split(";")[0].lower().split("/")
        is_json = kind == "application" and (subtype == "json" or subtype.endswith("+json"))

        status, answer = call(app_module, lambda_context, path=path, body=body, content_type=content_type)

        assert status == (200 if is_json else 415), (content_type, answer)

    follows_the_rule()


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT64"])
def test_integers_beyond_the_range_are_400_for_every_datatype(
    datatype: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    limit = 2**53 if datatype == "INT64" else 3.4028234663852886e38

    @given(
        value=st.integers(min_value=int(limit) + 1, max_value=10**4000) | st.sampled_from([10**400, 2**1024]),
        sign=st.sampled_from([1, -1]),
        index=st.integers(0, 3),
    )
    def refused(value: int, sign: int, index: int) -> None:
        data = [6, 3, 5, 2]
        data[index] = sign * value

        status, answer = call(app_module, lambda_context, path=INFER, body=infer_body(data, datatype))

        assert status == 400
        assert answer["error"].startswith(f"inputs[0].data[{index}] is ")
        assert "values must be finite and within" in answer["error"]

    refused()


def test_int64_values_must_be_exact_in_float64(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    exact = [2**53, -(2**53), 822.0, 6]
    assert call(app_module, lambda_context, path=INFER, body=infer_body(exact, "INT64"))[0] == 200

    status, answer = call(app_module, lambda_context, path=INFER, body=infer_body([6, 3, 5, 2**53 + 1], "INT64"))

    assert status == 400
    assert answer["error"] == (
        "inputs[0].data[3] is 9007199254740993; values must be finite and within ±9007199254740992"
    )


@pytest.mark.parametrize("declared", ["9" * 5000, "-1", "abc", "", "1e9", "0x10", "6000001"])
def test_content_length_header_is_not_trusted(
    declared: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    event = http_api_event()
    event["headers"]["content-length"] = declared

    assert app_module.handler(event, lambda_context)["body"] == '{"prediction":1}'


@pytest.mark.parametrize("path", ["/predict", INFER])
@pytest.mark.parametrize("body", [None, "", " \n"])
def test_an_empty_body_is_400_on_every_post_route(
    path: str, body: str | None, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    status, answer = call(app_module, lambda_context, path=path, body=None, raw_body=body)

    assert (status, answer) == (400, {"error": "request body is empty; send a JSON object (see /docs)"})


def test_binary_tensor_extension_gets_its_explanation(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    event = http_api_event(
        path=INFER,
        raw_body='{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "parameters": '
        '{"binary_data_size": 16}}]}\x00\x00\xc3@',
        content_type="application/octet-stream",
    )
    event["headers"]["inference-header-content-length"] = "88"

    response = app_module.handler(event, lambda_context)

    assert response["statusCode"] == 400
    assert response_json(response) == {
        "error": "the binary tensor extension is not supported; send JSON tensors (binary_data=False)"
    }


def openapi(app_module: ModuleType, context: LambdaContext) -> dict[str, Any]:
    schema: dict[str, Any] = response_json(
        app_module.handler(http_api_event(method="GET", path="/openapi.json", body=None), context)
    )
    return schema


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/predict", {"features": []}),
        ("/predict", {"features": [6.1, 2.8, 4.7]}),
        ("/predict", {"features": [6.1, 2.8, 4.7, 1e39]}),
        ("/predict", {}),
        ("/predict", {"instances": []}),
        ("/predict", {"instances": [[6.1]]}),
        ("/v2/models/{name}/infer", {}),
        ("/v2/models/{name}/infer", infer_body([6.1, 2.8, 4.7, 1.2], "BYTES")),
        ("/v2/models/{name}/infer", {**infer_body([6, 3, 5, 2], "INT64"), "outputs": [{"name": "logits"}]}),
    ],
)
def test_the_schema_refuses_what_validation_refuses(
    path: str, body: Any, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    schema = openapi(app_module, lambda_context)["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    served = path.replace("{name}", MODEL)

    status, _ = call(app_module, lambda_context, path=served, body=body)

    assert status in (400, 422)
    assert not Draft202012Validator(schema["schema"]).is_valid(body)


def get_paths(app_module: ModuleType, context: LambdaContext) -> list[str]:
    version = app_module.model.manifest.version
    paths = openapi(app_module, context)["paths"]
    concrete = [path.replace("{name}", MODEL).replace("{version}", version) for path in paths if "get" in paths[path]]
    return [*concrete, "/docs", "/openapi.json", "/nowhere", "/predict"]


@pytest.mark.parametrize("shape", ["http-api", "rest-api"])
def test_head_answers_like_get_without_a_body(
    shape: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    for path in get_paths(app_module, lambda_context):
        get = app_module.handler(EVENT_BUILDERS[shape](method="GET", path=path, body=None), lambda_context)
        head = app_module.handler(EVENT_BUILDERS[shape](method="HEAD", path=path, body=None), lambda_context)

        assert head["statusCode"] == get["statusCode"], path
        assert head["headers"] == get["headers"], path
        assert response_text(head) == ""


@pytest.mark.parametrize("path", ["/predict/", "/docs/", "/v2/health/live/"])
def test_a_trailing_slash_is_a_404_and_never_a_redirect_to_the_clients_host(
    path: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    event = http_api_event(method="GET", path=path, body=None)
    event["headers"]["host"] = "attacker.example"

    response = app_module.handler(event, lambda_context)

    assert response["statusCode"] == 404
    assert "location" not in {name.lower() for name in response["headers"]}
    assert response_json(response)["error"].startswith(f"no route for GET {path}; available: GET /, ")


@pytest.mark.parametrize("path", ["", "/"])
def test_a_named_stages_root_is_the_status_route(
    path: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    event = http_api_event(method="GET", path=path, body=None, stage="prod")

    response = app_module.handler(event, lambda_context)

    assert response["statusCode"] == 200
    assert response_json(response)["status"] == "ok"
