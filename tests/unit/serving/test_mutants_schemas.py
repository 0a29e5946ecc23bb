"""The JSON Schemas /openapi.json publishes for /predict are promises: the request schema accepts
exactly the bodies the API accepts, and the response schemas describe the model's answers and
nothing else. Checked with jsonschema (the validator clients use) against generated bodies whose
validity the generator knows, and against the schemas written out from the model specs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from build import PROJECT_ROOT
from build.spec import load_spec
from serving.errors import InvalidRequestError
from serving.manifest import Feature, Label, Manifest
from serving.schemas import RowParser, response_schemas

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
    """Found by the fuzzer above under `make mutate`: all numbers, but only the second may be
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
