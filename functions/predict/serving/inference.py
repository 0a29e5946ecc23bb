"""The Open Inference Protocol (KServe V2, as MLServer and Triton speak it) over REST, so that
existing inference clients can call this function unchanged.

One model, addressed by its manifest name and optionally its version. Infer takes one
input tensor of shape [N, features] (FP32, FP64 or INT64; `data` nested or flat row-major)
and returns `predict` (INT64, [N]) and, when asked for, `predict_proba` (FP64, [N, classes]),
the output names of MLServer's scikit-learn runtime. Errors are 400 {"error": ...}; an
unknown model or version is 404.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from numpy.typing import NDArray
from pydantic import BaseModel, Field, StrictBool, StrictInt, ValidationError

from serving.errors import ServiceError, describe_problems, quote
from serving.model import LoadedModel
from serving.routes import Model, json_body, run_model
from serving.schemas import FLOAT32_MAX, MAX_INSTANCES, ErrorResponse

PREDICT, PREDICT_PROBA = "predict", "predict_proba"
FLOAT_DATATYPES, INTEGER_DATATYPE = ["FP32", "FP64"], "INT64"
INPUT_DATATYPES = (*FLOAT_DATATYPES, INTEGER_DATATYPE)
# Every integer up to 2**53 in magnitude is exact in float64, the type the model is given.
LARGEST_EXACT_INTEGER = 2**53
SERVER_NAME = "iris-prediction-api"


class InferenceRequestError(ServiceError):
    """The infer request does not follow the protocol or does not fit the model."""

    status_code = 400


class ModelNotFoundError(ServiceError):
    """No model with that name, or not that version of it, is served here."""

    status_code = 404


class RequestInput(BaseModel):
    name: str
    shape: list[StrictInt]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any]


class OutputParameters(BaseModel):
    binary_data: StrictBool = False


class RequestOutput(BaseModel):
    name: str
    parameters: OutputParameters | None = None


class InferenceRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1, max_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


def served_model(model: LoadedModel, name: str, version: str | None = None) -> LoadedModel:
    manifest = model.manifest
    if name != manifest.name:
        raise ModelNotFoundError(f"model {quote(name)} is not served here; this server serves {quote(manifest.name)}")
    if version is not None and version != manifest.version:
        raise ModelNotFoundError(
            f"version {quote(version)} of model {quote(name)} is not served here; "
            f"the version served is {quote(manifest.version)}"
        )
    return model


def _parse(body: Any) -> InferenceRequest:
    try:
        return InferenceRequest.model_validate(body)
    except ValidationError as error:
        raise InferenceRequestError(f"invalid inference request: {describe_problems(error.errors())}") from error


def _flatten(data: list[Any], rows: int, columns: int) -> list[Any]:
    if all(isinstance(row, list) for row in data):
        if len(data) != rows or any(len(row) != columns for row in data):
            raise InferenceRequestError(f"inputs[0].data: nested data must be {rows} rows of {columns} values")
        return [value for row in data for value in row]
    return data


def decode_input(tensor: RequestInput, n_features: int) -> NDArray[np.float64]:
    """The input tensor as validated float64 rows; nothing is coerced from strings or booleans."""
    if tensor.datatype not in INPUT_DATATYPES:
        raise InferenceRequestError(
            f"inputs[0].datatype {quote(tensor.datatype)} is not accepted; use one of {', '.join(INPUT_DATATYPES)}"
        )
    if len(tensor.shape) != 2 or tensor.shape[1] != n_features or not 1 <= tensor.shape[0] <= MAX_INSTANCES:
        raise InferenceRequestError(
            f"inputs[0].shape {quote(tensor.shape)} is not accepted; "
            f"expected [N, {n_features}] with 1 <= N <= {MAX_INSTANCES}"
        )
    rows, columns = tensor.shape
    values = _flatten(tensor.data, rows, columns)
    if len(values) != rows * columns:
        raise InferenceRequestError(
            f"inputs[0].data has {len(values)} values; shape {quote(tensor.shape)} needs {rows * columns}"
        )
    integers = tensor.datatype == INTEGER_DATATYPE
    limit = LARGEST_EXACT_INTEGER if integers else FLOAT32_MAX
    for index, value in enumerate(values):
        # JSON (and JSON Schema's "integer") does not tell 822.0 from 822: an integral value is an integer.
        if type(value) not in (int, float) or (integers and type(value) is float and not value.is_integer()):
            kind = "integers" if integers else "numbers"
            raise InferenceRequestError(
                f"inputs[0].data[{index}] is {quote(value)}; {tensor.datatype} data must be JSON {kind}"
            )
        # Python compares an integer with the limit exactly; float64 would overflow or round first.
        if type(value) is int and abs(value) > limit:
            raise _out_of_range(index, value, limit)
    array = np.asarray(values, dtype=np.float64)
    outside = np.flatnonzero(~np.isfinite(array) | (np.abs(array) > limit))
    if outside.size:
        raise _out_of_range(int(outside[0]), values[outside[0]], limit)
    return array.reshape(rows, columns)


def _out_of_range(index: int, value: float, limit: float) -> InferenceRequestError:
    return InferenceRequestError(
        f"inputs[0].data[{index}] is {quote(value)}; values must be finite and within ±{limit:.17g}"
    )


def _requested_outputs(request: InferenceRequest) -> list[str]:
    requested = request.outputs or [RequestOutput(name=PREDICT)]
    for output in requested:
        if output.name not in (PREDICT, PREDICT_PROBA):
            raise InferenceRequestError(
                f"output {quote(output.name)} is not available; request {PREDICT} or {PREDICT_PROBA}"
            )
        if output.parameters is not None and output.parameters.binary_data:
            raise InferenceRequestError(
                "the binary tensor extension is not supported; request JSON outputs (binary_data=False)"
            )
    return [output.name for output in requested]


def infer(model: LoadedModel, request: InferenceRequest) -> InferenceResponse:
    rows = decode_input(request.inputs[0], model.n_features)
    names = _requested_outputs(request)
    predicted = run_model(model, rows.tolist(), probabilities=PREDICT_PROBA in names)
    outputs = []
    for name in names:
        if name == PREDICT:
            outputs.append(ResponseOutput(name=name, datatype="INT64", shape=[len(rows)], data=predicted.labels))
        else:
            assert predicted.probabilities is not None
            proba = predicted.probabilities
            outputs.append(
                ResponseOutput(name=name, datatype="FP64", shape=list(proba.shape), data=proba.ravel().tolist())
            )
    return InferenceResponse(
        model_name=model.manifest.name, model_version=model.manifest.version, id=request.id, outputs=outputs
    )


def metadata(model: LoadedModel) -> ModelMetadata:
    manifest = model.manifest
    return ModelMetadata(
        name=manifest.name,
        versions=[manifest.version],
        platform=manifest.serving_engine.name,
        inputs=[TensorMetadata(name="input-0", datatype="FP64", shape=[-1, model.n_features])],
        outputs=[
            TensorMetadata(name=PREDICT, datatype="INT64", shape=[-1]),
            TensorMetadata(name=PREDICT_PROBA, datatype="FP64", shape=[-1, len(manifest.classes)]),
        ],
    )


def refuse_binary_extension(request: Request) -> None:
    if "inference-header-content-length" in request.headers:
        raise InferenceRequestError(
            "the binary tensor extension is not supported; send JSON tensors (binary_data=False)"
        )


ERRORS: dict[int | str, dict[str, object]] = {status: {"model": ErrorResponse} for status in (400, 404, 415)}
INFER_EXAMPLE = {
    "id": "42",
    "inputs": [
        {"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
    ],
    "outputs": [{"name": PREDICT}, {"name": PREDICT_PROBA}],
}


def openapi_body(n_features: int) -> dict[str, Any]:
    """The infer body's OpenAPI description, as strict as the checks above. One rule JSON Schema
    cannot state: `data` holds shape[0] x shape[1] values (shape[0] rows when nested)."""

    def nullable(schema: dict[str, Any]) -> dict[str, Any]:
        return {"anyOf": [schema, {"type": "null"}]}

    def tensor(datatypes: list[str], value: dict[str, Any]) -> dict[str, Any]:
        row = {"type": "array", "items": value, "minItems": n_features, "maxItems": n_features}
        return {
            "type": "object",
            "required": ["name", "shape", "datatype", "data"],
            "properties": {
                "name": {"type": "string"},
                "shape": {
                    "type": "array",
                    "prefixItems": [
                        {"type": "integer", "minimum": 1, "maximum": MAX_INSTANCES},
                        {"type": "integer", "const": n_features},
                    ],
                    "minItems": 2,
                    "maxItems": 2,
                },
                "datatype": {"enum": datatypes},
                "parameters": nullable({"type": "object"}),
                "data": {
                    "oneOf": [
                        {"type": "array", "items": value, "minItems": 1, "description": "flat, row-major"},
                        {"type": "array", "items": row, "minItems": 1, "description": "nested: one list per row"},
                    ]
                },
            },
        }

    output = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"enum": [PREDICT, PREDICT_PROBA]},
            "parameters": nullable(
                {"type": "object", "properties": {"binary_data": {"type": "boolean", "const": False}}}
            ),
        },
    }
    schema = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": nullable({"type": "string"}),
            "parameters": nullable({"type": "object"}),
            "inputs": {
                "type": "array",
                "items": {
                    "oneOf": [
                        tensor(FLOAT_DATATYPES, {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}),
                        tensor(
                            [INTEGER_DATATYPE],
                            {"type": "integer", "minimum": -LARGEST_EXACT_INTEGER, "maximum": LARGEST_EXACT_INTEGER},
                        ),
                    ]
                },
                "minItems": 1,
                "maxItems": 1,
            },
            "outputs": nullable({"type": "array", "items": output}),
        },
    }
    return {"required": True, "content": {"application/json": {"schema": schema, "example": INFER_EXAMPLE}}}


router = APIRouter(prefix="/v2", tags=["Open Inference Protocol"], responses=ERRORS)


@router.get("", summary="Server metadata")
async def server_metadata(request: Request) -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": request.app.version, "extensions": []}


@router.get("/health/live", summary="Liveness")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", summary="Readiness: the model is loaded at start-up, so a running server is ready")
async def ready() -> dict[str, bool]:
    return {"ready": True}


@router.get("/models/{name}", summary="Model metadata")
@router.get("/models/{name}/versions/{version}", summary="Model metadata, for one version")
async def model_metadata(model: Model, name: str, version: str | None = None) -> ModelMetadata:
    return metadata(served_model(model, name, version))


@router.get("/models/{name}/ready", summary="Model readiness")
@router.get("/models/{name}/versions/{version}/ready", summary="Model readiness, for one version")
async def model_ready(model: Model, name: str, version: str | None = None) -> dict[str, Any]:
    served_model(model, name, version)
    return {"name": name, "ready": True}


@router.post(
    "/models/{name}/infer",
    summary="Inference",
    response_model_exclude_none=True,
)
@router.post(
    "/models/{name}/versions/{version}/infer",
    summary="Inference, on one version",
    response_model_exclude_none=True,
)
async def model_infer(request: Request, model: Model, name: str, version: str | None = None) -> InferenceResponse:
    # The binary extension's body is not JSON: refuse it for what it is before parsing.
    refuse_binary_extension(request)
    return infer(served_model(model, name, version), _parse(await json_body(request)))


# The infer routes' paths, for the OpenAPI body app.py gives them.
INFER_PATHS = tuple(
    route.path for route in router.routes if isinstance(route, APIRoute) and route.endpoint is model_infer
)
