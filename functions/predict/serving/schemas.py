"""Request and response bodies of the HTTP API, and turning a /predict body into rows.

The request schema is the model's: `RowParser` is built from the manifest's features, in the
order the estimator takes them, and each value is validated by its feature's codec
(serving/codecs/: a number feature takes a finite JSON number within float32 range, a category
feature one of its `categories`); JSON null is accepted only where `allow_missing` and reaches
the model as NaN. Nothing is coerced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from pydantic.json_schema import DefsRef, GenerateJsonSchema

from serving.codecs import all_numeric, codec_for
from serving.errors import InvalidRequestError, describe_problems, quote
from serving.limits import MAX_INSTANCES
from serving.manifest import Feature, Label, Manifest

MAX_FEATURES = 1000


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


# Where an OpenAPI document keeps its component schemas.
COMPONENTS = "#/components/schemas/"


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of a route's error responses with `statuses`: an ErrorResponse body
    (`error_schemas` is its schema). A reference rather than FastAPI's `model`, for which
    FastAPI builds a serializer per route and status at start-up, and again at the route's first
    request, only to describe it."""
    body = {"application/json": {"schema": {"$ref": f"{COMPONENTS}{ErrorResponse.__name__}"}}}
    return {status: {"content": body} for status in statuses}


def error_schemas() -> dict[str, dict[str, Any]]:
    """ErrorResponse's OpenAPI component schema, generated as FastAPI generates its own."""
    # Not mutated, equivalent: ErrorResponse refers to no other schema, so no reference is written.
    generator = GenerateJsonSchema(ref_template=COMPONENTS + "{model}")  # pragma: no mutate
    adapter = TypeAdapter(ErrorResponse)
    _, definitions = generator.generate_definitions([(ErrorResponse.__name__, "serialization", adapter.core_schema)])
    return {ErrorResponse.__name__: definitions[DefsRef(ErrorResponse.__name__)]}


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
        self.codecs = [codec_for(feature) for feature in self.features]
        self.feature_names = [feature.name for feature in self.features]
        self.all_numeric = all_numeric(self.features)
        self.dtype = np.float64 if self.all_numeric else object
        types = [codec.json_type for codec in self.codecs]
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
        count = len(self.features)
        self.values = "numbers" if self.all_numeric else "values"
        self.names = ", ".join(self.feature_names)
        by_name = ", ".join(f'"{codec.feature.name}": {codec.describe()}' for codec in self.codecs)
        self.accepted = f'{{"features": [{count} {self.values}]}}, {{"instances": [rows]}} or {{{by_name}}}'

    def _validate(self, adapter: Any, value: Any, location: str) -> Any:
        try:
            return adapter.validate_python(value) if isinstance(adapter, TypeAdapter) else adapter.model_validate(value)
        except ValidationError as error:
            problems = describe_problems(error.errors(), location)
            raise InvalidRequestError(f"invalid request: {problems}; expected {self.accepted}") from error

    def _in_order(self, row: list[Any], location: str) -> tuple[Any, ...]:
        if len(row) != len(self.features):
            raise InvalidRequestError(
                f"{location}: expected {len(self.features)} {self.values} ({self.names}), got {len(row)}"
            )
        values: tuple[Any, ...] = self._validate(self.row_in_order, row, location)
        return values

    def _row(self, value: Any, location: str) -> tuple[Any, ...]:
        if isinstance(value, dict):
            named = self._validate(self.row_by_name, value, location)
            return tuple(named[name] for name in self.feature_names)
        if isinstance(value, list):
            return self._in_order(value, location)
        raise InvalidRequestError(
            f"{location}: expected a list of {len(self.features)} {self.values} or an object with "
            f"{self.names} (got {quote(value)})"
        )

    def _rows(self, rows: list[tuple[Any, ...]], single: bool) -> ParsedRows:
        return ParsedRows(np.array(rows, dtype=self.dtype), single)

    def parse(self, body: Any) -> ParsedRows:
        if not isinstance(body, dict):
            raise InvalidRequestError(
                f"request body must be a JSON object (got {quote(body)}); expected {self.accepted}"
            )
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
        values = [codec.json_schema() for codec in self.codecs]
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
