"""The handler across payload formats and routes, and its cold-start behaviour."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris

from build import FUNCTION_DIR
from local.lambda_runtime import LambdaContext
from serving import model as model_module
from tests.events import EVENT_BUILDERS, http_api_event, response_json
from tests.unit.conftest import ColdStartWithoutAModel, one_engine

IRIS = load_iris()


@pytest.mark.parametrize("shape", sorted(EVENT_BUILDERS))
def test_seed_contract_in_every_shape(shape: str, app_module: ModuleType, lambda_context: LambdaContext) -> None:
    response = app_module.handler(EVENT_BUILDERS[shape](), lambda_context)

    assert response["statusCode"] == 200
    assert response["body"] == '{"prediction":1}'


@pytest.mark.parametrize("shape", sorted(EVENT_BUILDERS))
def test_status_names_the_model(
    shape: str, app_module: ModuleType, lambda_context: LambdaContext, model_version: str, baked_engine: str
) -> None:
    response = app_module.handler(EVENT_BUILDERS[shape](method="GET", path="/", body=None), lambda_context)

    body = response_json(response)
    assert response["statusCode"] == 200
    assert body["status"] == "ok"
    assert body["model"] == {
        "name": "iris-random-forest",
        "version": model_version,
        "engine": baked_engine,
    }


@pytest.mark.parametrize("shape", sorted(EVENT_BUILDERS))
def test_base64_body_without_content_type(shape: str, app_module: ModuleType, lambda_context: LambdaContext) -> None:
    event = EVENT_BUILDERS[shape](content_type=None, base64_body=True)

    assert response_json(app_module.handler(event, lambda_context)) == {"prediction": 1}


@pytest.mark.parametrize("index", [0, 1, 50, 51, 100, 149])
def test_predictions_match_the_estimator(
    index: int, app_module: ModuleType, iris_estimator: Any, lambda_context: LambdaContext
) -> None:
    row = IRIS.data[index].tolist()
    expected = int(iris_estimator.predict(np.asarray([row]))[0])

    response = app_module.handler(http_api_event(body={"features": row}), lambda_context)

    assert response_json(response) == {"prediction": expected}


@pytest.mark.parametrize("shape", sorted(EVENT_BUILDERS))
def test_unknown_path_is_404(shape: str, app_module: ModuleType, lambda_context: LambdaContext) -> None:
    response = app_module.handler(EVENT_BUILDERS[shape](method="GET", path="/v1/predict", body=None), lambda_context)

    stage = "/Prod" if shape == "rest-api" else ""
    assert response["statusCode"] == 404
    assert response_json(response)["error"].startswith(
        f"no route for GET {stage}/v1/predict; available: GET /, GET /model, POST /predict"
    )


def test_a_404_lists_every_operation_the_schema_documents_in_its_order(
    app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    response = app_module.handler(http_api_event(method="GET", path="/nowhere", body=None), lambda_context)
    schema = response_json(
        app_module.handler(http_api_event(method="GET", path="/openapi.json", body=None), lambda_context)
    )

    documented = [f"{method.upper()} {path}" for path, operations in schema["paths"].items() for method in operations]
    assert response_json(response)["error"] == f"no route for GET /nowhere; available: {', '.join(documented)}"


@pytest.mark.parametrize(("method", "path", "allowed"), [("GET", "/predict", "POST"), ("DELETE", "/", "GET")])
def test_wrong_method_is_405(
    method: str, path: str, allowed: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    response = app_module.handler(http_api_event(method=method, path=path, body=None), lambda_context)

    assert response["statusCode"] == 405
    assert response["headers"]["allow"] == allowed
    assert response_json(response) == {"error": f"method {method} is not allowed on {path}; allowed: {allowed}"}


def test_model_is_loaded_once_across_invocations(
    iris_model_dir: Path, monkeypatch: pytest.MonkeyPatch, lambda_context: LambdaContext
) -> None:
    loads: list[Path] = []
    real_load = model_module.load_model

    def counting_load(model_dir: Path) -> model_module.LoadedModel:
        loads.append(model_dir)
        return real_load(model_dir)

    monkeypatch.setattr(model_module, "load_model", counting_load)
    monkeypatch.setenv("MODEL_DIR", str(iris_model_dir))
    monkeypatch.delitem(sys.modules, "app", raising=False)
    fresh_app = importlib.import_module("app")
    monkeypatch.delitem(sys.modules, "app")

    responses = [fresh_app.handler(http_api_event(), lambda_context) for _ in range(25)]

    assert loads == [iris_model_dir]
    assert {response["body"] for response in responses} == {'{"prediction":1}'}


def test_missing_model_refuses_to_start(cold_start_without_a_model: ColdStartWithoutAModel) -> None:
    [record] = cold_start_without_a_model("app")

    assert record["message"] == "refusing to start: the configuration or the model failed to load"
    assert "manifest not found" in str(record["exception"])


# The settings are refused before any model is read: one engine.
@pytest.mark.slow
@one_engine
def test_an_incomplete_s3_pin_refuses_to_start_at_a_real_cold_start(iris_model_dir: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(FUNCTION_DIR),
        "MODEL_DIR": str(iris_model_dir),
        "MODEL_S3_BUCKET": "models",
        "MODEL_S3_KEY": "iris/model.zip",
    }
    # A fresh interpreter: the settings must be read by app.py's import, inside its refusal.
    result = subprocess.run(
        [sys.executable, "-c", "import app"], env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 1
    [record] = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert record["level"] == "ERROR"
    assert record["message"] == "refusing to start: the configuration or the model failed to load"
    assert "so MODEL_S3_VERSION_ID, MODEL_SHA256 must be set too" in record["exception"]
    assert record["exception_name"] == "ConfigurationError"


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
