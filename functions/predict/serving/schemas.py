"""Request and response bodies of the HTTP API, and turning a /predict body into rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic_core import PydanticCustomError

from serving.errors import InvalidRequestError, describe_problems, quote
from serving.manifest import Label

MAX_FEATURES = 1000
MAX_INSTANCES = 10_000
# scikit-learn's trees compare features as float32: a larger magnitude would silently become infinity.
FLOAT32_MAX = 3.4028234663852886e38
SEED_FEATURES = [6.1, 2.8, 4.7, 1.2]


def _within_float32(value: float) -> float:
    if abs(value) > FLOAT32_MAX:
        raise PydanticCustomError(
            "float32_range", "Input should be within ±3.4e38, the range the model compares features in"
        )
    return value


FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False), AfterValidator(_within_float32)]
"""A JSON number within float32 range: strings, booleans, null, NaN/Infinity and overflows are rejected."""


class FeaturesRequest(BaseModel):
    """One row of features, in the order the model's manifest lists them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"features": [6.1, 2.8, 4.7, 1.2]}]})

    features: list[FiniteNumber] = Field(
        max_length=MAX_FEATURES,
        description="sepal_length, sepal_width, petal_length, petal_width (cm), as JSON numbers",
    )


class InstancesRequest(BaseModel):
    """A batch: each instance is a list of features in order, or an object keyed by feature name."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"instances": [[6.1, 2.8, 4.7, 1.2], [5.1, 3.5, 1.4, 0.2]]}],
        },
    )

    instances: list[Any] = Field(min_length=1, max_length=MAX_INSTANCES)


class PredictResponse(BaseModel):
    prediction: Label = Field(
        description="the class (as the model's classes hold it) or the predicted number", examples=[1]
    )
    class_name: str | None = Field(default=None, description="with ?probabilities=true", examples=["versicolor"])
    probabilities: dict[str, float] | None = Field(default=None, description="with ?probabilities=true")


class BatchPredictResponse(BaseModel):
    predictions: list[Label] = Field(description="one prediction per instance, in order", examples=[[1, 0]])
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
    rows: list[list[float]]
    single: bool


_ROW = TypeAdapter(list[FiniteNumber])


class RowParser:
    """Turns the three accepted /predict bodies into rows in the model's feature order:
    {"features": [...]}, {"instances": [[...] or {name: value}, ...]}, or {name: value, ...}."""

    def __init__(self, feature_names: Sequence[str]) -> None:
        self.feature_names = list(feature_names)
        fields: dict[str, Any] = dict.fromkeys(self.feature_names, (FiniteNumber, ...))
        self.named_row = create_model("NamedRow", __config__=ConfigDict(extra="forbid"), **fields)
        self.accepted = (
            f'{{"features": [{len(self.feature_names)} numbers]}}, {{"instances": [rows]}} '
            f"or {{{', '.join(f'{name!r}: number' for name in self.feature_names)}}}".replace("'", '"')
        )

    def _validate(self, model: Any, value: Any, location: str) -> Any:
        try:
            return model.validate_python(value) if isinstance(model, TypeAdapter) else model.model_validate(value)
        except ValidationError as error:
            raise InvalidRequestError(
                f"invalid request: {describe_problems(error.errors(), location)}; expected {self.accepted}"
            ) from error

    def _counted(self, row: list[float], location: str) -> list[float]:
        if len(row) != len(self.feature_names):
            raise InvalidRequestError(
                f"{location}: expected {len(self.feature_names)} numbers "
                f"({', '.join(self.feature_names)}), got {len(row)}"
            )
        return row

    def _row(self, value: Any, location: str) -> list[float]:
        if isinstance(value, dict):
            named = self._validate(self.named_row, value, location)
            return [getattr(named, name) for name in self.feature_names]
        if isinstance(value, list):
            return self._counted(self._validate(_ROW, value, location), location)
        raise InvalidRequestError(
            f"{location}: expected a list of {len(self.feature_names)} numbers or an object with "
            f"{', '.join(self.feature_names)} (got {quote(value)})"
        )

    def parse(self, body: Any) -> ParsedRows:
        if not isinstance(body, dict):
            raise InvalidRequestError(
                f"request body must be a JSON object (got {quote(body)}); expected {self.accepted}"
            )
        if "instances" in body:
            batch = self._validate(InstancesRequest, body, "")
            return ParsedRows([self._row(row, f"instances[{i}]") for i, row in enumerate(batch.instances)], False)
        if "features" in body:
            single = self._validate(FeaturesRequest, body, "")
            return ParsedRows([self._counted(single.features, "features")], True)
        return ParsedRows([self._row(body, "")], True)

    def openapi_body(self) -> dict[str, Any]:
        """The request body's OpenAPI description: the three shapes, exactly as `parse` accepts them."""
        number = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
        count = len(self.feature_names)
        in_order = {
            "type": "array",
            "items": number,
            "minItems": count,
            "maxItems": count,
            "description": f"{', '.join(self.feature_names)}, as JSON numbers",
        }
        by_name = {
            "title": "NamedRow",
            "type": "object",
            "properties": dict.fromkeys(self.feature_names, number),
            "required": self.feature_names,
            "additionalProperties": False,
        }

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
        named_example = dict(zip(self.feature_names, SEED_FEATURES, strict=False))
        return {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"oneOf": shapes},
                    "examples": {
                        "seed": {"summary": "one row (the seed contract)", "value": {"features": SEED_FEATURES}},
                        "batch": {
                            "summary": "a batch",
                            "value": {"instances": [[6.1, 2.8, 4.7, 1.2], named_example]},
                        },
                        "named": {"summary": "one row by feature name", "value": named_example},
                    },
                }
            },
        }
