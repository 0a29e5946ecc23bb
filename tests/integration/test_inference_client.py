"""A real Open Inference Protocol client (Triton's, from PyPI) talking to the built package
served by local/lambda_local.py start-api, unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from sklearn.datasets import load_iris

MODEL = "iris-random-forest"
ROWS = load_iris().data[[0, 60, 120, 140]]


@pytest.fixture(scope="module")
def client(start_api: str) -> Iterator[triton.InferenceServerClient]:
    connection = triton.InferenceServerClient(url=start_api.removeprefix("http://"), network_timeout=30.0)
    yield connection
    connection.close()


def test_health_and_metadata(client: triton.InferenceServerClient, manifest: dict[str, Any]) -> None:
    metadata = client.get_model_metadata(MODEL)

    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert metadata["versions"] == [manifest["version"]]
    assert metadata["inputs"][0]["shape"] == [-1, 4]


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_infer_gives_the_estimators_answers(
    datatype: str, client: triton.InferenceServerClient, training_estimator: Any
) -> None:
    rows = ROWS.astype(np.float32 if datatype == "FP32" else np.float64)
    tensor = triton.InferInput("input-0", list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows, binary_data=False)
    outputs = [triton.InferRequestedOutput(name, binary_data=False) for name in ("predict", "predict_proba")]

    result = client.infer(MODEL, [tensor], outputs=outputs, request_id="7")

    assert result.get_response()["id"] == "7"
    assert result.as_numpy("predict").tolist() == training_estimator.predict(rows).tolist()
    assert result.as_numpy("predict_proba").tobytes() == training_estimator.predict_proba(rows).tobytes()


def test_unknown_model_is_reported(client: triton.InferenceServerClient) -> None:
    with pytest.raises(triton.InferenceServerException, match='model "resnet" is not served here'):
        client.get_model_metadata("resnet")
