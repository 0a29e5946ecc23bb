"""The Open Inference Protocol (KServe V2) routes, driven with hand-written protocol JSON."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import load_iris

from local.lambda_runtime import LambdaContext
from tests.events import http_api_event, response_json

IRIS = load_iris()
MODEL = "iris-random-forest"


def call(
    app_module: ModuleType, context: LambdaContext, path: str, body: Any = None, **event_args: Any
) -> tuple[int, Any]:
    method = "GET" if body is None and "raw_body" not in event_args else "POST"
    response = app_module.handler(http_api_event(method=method, path=path, body=body, **event_args), context)
    return response["statusCode"], response_json(response)


def infer_body(rows: Any, datatype: str = "FP64", shape: list[int] | None = None, **extra: Any) -> dict[str, Any]:
    array = np.asarray(rows)
    tensor = {"name": "input-0", "shape": shape or list(array.shape), "datatype": datatype, "data": rows}
    return {"inputs": [tensor], **extra}


def test_server_metadata_and_health(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    assert call(app_module, lambda_context, "/v2")[1]["name"] == f"{MODEL}-server"
    assert call(app_module, lambda_context, "/v2/health/live") == (200, {"live": True})
    assert call(app_module, lambda_context, "/v2/health/ready") == (200, {"ready": True})


def test_model_metadata_and_readiness(
    app_module: ModuleType, lambda_context: LambdaContext, model_version: str
) -> None:
    version = model_version

    status, body = call(app_module, lambda_context, f"/v2/models/{MODEL}")

    assert status == 200
    assert body["name"] == MODEL
    assert body["versions"] == [version]
    assert body["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert [output["name"] for output in body["outputs"]] == ["predict", "predict_proba"]
    assert call(app_module, lambda_context, f"/v2/models/{MODEL}/versions/{version}")[1] == body
    assert call(app_module, lambda_context, f"/v2/models/{MODEL}/ready") == (200, {"name": MODEL, "ready": True})
    assert call(app_module, lambda_context, f"/v2/models/{MODEL}/versions/{version}/ready")[0] == 200


@pytest.mark.parametrize("nested", [True, False])
@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
def test_infer_predict_and_probabilities(
    nested: bool,
    datatype: str,
    app_module: ModuleType,
    iris_estimator: Any,
    lambda_context: LambdaContext,
    model_version: str,
) -> None:
    rows = IRIS.data[[5, 55, 105, 110]]
    values = rows.astype(np.float32).astype(np.float64) if datatype == "FP32" else rows
    data = values.tolist() if nested else values.ravel().tolist()
    body = infer_body(data, datatype, shape=[4, 4], id="42", outputs=[{"name": "predict"}, {"name": "predict_proba"}])

    status, answer = call(app_module, lambda_context, f"/v2/models/{MODEL}/infer", body)

    assert status == 200
    assert answer["model_name"] == MODEL
    assert answer["model_version"] == model_version
    assert answer["id"] == "42"
    predict, proba = answer["outputs"]
    assert predict == {
        "name": "predict",
        "datatype": "INT64",
        "shape": [4],
        "data": iris_estimator.predict(rows).tolist(),
    }
    assert proba["name"] == "predict_proba"
    assert proba["datatype"] == "FP64"
    assert proba["shape"] == [4, 3]
    assert proba["data"] == iris_estimator.predict_proba(rows).ravel().tolist()


def test_infer_defaults_to_predict_and_takes_a_version(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    version = app_module.model.manifest.version
    body = infer_body([[6, 3, 5, 2]], "INT64")

    status, answer = call(app_module, lambda_context, f"/v2/models/{MODEL}/versions/{version}/infer", body)

    assert status == 200
    assert [output["name"] for output in answer["outputs"]] == ["predict"]
    assert "id" not in answer


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v2/models/resnet/infer", 'model "resnet" is not served here; this server serves "iris-random-forest"'),
        (f"/v2/models/{MODEL}/versions/0000/infer", 'version "0000" of model "iris-random-forest" is not served'),
    ],
)
def test_unknown_model_or_version_is_404(
    path: str, message: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    status, body = call(app_module, lambda_context, path, infer_body([[6.1, 2.8, 4.7, 1.2]]))

    assert status == 404
    assert body["error"].startswith(message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": []}, "invalid inference request: inputs: List should have at least 1 item"),
        ({"outputs": []}, "invalid inference request: inputs: Field required"),
        (infer_body([["6.1", 2.8, 4.7, 1.2]]), 'inputs[0].data[0] is "6.1"; FP64 data must be JSON numbers'),
        (infer_body([[True, 2.8, 4.7, 1.2]]), "inputs[0].data[0] is true; FP64 data must be JSON numbers"),
        (infer_body([[6.5, 2, 4, 1]], "INT64"), "inputs[0].data[0] is 6.5; INT64 data must be JSON integers"),
        (infer_body([[6, 2, 4, 2**60]], "INT64"), "inputs[0].data[3] is 1152921504606846976; values must be finite"),
        (infer_body([[6.1, 2.8, 4.7, 1.2]], "BYTES"), 'inputs[0].datatype "BYTES" is not accepted; use one of FP32'),
        (infer_body([[6.1, 2.8, 4.7]]), "inputs[0].shape [1, 3] is not accepted; expected [N, 4]"),
        (infer_body([6.1, 2.8, 4.7, 1.2, 5.0], shape=[2, 4]), "inputs[0].data has 5 values; shape [2, 4] needs 8"),
        (infer_body([[6.1, 2.8], [4.7, 1.2]], shape=[1, 4]), "nested data must be 1 rows of 4 values"),
        (infer_body([[6.1, 2.8, 4.7, 1.2]], outputs=[{"name": "logits"}]), 'output "logits" is not available'),
        (
            {"inputs": [infer_body([[6.1, 2.8, 4.7, 1.2]])["inputs"][0]] * 2},
            "inputs: 2 inputs; this model takes one, of shape [N, 4]",
        ),
        (
            infer_body([[6.1, 2.8, 4.7, 1.2]], outputs=[{"name": "predict", "parameters": {"binary_data": True}}]),
            "the binary tensor extension is not supported",
        ),
    ],
)
def test_bad_infer_requests_are_400(
    body: dict[str, Any], message: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    status, answer = call(app_module, lambda_context, f"/v2/models/{MODEL}/infer", body)

    assert status == 400
    assert message in answer["error"]


def test_non_finite_values_are_400(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    raw = '{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [6.1, NaN, 4.7, 1.2]}]}'

    status, answer = call(app_module, lambda_context, f"/v2/models/{MODEL}/infer", None, raw_body=raw)

    assert status == 400
    assert answer["error"].startswith("inputs[0].data[1] is NaN; values must be finite")


def test_malformed_json_is_400(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    status, answer = call(app_module, lambda_context, f"/v2/models/{MODEL}/infer", None, raw_body='{"inputs": [')

    assert status == 400
    assert answer["error"].startswith("request body is not valid JSON")


INFER = f"/v2/models/{MODEL}/infer"


def ask(app_module: ModuleType, context: LambdaContext, **event_args: Any) -> tuple[int, Any]:
    response = app_module.handler(http_api_event(**event_args), context)
    return response["statusCode"], response_json(response) if response.get("body") else None


def tensor_body(data: list[Any], datatype: str, rows: int = 1) -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "shape": [rows, 4], "datatype": datatype, "data": data}]}


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

        status, answer = ask(app_module, lambda_context, path=INFER, body=tensor_body(data, datatype))

        assert status == 400
        assert answer["error"].startswith(f"inputs[0].data[{index}] is ")
        assert "values must be finite and within" in answer["error"]

    refused()


def test_int64_values_must_be_exact_in_float64(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    exact = [2**53, -(2**53), 822.0, 6]
    assert ask(app_module, lambda_context, path=INFER, body=tensor_body(exact, "INT64"))[0] == 200

    status, answer = ask(app_module, lambda_context, path=INFER, body=tensor_body([6, 3, 5, 2**53 + 1], "INT64"))

    assert status == 400
    assert answer["error"] == (
        "inputs[0].data[3] is 9007199254740993; values must be finite and within ±9007199254740992"
    )


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
