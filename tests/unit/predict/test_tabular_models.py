"""The API follows the model it serves: a Pipeline with category features and missing values
(models/penguins.toml) and a regressor (models/diabetes.toml), each served by the function and
answered exactly as the estimator itself answers, through /predict and the Open Inference Protocol."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from numpy.typing import NDArray

from build import PROJECT_ROOT
from build.spec import ModelSpec, load_spec
from build.train import MODEL_FILE, check_rows
from local.lambda_runtime import LambdaContext
from serving.codecs.number import FLOAT32_MAX
from serving.config import PACKAGE_MODEL_DIR
from serving.inference import INFER_PATHS
from serving.manifest import COMPILED, SCIKIT_LEARN, EngineName, Feature
from serving.scoring import ERROR, PREDICTION, ROW, Scorer
from tests.events import http_api_event, response_json
from tests.schema_contract import MODES, check_schema_contract
from tests.unit.conftest import baked, imported_app, trained

if TYPE_CHECKING:
    import schemathesis

# The served models are session fixtures, the same for every example: a function-scoped fixture
# these tests take alongside (none reset between examples) is read, never changed.
EXAMPLES = settings(suppress_health_check=[*settings().suppress_health_check, HealthCheck.function_scoped_fixture])


@dataclass(frozen=True)
class Served:
    """A model as the function serves it, next to what it was built from: the estimator, its spec
    and the engine asked for (the expected values, never read back from the app)."""

    app: ModuleType
    estimator: Any
    held_out: NDArray[Any]
    spec: ModelSpec
    engine: EngineName

    @property
    def features(self) -> list[Feature]:
        return self.spec.features

    @property
    def name(self) -> str:
        return self.spec.name

    def call(self, path: str = "/predict", body: Any = None, method: str = "POST", **event: Any) -> tuple[int, Any]:
        response = self.app.handler(http_api_event(method=method, path=path, body=body, **event), LambdaContext())
        return response["statusCode"], response_json(response)


def served(spec_file: str, engine: EngineName, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    spec = load_spec(PROJECT_ROOT / "models" / spec_file)
    package = baked(spec, engine, tmp_path_factory)
    with imported_app(package / PACKAGE_MODEL_DIR) as app:
        yield Served(app, joblib.load(trained(spec) / MODEL_FILE), check_rows(spec).held_out, spec, engine)


@pytest.fixture(scope="session", params=[COMPILED, SCIKIT_LEARN])
def penguins(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from served("penguins.toml", request.param, tmp_path_factory)


@pytest.fixture(scope="session", params=[COMPILED, SCIKIT_LEARN])
def diabetes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from served("diabetes.toml", request.param, tmp_path_factory)


def as_json(value: Any) -> Any:
    """A value of a model's rows as JSON sends it: NaN (a missing value) is null."""
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and math.isnan(value) else value


def json_rows(rows: NDArray[Any]) -> list[list[Any]]:
    return [[as_json(value) for value in row] for row in rows]


def named(features: list[Feature], row: list[Any]) -> dict[str, Any]:
    return {feature.name: value for feature, value in zip(features, row, strict=True)}


def model_rows(rows: list[list[Any]]) -> NDArray[Any]:
    """JSON rows as the estimator takes them: an object array, null as NaN."""
    return np.array([[math.nan if value is None else value for value in row] for row in rows], dtype=object)


# /predict


def test_penguins_answers_are_the_estimators_on_held_out_rows(penguins: Served) -> None:
    rows = json_rows(penguins.held_out)
    assert any(value is None for row in rows for value in row), "the held-out rows should have missing values"
    instances = [row if index % 2 else named(penguins.features, row) for index, row in enumerate(rows)]

    status, body = penguins.call(body={"instances": instances}, query={"probabilities": "true"})

    labels = penguins.estimator.predict(penguins.held_out).tolist()
    # penguins.toml names no classes: they are the labels themselves.
    classes = [str(label) for label in penguins.estimator.classes_]
    assert status == 200
    assert body["predictions"] == labels
    assert all(isinstance(label, str) for label in body["predictions"])
    assert body["probabilities"] == [
        dict(zip(classes, row, strict=True)) for row in penguins.estimator.predict_proba(penguins.held_out).tolist()
    ]
    assert penguins.call(body={"features": rows[0]}) == (200, {"prediction": labels[0]})


def test_diabetes_predicts_numbers_equal_to_the_estimators(diabetes: Served) -> None:
    rows = diabetes.held_out.tolist()

    status, body = diabetes.call(body={"instances": rows})

    assert status == 200
    assert body == {"predictions": diabetes.estimator.predict(diabetes.held_out).tolist()}
    assert all(isinstance(value, float) for value in body["predictions"])
    assert diabetes.call(body=named(diabetes.features, rows[3])) == (200, {"prediction": body["predictions"][3]})


@pytest.mark.parametrize("path", ["/predict?probabilities=true", "/v2/models/{name}/infer"])
def test_a_regressor_has_no_probabilities(path: str, diabetes: Served) -> None:
    row = diabetes.held_out[0].tolist()
    if path.startswith("/v2"):
        tensor = {"name": "input-0", "shape": [1, len(row)], "datatype": "FP64", "data": row}
        status, body = diabetes.call(
            path.format(name=diabetes.name), {"inputs": [tensor], "outputs": [{"name": "predict_proba"}]}
        )
        assert (status, body) == (
            400,
            {"error": 'output "predict_proba" is not available (a regressor has no predict_proba); request predict'},
        )
        return
    status, body = diabetes.call(body={"features": row}, query={"probabilities": "true"})

    assert (status, body) == (
        422,
        {
            "error": 'model "diabetes-progression" is a regressor: it predicts a number, not class probabilities; '
            "omit ?probabilities=true"
        },
    )


def test_only_a_classifier_counts_predictions_by_class(
    penguins: Served, diabetes: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    def metric_names(model: Served) -> list[str]:
        capsys.readouterr()
        assert model.call(body={"instances": json_rows(model.held_out[:3])})[0] == 200
        lines = capsys.readouterr().out.splitlines()
        [document] = [json.loads(line) for line in lines if line.startswith('{"_aws"') and "RowsPerRequest" in line]
        return [metric["Name"] for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]

    assert metric_names(diabetes) == ["RowsPerRequest", "ModelLatency"]
    labels = set(penguins.estimator.predict(penguins.held_out[:3]))
    assert metric_names(penguins) == ["RowsPerRequest", "ModelLatency", *sorted(f"Predictions_{c}" for c in labels)]


@EXAMPLES
@given(data=st.data())
def test_a_category_outside_the_list_is_refused_with_the_list(penguins: Served, data: st.DataObject) -> None:
    position = data.draw(st.sampled_from([i for i, f in enumerate(penguins.features) if f.type == "category"]))
    feature = penguins.features[position]
    categories = feature.categories or []
    value = data.draw(st.text(max_size=30).filter(lambda text: text not in categories) | st.integers() | st.booleans())
    row = json_rows(penguins.held_out[:1])[0]
    row[position] = value

    status, body = penguins.call(body={"features": row})

    listed = ", ".join(json.dumps(category) for category in categories)
    assert status == 422
    assert body["error"].startswith(f"invalid request: features[{position}]: Input should be one of {listed}")


def test_null_only_where_missing_values_are_allowed(penguins: Served) -> None:
    row = json_rows(penguins.held_out[:1])[0]
    for position, feature in enumerate(penguins.features):
        with_null = [None if index == position else value for index, value in enumerate(row)]

        status, body = penguins.call(body={"features": with_null})

        if feature.allow_missing:
            assert (status, body) == (200, {"prediction": penguins.estimator.predict(model_rows([with_null]))[0]})
        else:
            assert status == 422
            assert body["error"].startswith(f"invalid request: features[{position}]: Input should be one of ")


def test_rows_in_order_are_counted_in_values(penguins: Served) -> None:
    status, body = penguins.call(body={"instances": [["Dream", 40.0]]})

    names = ", ".join(feature.name for feature in penguins.features)
    assert (status, body) == (422, {"error": f"instances[0]: expected 6 values ({names}), got 2"})


feature_values = {
    "category": lambda feature: st.sampled_from(feature.categories),
    "number": lambda feature: st.floats(-FLOAT32_MAX, FLOAT32_MAX) | st.floats(-1e4, 1e4) | st.integers(-500, 500),
}


def penguin_rows(features: list[Feature]) -> st.SearchStrategy[list[Any]]:
    return st.tuples(
        *[
            feature_values[feature.type](feature) | (st.none() if feature.allow_missing else st.nothing())
            for feature in features
        ]
    ).map(list)


@EXAMPLES
@given(data=st.data())
def test_generated_penguin_rows_are_answered_as_the_estimator_answers(penguins: Served, data: st.DataObject) -> None:
    rows = data.draw(st.lists(penguin_rows(penguins.features), min_size=1, max_size=8))
    by_name = data.draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    instances = [named(penguins.features, row) if flag else row for row, flag in zip(rows, by_name, strict=True)]

    status, body = penguins.call(body={"instances": instances}, query={"probabilities": "true"})

    expected = model_rows(rows)
    assert status == 200, body
    assert body["predictions"] == penguins.estimator.predict(expected).tolist()
    assert [list(row.values()) for row in body["probabilities"]] == penguins.estimator.predict_proba(expected).tolist()


@EXAMPLES
@given(data=st.data())
def test_generated_bad_penguin_rows_are_4xx(penguins: Served, data: st.DataObject) -> None:
    row = data.draw(penguin_rows(penguins.features))
    position = data.draw(st.integers(0, len(row) - 1))
    row[position] = data.draw(
        st.none() | st.booleans() | st.text(max_size=10) | st.floats() | st.lists(st.integers(), max_size=2)
    )

    status, body = penguins.call(body={"features": row})

    assert status in (200, 422), body
    assert status == 422 or penguins.features[position].type == "number" or row[position] is None
    if status == 422:
        assert body["error"].startswith(f"invalid request: features[{position}]: ")


# Scoring a CSV (serving/scoring.py): categories and missing values on the fast path


def test_penguin_csv_rows_are_scored_as_the_api_answers_each(penguins: Served) -> None:
    names = [feature.name for feature in penguins.features]
    rows = json_rows(penguins.held_out)
    # A CSV cell per value: null is an empty cell; then a few rows made bad in each way a cell can be.
    table = [
        ["" if value is None else repr(value) if isinstance(value, float) else value for value in row] for row in rows
    ]
    for index, bad in zip(range(0, len(table), 7), ["Atlantis", "", "n/a", "1e39", " 40.1", "biscoe"], strict=False):
        table[index][index % len(names)] = bad
    header = list(reversed(names))
    reordered = [list(reversed(row)) for row in table]
    bodies = [
        {
            name: None if cell == "" else _cell_number(cell, feature)
            for name, cell, feature in zip(names, cells, penguins.features, strict=True)
        }
        for cells in table
    ]
    # Each row alone through the API, once for both ways of scoring the table.
    alone = [penguins.call(body=body) for body in bodies]
    good = [number for number, (status, _) in enumerate(alone, start=1) if status == 200]
    assert all(status == 422 for status, _ in alone if status != 200)
    assert len(good) < len(table)

    for probabilities in (False, True):
        scored = Scorer(penguins.app.model, probabilities=probabilities).score_table(header, reordered)

        assert scored.errors == [
            {ROW: number, ERROR: answer["error"]}
            for number, (status, answer) in enumerate(alone, start=1)
            if status != 200
        ], probabilities
        # The good rows as one batch, as the scorer predicts them: a linear model's matrix product
        # (BLAS) can differ in the last bit between a batch and a row alone, in the API as here.
        query = {"probabilities": "true"} if probabilities else None
        status, answer = penguins.call(body={"instances": [bodies[number - 1] for number in good]}, query=query)
        assert status == 200
        expected = [
            {ROW: number, PREDICTION: label, **(answer["probabilities"][index] if probabilities else {})}
            for index, (number, label) in enumerate(zip(good, answer["predictions"], strict=True))
        ]
        assert scored.predictions == expected, probabilities


def _cell_number(cell: str, feature: Feature) -> Any:
    """A number feature's cell as the number it spells when it is a plain decimal; else the text."""
    if feature.type == "number" and cell == cell.strip() and cell.lower() not in {"nan", "inf", "-inf"}:
        try:
            return float(cell)
        except ValueError:
            return cell
    return cell


# The documents: status, manifest, OpenAPI


def test_status_and_manifest_name_the_model(penguins: Served, diabetes: Served) -> None:
    for model in (penguins, diabetes):
        status, body = model.call("/", method="GET")
        assert status == 200
        assert body["message"].startswith(f"{model.name} is running")
        assert body["model"]["name"] == model.name
        assert body["model"]["engine"] == model.engine

    assert penguins.call("/", method="GET")[1]["message"].endswith('POST /predict with {"features": [6 values]}')
    assert diabetes.call("/", method="GET")[1]["message"].endswith('POST /predict with {"features": [10 numbers]}')
    manifest = penguins.call("/model", method="GET")[1]
    assert manifest["features"][0] == {
        "name": "island",
        "type": "category",
        "categories": ["Biscoe", "Dream", "Torgersen"],
        "allow_missing": False,
    }
    assert manifest["task"] == "classification"
    assert diabetes.call("/model", method="GET")[1]["task"] == "regression"


def openapi(model: Served) -> dict[str, Any]:
    status, schema = model.call("/openapi.json", method="GET")
    assert status == 200
    assert "Iris" not in json.dumps(schema)
    document: dict[str, Any] = schema
    return document


def test_openapi_is_the_models_schema_and_its_examples_are_served(penguins: Served) -> None:
    schema = openapi(penguins)
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    features, _, by_name = body["schema"]["oneOf"]

    assert schema["info"]["title"] == f"{penguins.name} prediction API"
    assert by_name["properties"]["island"] == {"type": "string", "enum": ["Biscoe", "Dream", "Torgersen"]}
    assert by_name["properties"]["sex"] == {"anyOf": [{"type": "string", "enum": ["female", "male"]}, {"type": "null"}]}
    assert features["properties"]["features"]["minItems"] == features["properties"]["features"]["maxItems"] == 6
    # penguins.toml gives no example row: it is the first held-out row.
    assert body["examples"]["features"]["value"] == {"features": json_rows(penguins.held_out)[0]}
    validator = Draft202012Validator(body["schema"])
    responses = schema["components"]["schemas"]
    for example in body["examples"].values():
        validator.validate(example["value"])
        status, answer = penguins.call(body=example["value"], query={"probabilities": "true"})
        assert status == 200
        title = "PredictResponse" if "prediction" in answer else "BatchPredictResponse"
        Draft202012Validator(responses[title]).validate(answer)
    assert responses["PredictResponse"]["properties"]["prediction"]["enum"] == penguins.estimator.classes_.tolist()

    infer = schema["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]["application/json"]
    Draft202012Validator(infer["schema"]).validate(infer["example"])
    status, answer = penguins.call(f"/v2/models/{penguins.name}/infer", infer["example"])
    assert status == 200
    assert [output["name"] for output in answer["outputs"]] == ["predict", "predict_proba"]


def test_a_regressors_openapi_has_no_classes(diabetes: Served) -> None:
    responses = openapi(diabetes)["components"]["schemas"]

    assert responses["PredictResponse"]["properties"] == {
        "prediction": {"type": "number", "description": "the predicted value"}
    }


# The Open Inference Protocol


def columns(model: Served, rows: list[list[Any]], nested: bool = False) -> list[dict[str, Any]]:
    """One input per feature, as MLServer's pandas codec sends a DataFrame."""
    inputs = []
    for position, feature in enumerate(model.features):
        values = [row[position] for row in rows]
        inputs.append(
            {
                "name": feature.name,
                "shape": [len(rows), 1] if nested else [len(rows)],
                "datatype": "BYTES" if feature.type == "category" else "FP64",
                "data": [[value] for value in values] if nested else values,
            }
        )
    return inputs


def test_v2_metadata_lists_one_input_per_feature(penguins: Served, diabetes: Served) -> None:
    status, body = penguins.call(f"/v2/models/{penguins.name}", method="GET")

    assert status == 200
    assert body["inputs"] == [
        {"name": feature.name, "datatype": "BYTES" if feature.type == "category" else "FP64", "shape": [-1, 1]}
        for feature in penguins.features
    ]
    assert body["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
    ]
    assert diabetes.call(f"/v2/models/{diabetes.name}", method="GET")[1]["outputs"] == [
        {"name": "predict", "datatype": "FP64", "shape": [-1]}
    ]


@pytest.mark.parametrize("nested", [False, True])
def test_v2_infer_takes_one_input_per_feature_in_any_order(nested: bool, penguins: Served) -> None:
    rows = json_rows(penguins.held_out[:7])
    inputs = columns(penguins, rows, nested)[::-1]
    body = {"id": "7", "inputs": inputs, "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}

    status, answer = penguins.call(f"/v2/models/{penguins.name}/infer", body)

    expected = model_rows(rows)
    assert status == 200, answer
    predict, proba = answer["outputs"]
    assert predict == {
        "name": "predict",
        "datatype": "BYTES",
        "shape": [7],
        "data": penguins.estimator.predict(expected).tolist(),
    }
    assert proba["shape"] == [7, 3]
    assert proba["data"] == penguins.estimator.predict_proba(expected).ravel().tolist()


def test_v2_infer_on_a_regressor_answers_fp64(diabetes: Served) -> None:
    rows = diabetes.held_out[:5]
    tensor = {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": rows.tolist()}

    status, answer = diabetes.call(f"/v2/models/{diabetes.name}/infer", {"inputs": [tensor]})

    assert status == 200
    assert answer["outputs"] == [
        {"name": "predict", "datatype": "FP64", "shape": [5], "data": diabetes.estimator.predict(rows).tolist()}
    ]


def with_input(inputs: list[dict[str, Any]], index: int, **changes: Any) -> list[dict[str, Any]]:
    return [{**tensor, **changes} if position == index else tensor for position, tensor in enumerate(inputs)]


def test_v2_bad_per_feature_inputs_are_400(penguins: Served) -> None:
    rows = json_rows(penguins.held_out[:2])
    good = columns(penguins, rows)
    names = ", ".join(feature.name for feature in penguins.features)
    cases = [
        (with_input(good, 0, datatype="FP64"), 'inputs[0].datatype "FP64" is not accepted for category feature '),
        (with_input(good, 1, datatype="BYTES"), 'inputs[1].datatype "BYTES" is not accepted for number feature '),
        (with_input(good, 0, data=["Mars", "Dream"]), 'inputs[0].data[0]: Input should be one of "Biscoe", '),
        (with_input(good, 0, data=[None, "Dream"]), "inputs[0].data[0]: Input should be one of "),
        (with_input(good, 1, data=["40", 41.0]), 'inputs[1].data[0] is "40"; FP64 data must be JSON numbers or null'),
        (with_input(good, 1, shape=[2, 2]), "inputs[1].shape [2, 2] is not accepted; expected [N] or [N, 1]"),
        (with_input(good, 1, shape=[3], data=[1.0, 2.0, 3.0]), "inputs[1] has 3 rows; every input must have"),
        (with_input(good, 2, name="beak"), f'inputs[2].name "beak" is not a feature of this model; {""}'),
        (good[:-1], "inputs: no input for sex; send one input per feature, named by it"),
        ([*good, good[0]], 'inputs[6]: feature "island" is given twice'),
        (
            [{"name": "input-0", "shape": [2, 6], "datatype": "FP64", "data": [0.0] * 12}],
            'inputs[0].name "input-0" is not a feature of this model; send one input per feature, named by it: '
            + names,
        ),
    ]
    for inputs, message in cases:
        status, answer = penguins.call(f"/v2/models/{penguins.name}/infer", {"inputs": inputs})
        assert status == 400, (inputs, answer)
        assert answer["error"].startswith(message), answer
    assert penguins.call(f"/v2/models/{penguins.name}/infer", {"inputs": good})[0] == 200


def same_rows(case: schemathesis.Case) -> schemathesis.Case:
    """Completes a positive infer body with the rules JSON Schema cannot state: every input has
    `shape[0]` values, and all inputs the same N. Any other case is left as generated."""
    if case.operation.path in INFER_PATHS and isinstance(case.body, dict):
        for tensor in case.body["inputs"]:
            tensor["data"] = tensor["data"][:1]
            tensor["shape"][0] = 1
    return case


# The HTTP contract does not depend on the engine (each engine's answers are checked above, against the
# estimator and against the response schemas): checked once, with the compiled engine.
@pytest.mark.slow
@pytest.mark.parametrize("penguins", [COMPILED], indirect=True)
@pytest.mark.parametrize("mode", MODES)
def test_penguins_api_does_what_its_schema_says(mode: str, penguins: Served) -> None:
    manifest = penguins.app.model.manifest
    check_schema_contract(penguins.app.app, manifest, mode, same_rows)
