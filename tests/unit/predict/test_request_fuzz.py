"""Generated HTTP requests through the Lambda handler: methods, paths, query strings, content
types and bodies, up to the 6 MB request limit. No 5xx, every error a small JSON {"error": str},
and the warm environment still answers the seed contract afterwards."""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.lambda_runtime import LambdaContext
from serving.limits import MAX_BODY_BYTES
from tests.events import EVENT_BUILDERS, http_api_event, response_text
from tests.unit.conftest import LogRecords

MODEL = "iris-random-forest"
# "A few KB": far below Lambda's 6 MB response limit whatever the request.
ERROR_BODY_LIMIT = 4096
# Up to 6 MB bodies: a large smallest example is what this fuzzer means to send.
FUZZ = settings(suppress_health_check=[*settings().suppress_health_check, HealthCheck.large_base_example])

ROUTES = [
    "/",
    "/predict",
    "/model",
    "/docs",
    "/openapi.json",
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    f"/v2/models/{MODEL}",
    f"/v2/models/{MODEL}/ready",
    f"/v2/models/{MODEL}/infer",
    f"/v2/models/{MODEL}/versions/0/infer",
    "/predict/",
    "//predict",
    "/v2/models/x/infer",
    "/prod",
]
METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"]
CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "application/vnd.api+json",
    "text/x+json",
    "text/plain",
    "application/octet-stream",
    "multipart/form-data; boundary=x",
    "",
    ";",
    "application/",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**53 - 2, max_value=2**53 + 2)
    | st.sampled_from([10**400, -(2**1024), 2**63])
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=30,
)
rows = st.lists(scalars, min_size=0, max_size=6) | st.dictionaries(
    st.sampled_from(["sepal_length", "sepal_width", "petal_length", "petal_width", "other"]), scalars
)
predict_bodies = (
    st.fixed_dictionaries({"features": rows})
    | st.fixed_dictionaries({"instances": st.lists(rows | scalars, max_size=4)})
    | rows
)
tensors = st.fixed_dictionaries(
    {
        "name": st.text(max_size=8),
        "shape": st.lists(st.integers(-2, 5) | st.sampled_from([10**30, 4]), max_size=3),
        "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BYTES", "fp32", ""]) | st.text(max_size=8),
        "data": st.lists(scalars | st.lists(scalars, max_size=5), max_size=12),
    },
    optional={"parameters": json_values},
)
infer_bodies = st.fixed_dictionaries(
    {"inputs": st.lists(tensors, max_size=2)},
    optional={
        "id": json_values,
        "outputs": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["predict", "predict_proba", "logits"])}, optional={"parameters": json_values}
            ),
            max_size=3,
        ),
    },
)
bodies = (
    st.none()
    | st.builds(json.dumps, json_values | predict_bodies | infer_bodies)
    | st.text(max_size=60)
    | st.sampled_from(["", " ", "[" * 5000, '{"features": [' + "9" * 5000 + "]}"])
)


def with_headers(event: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    event["headers"].update(headers)
    if "multiValueHeaders" in event:
        event["multiValueHeaders"].update({name: [value] for name, value in headers.items()})
    return event


def assert_small_error_or_success(response: dict[str, Any], method: str) -> None:
    status = response["statusCode"]
    assert status < 500, response
    if status >= 400 and method != "HEAD":
        text = response_text(response)
        body = json.loads(text)
        assert list(body) == ["error"]
        assert isinstance(body["error"], str)
        assert body["error"]
        assert len(text.encode()) <= ERROR_BODY_LIMIT, len(text.encode())


def assert_seed_contract(app_module: ModuleType, context: LambdaContext) -> None:
    assert app_module.handler(http_api_event(), context)["body"] == '{"prediction":1}'


def test_generated_requests_get_no_5xx_and_small_errors(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    @FUZZ
    @given(
        shape=st.sampled_from(sorted(EVENT_BUILDERS)),
        stage=st.sampled_from([None, "prod"]),
        method=st.sampled_from(METHODS),
        path=st.sampled_from(ROUTES) | st.text(string.printable, max_size=30).map(lambda text: "/" + text),
        query=st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=12), st.text(max_size=12), max_size=3),
        content_type=st.sampled_from(CONTENT_TYPES) | st.text(string.printable, max_size=30),
        body=bodies,
        headers=st.dictionaries(
            st.sampled_from(["content-length", "inference-header-content-length", "accept", "x-forwarded-proto"]),
            st.sampled_from(["0", "-1", "1e3", "9" * 5000, " 12 "]) | st.text(string.printable, max_size=12),
        ),
    )
    def answers(
        shape: str,
        stage: str | None,
        method: str,
        path: str,
        query: dict[str, str],
        content_type: str | None,
        body: str | None,
        headers: dict[str, str],
    ) -> None:
        event = EVENT_BUILDERS[shape](
            method=method,
            path=path,
            raw_body=body,
            body=None,
            content_type=content_type,
            query=query,
            stage=stage,
        )
        assert_small_error_or_success(app_module.handler(with_headers(event, headers), lambda_context), method)

    answers()
    assert_seed_contract(app_module, lambda_context)


def _repeat(unit: str, size: int, around: str = "{}") -> str:
    """`around` with `unit` repeated (comma-separated) to about `size` bytes in place of {}."""
    return around.format(",".join([unit] * max(1, size // (len(unit) + 1))))


# Bodies that grow with `size`, each aimed at a place where an error quotes or lists client input.
OVERSIZED_BODIES: dict[str, Callable[[int], str]] = {
    "many bad features": lambda size: _repeat('"x"', size, '{{"features": [{}]}}'),
    "many extra keys": lambda size: "{" + ",".join(f'"k{i}": "v"' for i in range(size // 10)) + "}",
    "long key": lambda size: json.dumps({"k" * size: 1}),
    "long string feature": lambda size: json.dumps({"features": ["x" * size, 1, 2, 3]}),
    "too many rows": lambda size: _repeat("[6.1, 2.8, 4.7, 1.2]", size, '{{"instances": [{}]}}'),
    "one long bad row": lambda size: _repeat("1", size, '{{"instances": [[{}]]}}'),
    "long datatype": lambda size: json.dumps(
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "X" * size, "data": [1, 2, 3, 4]}]}
    ),
    "long output name": lambda size: json.dumps(
        {
            "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}],
            "outputs": [{"name": "o" * size}],
        }
    ),
    "long shape": lambda size: _repeat(
        "1", size, '{{"inputs": [{{"name": "x", "datatype": "FP64", "data": [1], "shape": [{}]}}]}}'
    ),
    "long string value": lambda size: json.dumps(
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ["v" * size, 2, 3, 4]}]}
    ),
    "deep nesting": lambda size: "[" * (size // 2) + "]" * (size // 2),
    "deep nesting in data": lambda size: (
        '{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [' + "[" * 900 + "]" * 900 + "]}]}"
    ),
    "long invalid text": lambda size: "x" * size,
}


def test_error_bodies_and_log_lines_stay_small_up_to_the_request_limit(
    app_module: ModuleType, lambda_context: LambdaContext, log_records: LogRecords
) -> None:
    @FUZZ
    @given(
        kind=st.sampled_from(sorted(OVERSIZED_BODIES)),
        size=st.integers(1, MAX_BODY_BYTES),
        path=st.sampled_from(["/predict", f"/v2/models/{MODEL}/infer"]),
        shape=st.sampled_from(sorted(EVENT_BUILDERS)),
    )
    def stays_small(kind: str, size: int, path: str, shape: str) -> None:
        body = OVERSIZED_BODIES[kind](size)
        response = app_module.handler(EVENT_BUILDERS[shape](path=path, raw_body=body), lambda_context)
        assert_small_error_or_success(response, "POST")

    stays_small()
    rejected = [record for record in log_records() if record["message"] == "request rejected"]
    assert rejected
    assert max(len(json.dumps(record)) for record in rejected) <= 2 * ERROR_BODY_LIMIT
    assert_seed_contract(app_module, lambda_context)
