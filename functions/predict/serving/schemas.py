"""Request and response bodies of the HTTP API, and turning a /predict body into rows.

The request schema is the model's: `RowParser` is built from the manifest's features, in the
order the estimator takes them. A number feature takes a finite JSON number within float32
range; a category feature takes a JSON string, one of its `categories`; JSON null is accepted
only where `allow_missing` and reaches the model as NaN. Nothing is coerced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

import numpy as np
from numpy.typing import NDArray
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    with_config,
)
from pydantic_core import PydanticCustomError

from serving.errors import InvalidRowsError, NotAnObjectError, NotARowError, WrongValueCountError, quote
from serving.limits import MAX_INSTANCES
from serving.manifest import Feature, Label, Manifest

MAX_FEATURES = 1000
# scikit-learn's trees compare features as float32: a larger magnitude would silently become infinity.
FLOAT32_MAX = 3.4028234663852886e38
# A 422 lists a category feature's accepted values, at most this many of them, each quoted short.
MAX_LISTED_CATEGORIES = 10
MAX_QUOTED_CATEGORY_CHARS = 24


def _within_float32(value: float) -> float:
    if abs(value) > FLOAT32_MAX:
        # Not mutated, equivalent: pydantic's error type is read only to skip quoting a missing field's input: no
        # client or log sees it.
        # pragma: no mutate start
        raise PydanticCustomError(
            "float32_range", "Input should be within ±3.4e38, the range the model compares features in"
        )
        # pragma: no mutate end
    return value


def _missing_as_nan(value: float | str | None) -> float | str:
    return math.nan if value is None else value


FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False), AfterValidator(_within_float32)]
"""A JSON number within float32 range: strings, booleans, null, NaN/Infinity and overflows are rejected."""


def accepted_categories(feature: Feature) -> str:
    """A category feature's accepted values for a message, bounded however many there are."""
    categories = feature.categories or []
    listed = ", ".join(quote(value, MAX_QUOTED_CATEGORY_CHARS) for value in categories[:MAX_LISTED_CATEGORIES])
    more = len(categories) - MAX_LISTED_CATEGORIES
    listed += f" and {more} more (see GET /model)" if more > 0 else ""
    return f"one of {listed}" + (" or null" if feature.allow_missing else "")


def category_checker(feature: Feature) -> Any:
    """A validator that takes a string of `feature.categories` (and null, as NaN, where missing
    values are allowed) and refuses anything else with the accepted values listed."""
    allowed = frozenset(feature.categories or [])
    message = f"Input should be {accepted_categories(feature)}"

    def check(value: Any) -> str | float:
        if type(value) is str and value in allowed:
            return value
        if value is None and feature.allow_missing:
            return math.nan
        # The message goes in the context: a template would read braces in a category as placeholders.
        # Not mutated, equivalent: pydantic's error type is read only to skip quoting a missing field's input: no
        # client or log sees it.
        raise PydanticCustomError("category", "{accepted}", {"accepted": message})  # pragma: no mutate

    return check


def value_type(feature: Feature) -> Any:
    """The type one value of `feature` is validated as."""
    if feature.type == "category":
        return Annotated[Any, PlainValidator(category_checker(feature))]
    if feature.allow_missing:
        return Annotated[FiniteNumber | None, AfterValidator(_missing_as_nan)]
    return FiniteNumber


def _described(feature: Feature) -> str:
    kind = "number" if feature.type == "number" else "category"
    return kind + (" or null" if feature.allow_missing else "")


def _typed_dict(name: str, fields: dict[str, Any]) -> Any:
    """A TypedDict with keys known only at run time. Not a model: any feature name is a valid key,
    and none can shadow a model's attribute."""
    factory: Any = TypedDict
    return factory(name, fields)


class FeaturesRequest(BaseModel):
    """One row of features, in the order the model's manifest lists them."""

    model_config = ConfigDict(extra="forbid")

    features: list[Any] = Field(max_length=MAX_FEATURES)


class InstancesRequest(BaseModel):
    """A batch: each instance is a list of features in order, or an object keyed by feature name."""

    model_config = ConfigDict(extra="forbid")

    instances: list[Any] = Field(min_length=1, max_length=MAX_INSTANCES)


class PredictResponse(BaseModel):
    prediction: Label = Field(description="the predicted class label, or a regressor's predicted value")
    class_name: str | None = Field(default=None, description="with ?probabilities=true")
    probabilities: dict[str, float] | None = Field(default=None, description="with ?probabilities=true")


class BatchPredictResponse(BaseModel):
    predictions: list[Label] = Field(description="one prediction per instance, in order")
    class_names: list[str] | None = Field(default=None, description="with ?probabilities=true")
    probabilities: list[dict[str, float]] | None = Field(default=None, description="with ?probabilities=true")


class ModelSummary(BaseModel):
    name: str
    version: str
    engine: str = Field(description="compiled (numpy only) or scikit-learn", examples=["compiled"])


class StatusResponse(BaseModel):
    status: str
    message: str
    model: ModelSummary


class ErrorResponse(BaseModel):
    error: str


@dataclass(frozen=True)
class ParsedRows:
    """Validated rows in feature order: float64 when every feature is a number, else objects
    (str for a category, float for a number, NaN for a missing value)."""

    rows: NDArray[Any]
    single: bool


class RowParser:
    """Turns the three accepted /predict bodies into rows in the model's feature order:
    {"features": [...]}, {"instances": [[...] or {name: value}, ...]}, or {name: value, ...}."""

    def __init__(self, features: Sequence[Feature]) -> None:
        self.features = list(features)
        self.feature_names = [feature.name for feature in self.features]
        self.all_numeric = all(feature.type == "number" for feature in self.features)
        self.dtype = np.float64 if self.all_numeric else object
        types = [value_type(feature) for feature in self.features]
        # Both row types are made here, from the manifest: static typing sees them as Any.
        self.row_in_order: TypeAdapter[tuple[Any, ...]] = TypeAdapter(tuple.__class_getitem__(tuple(types)))
        # Not mutated, equivalent: the TypedDict's name is in no message and no published schema (openapi_body writes
        # NamedRow itself); names and types are both made from self.features: always the same length.
        # pragma: no mutate start
        self.named_row: Any = with_config(ConfigDict(extra="forbid"))(
            _typed_dict("NamedRow", dict(zip(self.feature_names, types, strict=True)))
        )
        # pragma: no mutate end
        self.row_by_name: TypeAdapter[dict[str, Any]] = TypeAdapter(self.named_row)
        # A category feature's values as one list, for the Open Inference Protocol's one input per feature.
        self.category_columns: dict[str, TypeAdapter[list[Any]]] = {
            feature.name: TypeAdapter(list.__class_getitem__(value_type(feature)))
            for feature in self.features
            if feature.type == "category"
        }
        count = len(self.features)
        self.values = "numbers" if self.all_numeric else "values"
        self.names = ", ".join(self.feature_names)
        by_name = ", ".join(f'"{feature.name}": {_described(feature)}' for feature in self.features)
        self.accepted = f'{{"features": [{count} {self.values}]}}, {{"instances": [rows]}} or {{{by_name}}}'

    def _validate(self, adapter: Any, value: Any, location: str) -> Any:
        try:
            return adapter.validate_python(value) if isinstance(adapter, TypeAdapter) else adapter.model_validate(value)
        except ValidationError as error:
            raise InvalidRowsError(error.errors(), location, self.accepted) from error

    def _in_order(self, row: list[Any], location: str) -> tuple[Any, ...]:
        if len(row) != len(self.features):
            raise WrongValueCountError(location, self.feature_names, self.values, len(row))
        values: tuple[Any, ...] = self._validate(self.row_in_order, row, location)
        return values

    def _row(self, value: Any, location: str) -> tuple[Any, ...]:
        if isinstance(value, dict):
            named = self._validate(self.row_by_name, value, location)
            return tuple(named[name] for name in self.feature_names)
        if isinstance(value, list):
            return self._in_order(value, location)
        raise NotARowError(location, self.feature_names, self.values, value)

    def _rows(self, rows: list[tuple[Any, ...]], single: bool) -> ParsedRows:
        return ParsedRows(np.array(rows, dtype=self.dtype), single)

    def parse(self, body: Any) -> ParsedRows:
        if not isinstance(body, dict):
            raise NotAnObjectError(body, self.accepted)
        if "instances" in body:
            batch = self._validate(InstancesRequest, body, "")
            return self._rows([self._row(row, f"instances[{i}]") for i, row in enumerate(batch.instances)], False)
        if "features" in body:
            single = self._validate(FeaturesRequest, body, "")
            return self._rows([self._in_order(single.features, "features")], True)
        return self._rows([self._row(body, "")], True)

    def openapi_body(self, example: Sequence[Label | None]) -> dict[str, Any]:
        """The request body's OpenAPI description, exactly as `parse` accepts it, with `example`
        (one row in feature order) shown in each of the three shapes."""
        values = [_value_schema(feature) for feature in self.features]
        count = len(self.features)
        in_order: dict[str, Any] = {"type": "array", "minItems": count, "maxItems": count}
        # One schema for every item when they are all alike (Iris's four numbers); else one per position
        # (numbers too differ when only some of them may be missing).
        alike = all(value == values[0] for value in values)
        in_order.update({"items": values[0]} if alike else {"prefixItems": values, "items": False})
        in_order["description"] = f"{self.names}, in this order"
        # Not mutated, equivalent: names and value schemas are both made from self.features: always the same length.
        # pragma: no mutate start
        by_name = {
            "title": "NamedRow",
            "type": "object",
            "properties": dict(zip(self.feature_names, values, strict=True)),
            "required": self.feature_names,
            "additionalProperties": False,
        }
        # pragma: no mutate end

        def only(key: str, value: dict[str, Any], title: str) -> dict[str, Any]:
            return {
                "title": title,
                "type": "object",
                "properties": {key: value},
                "required": [key],
                "additionalProperties": False,
            }

        shapes = [
            only("features", in_order, "FeaturesRequest"),
            only(
                "instances",
                {"type": "array", "items": {"oneOf": [in_order, by_name]}, "minItems": 1, "maxItems": MAX_INSTANCES},
                "InstancesRequest",
            ),
            by_name,
        ]
        row = list(example)
        # Not mutated, equivalent: the example is the manifest's, whose validator makes it one value per feature.
        named_example = dict(zip(self.feature_names, row, strict=True))  # pragma: no mutate
        return {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"oneOf": shapes},
                    "examples": {
                        "features": {"summary": "one row, in feature order", "value": {"features": row}},
                        "batch": {"summary": "a batch", "value": {"instances": [row, named_example]}},
                        "named": {"summary": "one row by feature name", "value": named_example},
                    },
                }
            },
        }


def _value_schema(feature: Feature) -> dict[str, Any]:
    """One value of `feature` in JSON Schema, as `value_type` validates it."""
    schema: dict[str, Any] = (
        {"type": "string", "enum": feature.categories}
        if feature.type == "category"
        else {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
    )
    return {"anyOf": [schema, {"type": "null"}]} if feature.allow_missing else schema


def response_schemas(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """The /predict responses' OpenAPI schemas for this model: its classes and class names, or a number."""
    single: dict[str, Any] = {}
    batch: dict[str, Any] = {}
    if manifest.task == "regression":
        label: dict[str, Any] = {"type": "number", "description": "the predicted value"}
    else:
        # Not mutated, equivalent: the manifest's validator refuses class_names and classes of different lengths.
        classes = zip(manifest.classes, manifest.class_names, strict=True)  # pragma: no mutate
        label = {
            "enum": manifest.classes,
            "description": f"the class: {', '.join(f'{quote(c)} {n}' for c, n in classes)}",
        }
        name = {"enum": manifest.class_names}
        probabilities = {
            "type": "object",
            "properties": {name: {"type": "number", "minimum": 0, "maximum": 1} for name in manifest.class_names},
            "required": manifest.class_names,
            "additionalProperties": False,
        }
        single = {"class_name": name, "probabilities": probabilities}
        batch = {
            "class_names": {"type": "array", "items": name},
            "probabilities": {"type": "array", "items": probabilities},
        }

    def response(title: str, key: str, value: dict[str, Any], with_probabilities: dict[str, Any]) -> dict[str, Any]:
        extra = {
            key: {**schema, "description": "with ?probabilities=true"} for key, schema in with_probabilities.items()
        }
        return {
            "title": title,
            "type": "object",
            "properties": {key: value, **extra},
            "required": [key],
            "additionalProperties": False,
        }

    return {
        "PredictResponse": response("PredictResponse", "prediction", label, single),
        "BatchPredictResponse": response(
            "BatchPredictResponse", "predictions", {"type": "array", "items": label}, batch
        ),
    }
