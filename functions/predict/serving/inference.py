"""The Open Inference Protocol (KServe V2, as MLServer and Triton speak it) over REST, so that
existing inference clients can call this function unchanged.

One model, addressed by its manifest name and optionally its version. Infer takes one
input tensor of shape [N, features] (FP32, FP64 or INT64; `data` nested or flat row-major)
and returns `predict` (INT64, [N]) and, when asked for, `predict_proba` (FP64, [N, classes]),
the output names of MLServer's scikit-learn runtime. Errors are 400 {"error": ...}; an
unknown model or version is 404.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Request
from numpy.typing import NDArray
from pydantic import BaseModel, Field, StrictInt, ValidationError

from serving.errors import ServiceError, check_json_content_type, describe_problems
from serving.model import LoadedModel
from serving.routes import Model, run_model
from serving.schemas import FLOAT32_MAX, MAX_INSTANCES, ErrorResponse

PREDICT, PREDICT_PROBA = "predict", "predict_proba"
INPUT_DATATYPES = ("FP32", "FP64", "INT64")
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


class RequestOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


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
        raise ModelNotFoundError(f"model {name!r} is not served here; this server serves {manifest.name!r}")
    if version is not None and version != manifest.version:
        raise ModelNotFoundError(
            f"version {version!r} of model {name!r} is not served here; the version served is {manifest.version!r}"
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
            f"inputs[0].datatype {tensor.datatype!r} is not accepted; use one of {', '.join(INPUT_DATATYPES)}"
        )
    if len(tensor.shape) != 2 or tensor.shape[1] != n_features or not 1 <= tensor.shape[0] <= MAX_INSTANCES:
        raise InferenceRequestError(
            f"inputs[0].shape {tensor.shape} is not accepted; expected [N, {n_features}] with 1 <= N <= {MAX_INSTANCES}"
        )
    rows, columns = tensor.shape
    values = _flatten(tensor.data, rows, columns)
    if len(values) != rows * columns:
        raise InferenceRequestError(
            f"inputs[0].data has {len(values)} values; shape {tensor.shape} needs {rows * columns}"
        )
    accepted = (int,) if tensor.datatype == "INT64" else (int, float)
    wrong = next((i for i, value in enumerate(values) if type(value) not in accepted), None)
    if wrong is not None:
        kind = "integers" if tensor.datatype == "INT64" else "numbers"
        raise InferenceRequestError(
            f"inputs[0].data[{wrong}] is {values[wrong]!r}; {tensor.datatype} data must be JSON {kind}"
        )
    limit = LARGEST_EXACT_INTEGER if tensor.datatype == "INT64" else FLOAT32_MAX
    array = np.asarray(values, dtype=np.float64)
    outside = np.flatnonzero(~np.isfinite(array) | (np.abs(array) > limit))
    if outside.size:
        raise InferenceRequestError(
            f"inputs[0].data[{outside[0]}] is {values[outside[0]]!r}; values must be finite and within ±{limit:.4g}"
        )
    return array.reshape(rows, columns)


def _requested_outputs(request: InferenceRequest) -> list[str]:
    requested = request.outputs or [RequestOutput(name=PREDICT)]
    for output in requested:
        if output.name not in (PREDICT, PREDICT_PROBA):
            raise InferenceRequestError(
                f"output {output.name!r} is not available; request {PREDICT} or {PREDICT_PROBA}"
            )
        if (output.parameters or {}).get("binary_data"):
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
        platform=manifest.serving_runtime.name,
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
INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}, "example": INFER_EXAMPLE}},
    }
}
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
    openapi_extra=INFER_BODY,
)
@router.post(
    "/models/{name}/versions/{version}/infer",
    summary="Inference, on one version",
    response_model_exclude_none=True,
    openapi_extra=INFER_BODY,
)
async def model_infer(
    request: Request, body: Annotated[Any, Body()], model: Model, name: str, version: str | None = None
) -> InferenceResponse:
    check_json_content_type(request.headers.get("content-type"))
    refuse_binary_extension(request)
    return infer(served_model(model, name, version), _parse(body))
