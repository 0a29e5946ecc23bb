"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

MAX_FEATURES = 1000

# scikit-learn's trees compare features as float32: a larger magnitude would silently become infinity.
FLOAT32_MAX = 3.4028234663852886e38


def _within_float32(value: float) -> float:
    if abs(value) > FLOAT32_MAX:
        raise PydanticCustomError(
            "float32_range", "Input should be within ±3.4e38, the range the model compares features in"
        )
    return value


FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False), AfterValidator(_within_float32)]
"""A JSON number within float32 range: strings, booleans, null, NaN/Infinity and overflows are rejected."""


class PredictRequest(BaseModel):
    """One row of features, in the order the model's manifest lists them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"features": [6.1, 2.8, 4.7, 1.2]}]})

    features: list[FiniteNumber] = Field(
        max_length=MAX_FEATURES,
        description="sepal_length, sepal_width, petal_length, petal_width (cm), as JSON numbers",
    )


class PredictResponse(BaseModel):
    prediction: int = Field(description="class id: 0 setosa, 1 versicolor, 2 virginica", examples=[1])


class ModelSummary(BaseModel):
    name: str
    version: str
    runtime: str = Field(description="compiled-forest (numpy only) or scikit-learn", examples=["compiled-forest"])


class StatusResponse(BaseModel):
    status: str
    message: str
    model: ModelSummary


class ErrorResponse(BaseModel):
    error: str
