"""Bad input gets a 4xx naming what was wrong and what is accepted; nothing is coerced."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from build import PROJECT_ROOT
from build.spec import load_spec
from local.lambda_runtime import LambdaContext
from serving.errors import BadRequestError, InvalidRequestError
from serving.inference import RequestInput, decode_column
from serving.manifest import Feature, Label, Manifest
from serving.schemas import RowParser, error_responses, error_schemas, response_schemas
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


# The JSON Schemas /openapi.json publishes for /predict are promises: the request schema accepts exactly the bodies
# the API accepts, and the response schemas describe the model's answers and nothing else. Checked with jsonschema
# (the validator clients use) against generated bodies whose validity the generator knows, and against the schemas
# written out from the model specs.


# float32's largest value: the model compares features as float32 (from numpy, not the code under test).
FLOAT32_MAX = float(np.finfo(np.float32).max)
BEYOND_FLOAT32 = float(np.nextafter(np.float64(FLOAT32_MAX), math.inf))
# docs/api.md: "a batch (up to 10,000 rows ...)".
MAX_ROWS = 10_000
NUMBER = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
IRIS = load_spec(PROJECT_ROOT / "models" / "iris.toml")
PENGUINS = load_spec(PROJECT_ROOT / "models" / "penguins.toml")
IRIS_NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_CLASS_NAMES = ["setosa", "versicolor", "virginica"]
# The top-level keys of the two list shapes: a feature of that name would make a body ambiguous.
SHAPE_KEYS = ("features", "instances")


def accepted(parser: RowParser, body: Any) -> bool:
    try:
        parser.parse(body)
    except InvalidRequestError:
        return False
    return True


def request_schema(parser: RowParser) -> Draft202012Validator:
    body = parser.openapi_body([None] * len(parser.features))
    return Draft202012Validator(body["content"]["application/json"]["schema"])


# Generated models and bodies: each body is built valid, then at most one corruption the generator
# knows makes it invalid, so the expected verdict comes from the generator, not from the code.

feature_names = st.lists(
    st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(lambda name: name not in SHAPE_KEYS),
    min_size=1,
    max_size=4,
    unique=True,
)
category_values = st.lists(
    st.text(alphabet="abcXYZ {}\"'", min_size=1, max_size=4), min_size=1, max_size=3, unique=True
)


@st.composite
def features(draw: st.DrawFn) -> list[Feature]:
    made = []
    for name in draw(feature_names):
        if draw(st.booleans()):
            made.append(
                Feature(name=name, type="category", categories=draw(category_values), allow_missing=draw(st.booleans()))
            )
        else:
            made.append(Feature(name=name, allow_missing=draw(st.booleans())))
    return made


def valid_value(feature: Feature) -> st.SearchStrategy[Any]:
    if feature.type == "category":
        values: st.SearchStrategy[Any] = st.sampled_from(feature.categories or [])
    else:
        values = st.one_of(
            st.floats(min_value=-FLOAT32_MAX, max_value=FLOAT32_MAX),
            st.sampled_from([FLOAT32_MAX, -FLOAT32_MAX, 0]),
            st.integers(min_value=-(2**53), max_value=2**53),
        )
    return st.one_of(values, st.none()) if feature.allow_missing else values


def invalid_value(feature: Feature) -> st.SearchStrategy[Any]:
    refused: list[st.SearchStrategy[Any]] = [st.booleans(), st.just([]), st.just({})]
    if not feature.allow_missing:
        refused.append(st.none())
    if feature.type == "category":
        categories = feature.categories or []
        refused += [
            st.text(max_size=4).filter(lambda text: text not in categories),
            st.floats(allow_nan=False),
            st.integers(),
        ]
    else:
        refused += [
            st.floats(min_value=BEYOND_FLOAT32, allow_infinity=False),
            st.floats(max_value=-BEYOND_FLOAT32, allow_infinity=False),
            st.sampled_from([10**39, -(10**39)]),
            st.text(max_size=4),
        ]
    return st.one_of(refused)


def in_order(data: st.DataObject, model: list[Feature]) -> list[Any]:
    return [data.draw(valid_value(feature)) for feature in model]


def by_name(data: st.DataObject, model: list[Feature]) -> dict[str, Any]:
    return {feature.name: data.draw(valid_value(feature)) for feature in model}


def row(data: st.DataObject, model: list[Feature]) -> list[Any] | dict[str, Any]:
    return in_order(data, model) if data.draw(st.booleans()) else by_name(data, model)


def corrupt_row(data: st.DataObject, model: list[Feature], good: list[Any] | dict[str, Any]) -> Any:
    """`good` made invalid in one way: a refused value, a value or name too many or too few, or not a row."""
    position = data.draw(st.integers(0, len(model) - 1))
    feature = model[position]
    way = data.draw(st.sampled_from(["value", "missing", "extra", "not a row"]))
    if way == "not a row":
        return data.draw(st.one_of(st.none(), st.floats(allow_nan=False), st.text(max_size=3), st.booleans()))
    if isinstance(good, list):
        bad_list = list(good)
        if way == "value":
            bad_list[position] = data.draw(invalid_value(feature))
        elif way == "missing":
            del bad_list[position]
        else:
            bad_list.insert(position, data.draw(valid_value(feature)))
        return bad_list
    bad = dict(good)
    if way == "value":
        bad[feature.name] = data.draw(invalid_value(feature))
    elif way == "missing":
        del bad[feature.name]
    else:
        extra = data.draw(st.from_regex(r"[A-Z]{1,3}", fullmatch=True))
        bad[extra] = data.draw(valid_value(feature))
    return bad


def body(data: st.DataObject, model: list[Feature]) -> tuple[Any, bool]:
    """A /predict body in one of the three shapes and whether it is valid."""
    corrupt = data.draw(st.booleans())
    if corrupt and data.draw(st.integers(0, 9)) == 0:
        not_an_object = st.one_of(st.none(), st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=2))
        return data.draw(not_an_object), False
    shape = data.draw(st.sampled_from(["features", "instances", "named"]))
    if shape == "features":
        good_row = in_order(data, model)
        one_row = corrupt_row(data, model, good_row) if corrupt else good_row
        return {"features": one_row}, not corrupt
    if shape == "named":
        good_named = by_name(data, model)
        return (corrupt_row(data, model, good_named) if corrupt else good_named), not corrupt
    rows = [row(data, model) for _ in range(data.draw(st.integers(1, 3)))]
    if corrupt:
        way = data.draw(st.sampled_from(["row", "none", "extra key"]))
        if way == "none":
            return {"instances": []}, False
        if way == "extra key":
            return {"instances": rows, "features": rows[0]}, False
        index = data.draw(st.integers(0, len(rows) - 1))
        rows[index] = corrupt_row(data, model, rows[index])
    return {"instances": rows}, not corrupt


@given(model=features(), data=st.data())
def test_the_published_request_schema_accepts_exactly_what_the_api_accepts(
    model: list[Feature], data: st.DataObject
) -> None:
    parser = RowParser(model)
    request, valid = body(data, model)

    assert accepted(parser, request) is valid
    assert request_schema(parser).is_valid(request) is valid


@pytest.mark.parametrize(
    ("row", "valid"), [([1.0, None], True), ([None, 1.0], False), ([None, None], False), ([1.0, 2.0], True)]
)
def test_numbers_of_which_only_some_may_be_missing_are_described_position_by_position(
    row: list[float | None], valid: bool
) -> None:
    """Found by the fuzzer above: all numbers, but only the second may be
    missing; the published schema had given every position the first one's schema."""
    parser = RowParser([Feature(name="q"), Feature(name="l3", allow_missing=True)])

    for request in ({"features": row}, {"instances": [[0.5, 0.5], row]}):
        assert accepted(parser, request) is valid
        assert request_schema(parser).is_valid(request) is valid


# The schemas written out from the specs (models/*.toml) and the float32 range.


def test_iris_request_schema_is_four_numbers_in_order_or_by_name() -> None:
    example = [6.1, 2.8, 4.7, 1.2]
    in_order_row = {
        "type": "array",
        "minItems": 4,
        "maxItems": 4,
        "items": NUMBER,
        "description": "sepal_length, sepal_width, petal_length, petal_width, in this order",
    }
    named_row = {
        "title": "NamedRow",
        "type": "object",
        "properties": dict.fromkeys(IRIS_NAMES, NUMBER),
        "required": IRIS_NAMES,
        "additionalProperties": False,
    }
    named_example = dict(zip(IRIS_NAMES, example, strict=True))

    assert RowParser(IRIS.features).openapi_body(example) == {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {
                            "title": "FeaturesRequest",
                            "type": "object",
                            "properties": {"features": in_order_row},
                            "required": ["features"],
                            "additionalProperties": False,
                        },
                        {
                            "title": "InstancesRequest",
                            "type": "object",
                            "properties": {
                                "instances": {
                                    "type": "array",
                                    "items": {"oneOf": [in_order_row, named_row]},
                                    "minItems": 1,
                                    "maxItems": MAX_ROWS,
                                }
                            },
                            "required": ["instances"],
                            "additionalProperties": False,
                        },
                        named_row,
                    ]
                },
                "examples": {
                    "features": {"summary": "one row, in feature order", "value": {"features": example}},
                    "batch": {"summary": "a batch", "value": {"instances": [example, named_example]}},
                    "named": {"summary": "one row by feature name", "value": named_example},
                },
            }
        },
    }


def test_penguins_rows_in_order_are_typed_by_position_with_null_where_missing_is_allowed() -> None:
    island = {"type": "string", "enum": ["Biscoe", "Dream", "Torgersen"]}
    measure = {"anyOf": [NUMBER, {"type": "null"}]}
    sex = {"anyOf": [{"type": "string", "enum": ["female", "male"]}, {"type": "null"}]}
    names = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]

    schema = RowParser(PENGUINS.features).openapi_body([None] * 6)["content"]["application/json"]["schema"]
    features_request, _, named_row = schema["oneOf"]

    assert features_request["properties"]["features"] == {
        "type": "array",
        "minItems": 6,
        "maxItems": 6,
        "prefixItems": [island, measure, measure, measure, measure, sex],
        "items": False,
        "description": f"{', '.join(names)}, in this order",
    }
    assert named_row["properties"] == {"island": island, **dict.fromkeys(names[1:5], measure), "sex": sex}


def manifest(task: str, classes: list[Label], class_names: list[str]) -> Manifest:
    return Manifest(
        schema_version=2,
        name="m",
        version="1",
        file="model.joblib",
        sha256="0" * 64,
        task=task,
        estimator="sklearn.ensemble.RandomForestClassifier",
        features=IRIS.features,
        class_names=class_names,
        classes=classes,
        example=[6.1, 2.8, 4.7, 1.2],
        training={},
        metrics={},
        libraries={},
        fingerprint="f",
    )


WITH_PROBABILITIES = "with ?probabilities=true"


def test_iris_responses_are_its_classes_and_class_names_with_probabilities_in_zero_one() -> None:
    label = {"enum": [0, 1, 2], "description": "the class: 0 setosa, 1 versicolor, 2 virginica"}
    class_name = {"enum": IRIS_CLASS_NAMES}
    probability = {"type": "number", "minimum": 0, "maximum": 1}
    probabilities = {
        "type": "object",
        "properties": dict.fromkeys(IRIS_CLASS_NAMES, probability),
        "required": IRIS_CLASS_NAMES,
        "additionalProperties": False,
    }

    assert response_schemas(manifest("classification", [0, 1, 2], IRIS_CLASS_NAMES)) == {
        "PredictResponse": {
            "title": "PredictResponse",
            "type": "object",
            "properties": {
                "prediction": label,
                "class_name": {**class_name, "description": WITH_PROBABILITIES},
                "probabilities": {**probabilities, "description": WITH_PROBABILITIES},
            },
            "required": ["prediction"],
            "additionalProperties": False,
        },
        "BatchPredictResponse": {
            "title": "BatchPredictResponse",
            "type": "object",
            "properties": {
                "predictions": {"type": "array", "items": label},
                "class_names": {"type": "array", "items": class_name, "description": WITH_PROBABILITIES},
                "probabilities": {"type": "array", "items": probabilities, "description": WITH_PROBABILITIES},
            },
            "required": ["predictions"],
            "additionalProperties": False,
        },
    }


def test_a_regressors_responses_are_numbers_only() -> None:
    value = {"type": "number", "description": "the predicted value"}

    assert response_schemas(manifest("regression", [], [])) == {
        "PredictResponse": {
            "title": "PredictResponse",
            "type": "object",
            "properties": {"prediction": value},
            "required": ["prediction"],
            "additionalProperties": False,
        },
        "BatchPredictResponse": {
            "title": "BatchPredictResponse",
            "type": "object",
            "properties": {"predictions": {"type": "array", "items": value}},
            "required": ["predictions"],
            "additionalProperties": False,
        },
    }


def test_string_classes_are_quoted_in_the_description() -> None:
    schema = response_schemas(manifest("classification", ["Adelie", "Gentoo"], ["Adelie", "Gentoo"]))

    assert schema["PredictResponse"]["properties"]["prediction"] == {
        "enum": ["Adelie", "Gentoo"],
        "description": 'the class: "Adelie" Adelie, "Gentoo" Gentoo',
    }


# docs/api.md's batch answer with probabilities, and answers of the wrong shape.
DOCUMENTED_BATCH = {
    "predictions": [1, 0],
    "class_names": ["versicolor", "setosa"],
    "probabilities": [
        {"setosa": 0.0, "versicolor": 1.0, "virginica": 0.0},
        {"setosa": 1.0, "versicolor": 0.0, "virginica": 0.0},
    ],
}


def single_answer(class_name: str = "versicolor", **probabilities: float) -> dict[str, Any]:
    return {"prediction": 1, "class_name": class_name, "probabilities": probabilities}


@pytest.mark.parametrize(
    ("title", "answer", "valid"),
    [
        ("PredictResponse", {"prediction": 1}, True),
        ("PredictResponse", single_answer(setosa=0.0, versicolor=0.75, virginica=0.25), True),
        ("BatchPredictResponse", DOCUMENTED_BATCH, True),
        ("PredictResponse", {"prediction": 3}, False),
        ("PredictResponse", {"prediction": "1"}, False),
        ("PredictResponse", {}, False),
        ("PredictResponse", {"prediction": 1, "confidence": 0.9}, False),
        ("PredictResponse", single_answer("iris", setosa=0.0, versicolor=0.75, virginica=0.25), False),
        ("PredictResponse", single_answer(setosa=0.0, versicolor=1.5, virginica=0.0), False),
        ("PredictResponse", single_answer(setosa=-0.5, versicolor=1.0, virginica=0.5), False),
        ("PredictResponse", single_answer(setosa=0.0, versicolor=1.0), False),
        ("PredictResponse", single_answer(setosa=0.0, versicolor=1.0, virginica=0.0, x=0.0), False),
        ("BatchPredictResponse", {"predictions": 1}, False),
        ("BatchPredictResponse", {**DOCUMENTED_BATCH, "class_names": "versicolor"}, False),
        ("BatchPredictResponse", {**DOCUMENTED_BATCH, "probabilities": [{"setosa": 2.0}]}, False),
    ],
)
def test_iris_answers_validate_and_wrong_shapes_do_not(title: str, answer: dict[str, Any], valid: bool) -> None:
    schema = response_schemas(manifest("classification", [0, 1, 2], IRIS_CLASS_NAMES))[title]

    assert Draft202012Validator(schema).is_valid(answer) is valid


# Request validation at its edges: the float32 bound exactly, a long list of categories, missing values, and the
# accepted shapes.


COLOURS = [f"c{i}" for i in range(12)]


def refusal(parser: RowParser, body: object) -> str:
    with pytest.raises(InvalidRequestError) as refused:
        parser.parse(body)
    return str(refused.value)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_float32_range_is_accepted_up_to_its_largest_value_and_no_further(sign: float) -> None:
    parser = RowParser([Feature(name="x")])
    largest = sign * FLOAT32_MAX
    beyond = float(np.nextafter(largest, sign * math.inf))

    assert parser.parse({"features": [largest]}).rows.tolist() == [[largest]]
    assert "features[0]: Input should be within ±3.4e38, the range the model compares" in refusal(
        parser, {"features": [beyond]}
    )


def test_a_long_category_list_is_cut_after_ten_and_says_how_many_more() -> None:
    parser = RowParser([Feature(name="colour", type="category", categories=COLOURS, allow_missing=True)])
    listed = ", ".join(f'"{colour}"' for colour in COLOURS[:10])

    message = refusal(parser, {"features": ["mauve"]})

    assert f"features[0]: Input should be one of {listed} and 2 more (see GET /model) or null" in message


@pytest.mark.parametrize("count", [1, 9, 10, 11, 12, 25])
def test_at_most_ten_categories_are_listed_then_how_many_more(count: int) -> None:
    categories = [f"c{index}" for index in range(count)]
    parser = RowParser([Feature(name="colour", type="category", categories=categories)])
    listed = ", ".join(f'"{category}"' for category in categories[:10])
    more = f" and {count - 10} more (see GET /model)" if count > 10 else ""

    message = refusal(parser, {"features": ["mauve"]})

    assert f"features[0]: Input should be one of {listed}{more} (got " in message


def test_ten_categories_are_listed_whole_and_null_only_where_missing_values_are_allowed() -> None:
    parser = RowParser([Feature(name="colour", type="category", categories=COLOURS[:10])])
    listed = ", ".join(f'"{colour}"' for colour in COLOURS[:10])

    message = refusal(parser, {"features": [None]})

    assert f"features[0]: Input should be one of {listed}" in message
    assert "more" not in message.split("expected")[0]
    assert "or null" not in message


def test_missing_values_become_nan_only_where_allowed() -> None:
    features = [
        Feature(name="size", allow_missing=True),
        Feature(name="colour", type="category", categories=["red"], allow_missing=True),
        Feature(name="weight"),
    ]
    parser = RowParser(features)

    rows = parser.parse({"size": None, "colour": None, "weight": 2.5}).rows

    assert rows.dtype == object
    assert math.isnan(rows[0, 0])
    assert math.isnan(rows[0, 1])
    assert rows[0, 2] == 2.5
    assert "features[2]" in refusal(parser, {"features": [1.0, "red", None]})


def test_the_accepted_shapes_name_every_feature_and_what_it_takes() -> None:
    parser = RowParser(
        [
            Feature(name="colour", type="category", categories=["red"], allow_missing=True),
            Feature(name="size"),
        ]
    )

    message = refusal(parser, {"features": ["red"]})

    assert message == "features: expected 2 values (colour, size), got 1"
    assert refusal(parser, {"features": ["red", "big"]}).endswith(
        'expected {"features": [2 values]}, {"instances": [rows]} or {"colour": category or null, "size": number}'
    )


def test_an_all_numeric_model_takes_numbers_as_float64() -> None:
    parser = RowParser([Feature(name="a"), Feature(name="b")])

    parsed = parser.parse({"instances": [[1, 2.5], {"b": 4, "a": 3}]})

    assert parsed.rows.dtype == np.float64
    assert parsed.rows.tolist() == [[1.0, 2.5], [3.0, 4.0]]
    assert parsed.single is False
    assert parser.parse({"a": 1, "b": 2}).single is True
    assert refusal(parser, {"features": [1]}) == "features: expected 2 numbers (a, b), got 1"


def test_long_categories_are_quoted_short_so_ten_and_the_count_of_the_rest_fit_the_message() -> None:
    # Twelve 40-character categories: quoted whole, ten of them would pass the 400 characters a
    # problem's text may take, and the "and 2 more" pointing at GET /model would be cut off.
    categories = [f"{index:02d}" + "x" * 38 for index in range(12)]
    parser = RowParser([Feature(name="colour", type="category", categories=categories)])

    message = refusal(parser, {"features": ["mauve"]})

    assert all(f'"{category[:10]}' in message for category in categories[:10])
    assert categories[0] not in message
    assert '"10x' not in message
    assert "and 2 more (see GET /model)" in message


def test_the_open_inference_protocol_reads_each_category_feature_as_its_own_column() -> None:
    """/v2 takes one tensor per feature: a category feature's BYTES tensor is validated as a list
    of that feature's categories (a number feature's is not one), its refusals naming the tensor."""
    features = [
        Feature(name="x"),
        Feature(name="colour", type="category", categories=COLOURS[:3]),
        Feature(name="size", type="category", categories=["S", "M"], allow_missing=True),
    ]
    parser = RowParser(features)
    colour = RequestInput(name="colour", shape=[3], datatype="BYTES", data=["c2", "c0", "c2"])
    sizes = RequestInput(name="size", shape=[3, 1], datatype="BYTES", data=["M", None, "S"])

    assert decode_column(colour, parser.codecs[1], "inputs[1]").tolist() == ["c2", "c0", "c2"]
    medium, missing, small = decode_column(sizes, parser.codecs[2], "inputs[2]").tolist()
    assert (medium, small) == ("M", "S")
    assert math.isnan(missing)  # a missing value, as the engines read one
    unknown = RequestInput(name="colour", shape=[2], datatype="BYTES", data=["c0", "S"])
    with pytest.raises(
        BadRequestError, match=r'^inputs\[1\]\.data\[1\]: Input should be one of "c0", "c1", "c2" \(got "S"\)$'
    ):
        decode_column(unknown, parser.codecs[1], "inputs[1]")


@pytest.mark.parametrize(
    ("instance", "quoted"), [(5, "5"), ("row", '"row"'), (True, "true"), (None, "null"), (2.5, "2.5")]
)
def test_an_instance_that_is_neither_a_list_nor_an_object_is_refused_quoting_it(instance: object, quoted: str) -> None:
    parser = RowParser([Feature(name="a"), Feature(name="b")])

    assert refusal(parser, {"instances": [[1.0, 2.0], instance]}) == (
        f"instances[1]: expected a list of 2 numbers or an object with a, b (got {quoted})"
    )


TWO_FEATURE_SHAPES = '{"features": [2 numbers]}, {"instances": [rows]} or {"a": number, "b": number}'


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        ({"instances": []}, "instances: List should have at least 1 item after validation, not 0 (got [])"),
        ({"instances": "x"}, 'instances: Input should be a valid list (got "x")'),
        ({"features": "abc"}, 'features: Input should be a valid list (got "abc")'),
        ({"features": [1.0, 2.0], "extra": 1}, "extra: Extra inputs are not permitted (got 1)"),
    ],
)
def test_a_body_of_the_wrong_shape_is_refused_at_its_own_key_naming_the_accepted_shapes(
    body: dict[str, object], refused: str
) -> None:
    parser = RowParser([Feature(name="a"), Feature(name="b")])

    assert refusal(parser, body) == f"invalid request: {refused}; expected {TWO_FEATURE_SHAPES}"


MODEL = "iris-random-forest"


def ask(app_module: ModuleType, context: LambdaContext, **event_args: Any) -> tuple[int, Any]:
    response = app_module.handler(http_api_event(**event_args), context)
    return response["statusCode"], response_json(response) if response.get("body") else None


def tensor_body(data: list[Any], datatype: str, rows: int = 1) -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "shape": [rows, 4], "datatype": datatype, "data": data}]}


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
        ("/v2/models/{name}/infer", tensor_body([6.1, 2.8, 4.7, 1.2], "BYTES")),
        ("/v2/models/{name}/infer", {**tensor_body([6, 3, 5, 2], "INT64"), "outputs": [{"name": "logits"}]}),
    ],
)
def test_the_schema_refuses_what_validation_refuses(
    path: str, body: Any, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    schema = openapi(app_module, lambda_context)["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    served = path.replace("{name}", MODEL)

    status, _ = ask(app_module, lambda_context, path=served, body=body)

    assert status in (400, 422)
    assert not Draft202012Validator(schema["schema"]).is_valid(body)


def test_every_error_status_is_described_as_the_json_error_body() -> None:
    """Routes describe their errors with error_responses at import, before a test can reach them:
    the description is checked here, resolved against the component it names."""
    responses = error_responses(400, 413)
    components = error_schemas()

    assert set(responses) == {400, 413}
    for response in responses.values():
        reference = response["content"]["application/json"]["schema"]["$ref"]
        assert reference.startswith("#/components/schemas/")
        body = components[reference.removeprefix("#/components/schemas/")]
        assert body["properties"]["error"]["type"] == "string"
        assert body["required"] == ["error"]
