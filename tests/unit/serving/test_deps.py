"""The one rule for JSON bodies (serving/deps.py), the same on every POST route: a JSON media type
or a 415, an empty or mis-sized body a 400."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local.lambda_runtime import LambdaContext
from tests.events import SEED_BODY, http_api_event, response_json

MODEL = "iris-random-forest"
INFER = f"/v2/models/{MODEL}/infer"
media_types = st.builds(
    lambda kind, subtype, suffix, parameters: f"{kind}/{subtype}{suffix}{parameters}",
    st.sampled_from(["application", "text", "image", "multipart", "APPLICATION"]),
    st.sampled_from(["json", "x", "vnd.iris", "JSON", "plain"]),
    st.sampled_from(["", "+json", "+JSON", "+xml"]),
    st.sampled_from(["", "; charset=utf-8", ";", '; a="b"']),
)


def ask(app_module: ModuleType, context: LambdaContext, **event_args: Any) -> tuple[int, Any]:
    response = app_module.handler(http_api_event(**event_args), context)
    return response["statusCode"], response_json(response) if response.get("body") else None


def tensor_body(data: list[Any], datatype: str, rows: int = 1) -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "shape": [rows, 4], "datatype": datatype, "data": data}]}


@pytest.mark.parametrize("path", ["/predict", INFER])
def test_one_json_rule_for_every_post_route(path: str, app_module: ModuleType, lambda_context: LambdaContext) -> None:
    body = SEED_BODY if path == "/predict" else tensor_body([6.1, 2.8, 4.7, 1.2], "FP64")

    @given(content_type=media_types)
    def follows_the_rule(content_type: str) -> None:
        kind, subtype = content_type.split(";")[0].lower().split("/")
        is_json = kind == "application" and (subtype == "json" or subtype.endswith("+json"))

        status, answer = ask(app_module, lambda_context, path=path, body=body, content_type=content_type)

        assert status == (200 if is_json else 415), (content_type, answer)

    follows_the_rule()


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
    status, answer = ask(app_module, lambda_context, path=path, body=None, raw_body=body)

    assert (status, answer) == (400, {"error": "request body is empty; send a JSON object (see /docs)"})
