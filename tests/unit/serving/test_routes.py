"""Batches, rows by feature name, probabilities and model metadata, with the seed contract unchanged."""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from local.lambda_runtime import LambdaContext
from tests.events import function_url_event, http_api_event, response_json

IRIS = load_iris()
NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]


def post(app_module: ModuleType, context: LambdaContext, body: Any, **event_args: Any) -> tuple[int, Any]:
    response = app_module.handler(http_api_event(body=body, **event_args), context)
    return response["statusCode"], response_json(response)


def named(row: list[float]) -> dict[str, float]:
    return dict(zip(NAMES, row, strict=True))


def test_seed_contract_is_byte_for_byte(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    response = app_module.handler(http_api_event(), lambda_context)

    assert response["body"] == '{"prediction":1}'


def test_batch_of_all_iris_rows(app_module: ModuleType, iris_estimator: Any, lambda_context: LambdaContext) -> None:
    status, body = post(app_module, lambda_context, {"instances": IRIS.data.tolist()})

    assert status == 200
    assert body == {"predictions": iris_estimator.predict(IRIS.data).tolist()}


def test_rows_by_feature_name(app_module: ModuleType, iris_estimator: Any, lambda_context: LambdaContext) -> None:
    rows = IRIS.data[[0, 60, 120]].tolist()

    single = post(app_module, lambda_context, named([6.1, 2.8, 4.7, 1.2]))
    batch = post(app_module, lambda_context, {"instances": [named(rows[0]), rows[1], named(rows[2])]})

    assert single == (200, {"prediction": 1})
    assert batch == (200, {"predictions": iris_estimator.predict(np.array(rows)).tolist()})


def test_probabilities_on_request(app_module: ModuleType, iris_estimator: Any, lambda_context: LambdaContext) -> None:
    rows = IRIS.data[[10, 70, 140]]
    expected = iris_estimator.predict_proba(rows)

    single = post(app_module, lambda_context, {"features": rows[1].tolist()}, query={"probabilities": "true"})
    batch = post(app_module, lambda_context, {"instances": rows.tolist()}, query={"probabilities": "true"})

    labels = iris_estimator.predict(rows).tolist()
    assert single == (
        200,
        {
            "prediction": labels[1],
            "class_name": CLASSES[labels[1]],
            "probabilities": dict(zip(CLASSES, expected[1].tolist(), strict=True)),
        },
    )
    assert batch == (
        200,
        {
            "predictions": labels,
            "class_names": [CLASSES[label] for label in labels],
            "probabilities": [dict(zip(CLASSES, row, strict=True)) for row in expected.tolist()],
        },
    )


def test_probabilities_flag_must_be_a_boolean(app_module: ModuleType, lambda_context: LambdaContext) -> None:
    status, body = post(
        app_module, lambda_context, {"features": [6.1, 2.8, 4.7, 1.2]}, query={"probabilities": "maybe"}
    )

    assert status == 422
    assert body["error"].startswith(
        "invalid request: probabilities: Input should be a valid boolean, unable to interpret"
    )


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        ([[6.1, 2.8, 4.7, 1.2], [6.1, 2.8, 4.7]], "instances[1]: expected 4 numbers (sepal_length, "),
        (
            [[6.1, 2.8, 4.7, 1.2]] * 2 + [[6.1, "2.8", 4.7, 1.2]],
            'instances[2][1]: Input should be a valid number (got "2.8")',
        ),
        ([named([6.1, 2.8, 4.7, 1.2]), {"sepal_length": 6.1}], "instances[1].sepal_width: Field required"),
        ([[1, 2, 3, 4], "6.1,2.8"], "instances[1]: expected a list of 4 numbers or an object with sepal_length"),
        ([], "instances: List should have at least 1 item after validation, not 0"),
        (
            [[1.0, 2.0, 3.0, 4.0]] * 10_001,
            "instances: List should have at most 10000 items after validation, not 10001",
        ),
    ],
)
def test_a_bad_row_is_reported_by_its_index(
    instances: list[Any], message: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    status, body = post(app_module, lambda_context, {"instances": instances})

    assert status == 422
    assert message in body["error"]


def test_model_metadata(
    app_module: ModuleType,
    lambda_context: LambdaContext,
    iris_estimator: Any,
    training_dir: Path,
    model_version: str,
    baked_engine: str,
) -> None:
    # The held-out split models/iris.toml describes, made here with scikit-learn.
    _, x_test, _, y_test = train_test_split(
        IRIS.data, IRIS.target, test_size=0.2, stratify=IRIS.target, random_state=42
    )

    response = app_module.handler(function_url_event(method="GET", path="/model", body=None), lambda_context)

    body = response_json(response)
    assert response["statusCode"] == 200
    assert body["name"] == "iris-random-forest"
    assert body["version"] == model_version
    assert body["sha256"] == hashlib.sha256((training_dir / "model.joblib").read_bytes()).hexdigest()
    assert [feature["name"] for feature in body["features"]] == NAMES
    assert body["class_names"] == CLASSES
    assert body["metrics"]["test_accuracy"] == round(accuracy_score(y_test, iris_estimator.predict(x_test)), 6)
    assert body["libraries"]["numpy"] == metadata.version("numpy")
    assert body["engine"]["name"] == baked_engine
