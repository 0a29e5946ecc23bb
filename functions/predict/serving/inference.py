"""The Open Inference Protocol (KServe V2, as MLServer and Triton speak it) over REST, so that
existing inference clients can call this function unchanged.

One model, addressed by its manifest name and optionally its version. Its inputs follow the
model's features:
- every feature a number (Iris): one input tensor of shape [N, features] (FP32, FP64 or INT64;
  `data` nested or flat row-major), as Triton's and MLServer's numpy clients send it; FP32 values
  are float32s, so they are rounded to float32 before the model sees them;
- any category feature: one input per feature, named by the feature, in any order, each of
  shape [N] or [N, 1]: BYTES (JSON strings, one of the feature's categories) for a category
  feature, FP32/FP64/INT64 for a number. That is how MLServer's pandas codec sends a DataFrame
  (one column per input) and what KServe's scikit-learn server takes for tabular data. JSON null
  is accepted where the feature allows missing values (the protocol has no NaN), as NaN.
Infer returns `predict` ([N]: INT64 for integer class labels, BYTES for string labels, FP64 for a
regressor's values and float labels) and, when asked for and the model is a classifier,
`predict_proba` (FP64, [N, classes]): the output names of MLServer's scikit-learn runtime.
Errors are 400 {"error": ...}; an unknown model or version is 404.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from numpy.typing import NDArray
from pydantic import BaseModel, Field, StrictBool, StrictInt, ValidationError

from serving.codecs import FeatureCodec, codec_for
from serving.codecs.base import nullable as _nullable
from serving.codecs.category import BYTES
from serving.codecs.number import NumberCodec, decode_numbers
from serving.deps import Model, json_body, run_model
from serving.errors import MAX_PROBLEM_CHARS, BadRequestError, NotFoundError, describe_problems, quote, shorten
from serving.limits import MAX_INSTANCES
from serving.manifest import Feature, Manifest
from serving.model import LoadedModel
from serving.schemas import MAX_FEATURES, RowParser, error_responses

PREDICT, PREDICT_PROBA = "predict", "predict_proba"
# The datatypes of an all-numeric model's one [N, features] tensor: a number's.
MATRIX_DATATYPES = NumberCodec.datatypes
MATRIX_INPUT = "input-0"


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
    inputs: list[RequestInput] = Field(min_length=1, max_length=MAX_FEATURES)
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


def check_served(model: LoadedModel, name: str, version: str | None = None) -> LoadedModel:
    """`model`, if it is the model (and version) asked for; else a 404 naming the one served."""
    manifest = model.manifest
    if name != manifest.name:
        raise NotFoundError(f"model {quote(name)} is not served here; this server serves {quote(manifest.name)}")
    if version is not None and version != manifest.version:
        raise NotFoundError(
            f"version {quote(version)} of model {quote(name)} is not served here; "
            f"the version served is {quote(manifest.version)}"
        )
    return model


def _parse(body: Any) -> InferenceRequest:
    try:
        return InferenceRequest.model_validate(body)
    except ValidationError as error:
        raise BadRequestError(f"invalid inference request: {describe_problems(error.errors())}") from error


def _flatten(data: list[Any], shape: list[int], where: str) -> list[Any]:
    """`data` flat, row-major: nested data (one list per row) only for a 2-D shape."""
    if data and all(isinstance(row, list) for row in data) and len(shape) == 2:
        rows, columns = shape
        if len(data) != rows or any(len(row) != columns for row in data):
            raise BadRequestError(f"{where}.data: nested data must be {rows} rows of {columns} values")
        return [value for row in data for value in row]
    return data


def _shape_error(where: str, shape: list[int], expected: str) -> BadRequestError:
    return BadRequestError(
        f"{where}.shape {quote(shape)} is not accepted; expected {expected} with 1 <= N <= {MAX_INSTANCES}"
    )


def _count_error(where: str, count: int, shape: list[int], needed: int) -> BadRequestError:
    return BadRequestError(f"{where}.data has {count} values; shape {quote(shape)} needs {needed}")


def decode_matrix(tensor: RequestInput, features: list[Feature]) -> NDArray[np.float64]:
    """An all-numeric model's one input tensor, [N, features], as validated float64 rows."""
    where, n_features = "inputs[0]", len(features)
    if tensor.datatype not in MATRIX_DATATYPES:
        raise BadRequestError(
            f"{where}.datatype {quote(tensor.datatype)} is not accepted; use one of {', '.join(MATRIX_DATATYPES)}"
        )
    if len(tensor.shape) != 2 or tensor.shape[1] != n_features or not 1 <= tensor.shape[0] <= MAX_INSTANCES:
        raise _shape_error(where, tensor.shape, f"[N, {n_features}]")
    rows, columns = tensor.shape
    values = _flatten(tensor.data, tensor.shape, where)
    if len(values) != rows * columns:
        raise _count_error(where, len(values), tensor.shape, rows * columns)
    nullable = [feature.allow_missing for feature in features]
    return decode_numbers(values, tensor.datatype, where, nullable).reshape(rows, columns)


def decode_column(tensor: RequestInput, codec: FeatureCodec, where: str) -> NDArray[Any]:
    """One feature's input, [N] or [N, 1], as its codec decodes it: str for a category, float for a number."""
    feature = codec.feature
    if tensor.datatype not in codec.datatypes:
        raise BadRequestError(
            f"{where}.datatype {quote(tensor.datatype)} is not accepted for {codec.type_name} feature "
            f"{quote(feature.name)}; use {' or '.join(codec.datatypes)}"
        )
    shape = tensor.shape
    if len(shape) not in (1, 2) or shape[1:] not in ([], [1]) or not 1 <= shape[0] <= MAX_INSTANCES:
        raise _shape_error(where, shape, "[N] or [N, 1]")
    values = _flatten(tensor.data, shape, where)
    if len(values) != shape[0]:
        raise _count_error(where, len(values), shape, shape[0])
    return codec.decode(values, tensor.datatype, where)


def decode_columns(inputs: list[RequestInput], parser: RowParser) -> NDArray[Any]:
    """One input per feature, matched by name, as an object array of rows in feature order."""
    positions = {name: index for index, name in enumerate(parser.feature_names)}
    given: dict[str, int] = {}
    for index, tensor in enumerate(inputs):
        if tensor.name not in positions:
            raise BadRequestError(
                f"inputs[{index}].name {quote(tensor.name)} is not a feature of this model; "
                f"send one input per feature, named by it: {shorten(parser.names, MAX_PROBLEM_CHARS)}"
            )
        if tensor.name in given:
            raise BadRequestError(f"inputs[{index}]: feature {quote(tensor.name)} is given twice")
        given[tensor.name] = index
    missing = [name for name in parser.feature_names if name not in given]
    if missing:
        raise BadRequestError(
            f"inputs: no input for {shorten(', '.join(missing), MAX_PROBLEM_CHARS)}; send one input per feature, "
            "named by it"
        )
    columns = [
        decode_column(inputs[given[codec.feature.name]], codec, f"inputs[{given[codec.feature.name]}]")
        for codec in parser.codecs
    ]
    rows = len(columns[0])
    for feature, column in zip(parser.features, columns, strict=True):
        if len(column) != rows:
            raise BadRequestError(
                f"inputs[{given[feature.name]}] has {len(column)} rows; every input must have the same number of "
                f"rows ({quote(parser.features[0].name)} has {rows})"
            )
    matrix = np.empty((rows, len(columns)), dtype=object)
    for position, column in enumerate(columns):
        matrix[:, position] = column
    return matrix


def decode_inputs(request: InferenceRequest, parser: RowParser) -> NDArray[Any]:
    """The request's rows, in feature order, as the model is given them."""
    if not parser.all_numeric:
        return decode_columns(request.inputs, parser)
    if len(request.inputs) != 1:
        raise BadRequestError(
            f"inputs: {len(request.inputs)} inputs; this model takes one, of shape [N, {len(parser.features)}]"
        )
    return decode_matrix(request.inputs[0], parser.features)


def available_outputs(manifest: Manifest) -> list[str]:
    """`predict`, and `predict_proba` for a classifier that has it: a regressor has no class probabilities."""
    return [PREDICT, PREDICT_PROBA] if manifest.task == "classification" and manifest.probabilities else [PREDICT]


def predict_datatype(manifest: Manifest) -> str:
    """The protocol's datatype for the model's predictions: its class labels' type, or FP64."""
    if manifest.task == "classification" and all(type(label) is int for label in manifest.classes):
        return "INT64"
    if manifest.task == "classification" and all(type(label) is str for label in manifest.classes):
        return BYTES
    return "FP64"


def _requested_outputs(request: InferenceRequest, manifest: Manifest) -> list[str]:
    available = available_outputs(manifest)
    requested = request.outputs or [RequestOutput(name=PREDICT)]
    for output in requested:
        if output.name not in available:
            regressor = output.name == PREDICT_PROBA and manifest.task != "classification"
            why = f" (a regressor has no {output.name})" if regressor else ""
            raise BadRequestError(
                f"output {quote(output.name)} is not available{why}; request {' or '.join(available)}"
            )
        if output.parameters is not None and output.parameters.binary_data:
            raise _binary_extension_error("request JSON outputs")
    return [output.name for output in requested]


def infer(model: LoadedModel, parser: RowParser, request: InferenceRequest) -> InferenceResponse:
    rows = decode_inputs(request, parser)
    names = _requested_outputs(request, model.manifest)
    predicted = run_model(model, rows, probabilities=PREDICT_PROBA in names)
    outputs = []
    for name in names:
        if name == PREDICT:
            datatype = predict_datatype(model.manifest)
            outputs.append(ResponseOutput(name=name, datatype=datatype, shape=[len(rows)], data=predicted.labels))
        else:
            assert predicted.probabilities is not None
            proba = predicted.probabilities
            outputs.append(
                ResponseOutput(name=name, datatype="FP64", shape=list(proba.shape), data=proba.ravel().tolist())
            )
    return InferenceResponse(
        model_name=model.manifest.name, model_version=model.manifest.version, id=request.id, outputs=outputs
    )


def input_metadata(manifest: Manifest) -> list[TensorMetadata]:
    if manifest.all_numeric:
        return [TensorMetadata(name=MATRIX_INPUT, datatype="FP64", shape=[-1, len(manifest.features)])]
    return [
        TensorMetadata(name=feature.name, datatype=codec_for(feature).metadata_datatype, shape=[-1, 1])
        for feature in manifest.features
    ]


def metadata(model: LoadedModel) -> ModelMetadata:
    manifest = model.manifest
    outputs = [TensorMetadata(name=PREDICT, datatype=predict_datatype(manifest), shape=[-1])]
    if PREDICT_PROBA in available_outputs(manifest):
        outputs.append(TensorMetadata(name=PREDICT_PROBA, datatype="FP64", shape=[-1, len(manifest.classes)]))
    return ModelMetadata(
        name=manifest.name,
        versions=[manifest.version],
        platform=manifest.serving_engine.name,
        inputs=input_metadata(manifest),
        outputs=outputs,
    )


def _binary_extension_error(use: str) -> BadRequestError:
    """Triton's binary tensor extension, for inputs or asked of outputs: not part of the protocol."""
    return BadRequestError(f"the binary tensor extension is not supported; {use} (binary_data=False)")


def refuse_binary_extension(request: Request) -> None:
    if "inference-header-content-length" in request.headers:
        raise _binary_extension_error("send JSON tensors")


ERRORS = error_responses(400, 404, 415)


def _tensor(name: dict[str, Any], datatypes: list[str], shape: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": name,
            "shape": shape,
            "datatype": {"enum": datatypes},
            "parameters": _nullable({"type": "object"}),
            "data": data,
        },
    }


def _shape(*dimensions: dict[str, Any]) -> dict[str, Any]:
    rows = {"type": "integer", "minimum": 1, "maximum": MAX_INSTANCES}
    return {
        "type": "array",
        "prefixItems": [rows, *dimensions],
        "minItems": len(dimensions) + 1,
        "maxItems": len(dimensions) + 1,
    }


def _matrix_inputs(features: list[Feature]) -> dict[str, Any]:
    """One [N, features] tensor: the all-numeric models' input."""
    count = len(features)

    def tensor(datatypes: list[str], number: dict[str, Any]) -> dict[str, Any]:
        nullable = _nullable(number)
        values = [nullable if feature.allow_missing else number for feature in features]
        # Alike values (Iris's four numbers) need one schema; a mix of nullable and not, one per column.
        alike = all(value == values[0] for value in values)
        value = values[0] if alike else nullable
        row: dict[str, Any] = {"type": "array", "minItems": count, "maxItems": count}
        row.update({"items": value} if alike else {"prefixItems": values, "items": False})
        data = {
            "oneOf": [
                {"type": "array", "items": value, "minItems": 1, "description": "flat, row-major"},
                {"type": "array", "items": row, "minItems": 1, "description": "nested: one list per row"},
            ]
        }
        return _tensor({"type": "string"}, datatypes, _shape({"type": "integer", "const": count}), data)

    return {
        "type": "array",
        # Every feature is a number (decode_matrix): the number codec's schemas, per group of datatypes.
        "items": {"oneOf": [tensor(*group) for group in codec_for(features[0]).protocol_schemas()]},
        "minItems": 1,
        "maxItems": 1,
    }


def _column_inputs(features: list[Feature]) -> dict[str, Any]:
    """One tensor per feature, [N] (flat data) or [N, 1] (flat or nested): the input of models
    with category features."""

    def column(feature: Feature, datatypes: list[str], value: dict[str, Any]) -> dict[str, Any]:
        value = _nullable(value) if feature.allow_missing else value
        flat = {"type": "array", "items": value, "minItems": 1, "description": "flat"}
        nested = {
            "type": "array",
            "items": {"type": "array", "items": value, "minItems": 1, "maxItems": 1},
            "minItems": 1,
            "description": "nested: one list per row",
        }
        name = {"const": feature.name}
        return {
            "oneOf": [
                _tensor(name, datatypes, _shape(), flat),
                _tensor(name, datatypes, _shape({"type": "integer", "const": 1}), {"oneOf": [flat, nested]}),
            ]
        }

    def tensors(feature: Feature) -> dict[str, Any]:
        # One tensor schema per group of datatypes the feature's codec takes: a choice when several.
        options = [column(feature, datatypes, value) for datatypes, value in codec_for(feature).protocol_schemas()]
        return options[0] if len(options) == 1 else {"oneOf": options}

    return {
        "type": "array",
        "prefixItems": [tensors(feature) for feature in features],
        "items": False,
        "minItems": len(features),
        "maxItems": len(features),
        "description": "one input per feature, named by it (listed in feature order; any order is accepted), "
        "each with the same N",
    }


def infer_example(manifest: Manifest) -> dict[str, Any]:
    """An infer request for the manifest's example row, asking for every output."""
    if manifest.all_numeric:
        inputs = [
            {"name": MATRIX_INPUT, "shape": [1, len(manifest.features)], "datatype": "FP64", "data": [manifest.example]}
        ]
    else:
        inputs = [
            {
                "name": feature.name,
                "shape": [1],
                "datatype": codec_for(feature).metadata_datatype,
                "data": [value],
            }
            for feature, value in zip(manifest.features, manifest.example, strict=True)
        ]
    return {"id": "42", "inputs": inputs, "outputs": [{"name": name} for name in available_outputs(manifest)]}


def openapi_body(manifest: Manifest) -> dict[str, Any]:
    """The infer body's OpenAPI description, as strict as the checks above. Rules JSON Schema cannot
    state: `data` holds shape[0] x shape[1] values (shape[0] rows when nested), and one input per
    feature means each feature once, all with the same N."""
    output = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"enum": available_outputs(manifest)},
            "parameters": _nullable(
                {"type": "object", "properties": {"binary_data": {"type": "boolean", "const": False}}}
            ),
        },
    }
    inputs = _matrix_inputs(manifest.features) if manifest.all_numeric else _column_inputs(manifest.features)
    schema = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": _nullable({"type": "string"}),
            "parameters": _nullable({"type": "object"}),
            "inputs": inputs,
            "outputs": _nullable({"type": "array", "items": output}),
        },
    }
    return {"required": True, "content": {"application/json": {"schema": schema, "example": infer_example(manifest)}}}


router = APIRouter(prefix="/v2", tags=["Open Inference Protocol"], responses=ERRORS)


@router.get("", summary="Server metadata")
async def server_metadata(request: Request) -> dict[str, Any]:
    model: LoadedModel = request.app.state.model
    return {"name": f"{model.manifest.name}-server", "version": request.app.version, "extensions": []}


@router.get("/health/live", summary="Liveness")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", summary="Readiness: the model is loaded at start-up, so a running server is ready")
async def ready() -> dict[str, bool]:
    return {"ready": True}


@router.get("/models/{name}", summary="Model metadata")
@router.get("/models/{name}/versions/{version}", summary="Model metadata, for one version")
async def protocol_model_metadata(model: Model, name: str, version: str | None = None) -> ModelMetadata:
    return metadata(check_served(model, name, version))


@router.get("/models/{name}/ready", summary="Model readiness")
@router.get("/models/{name}/versions/{version}/ready", summary="Model readiness, for one version")
async def model_ready(model: Model, name: str, version: str | None = None) -> dict[str, Any]:
    check_served(model, name, version)
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
    parser: RowParser = request.app.state.row_parser
    return infer(check_served(model, name, version), parser, _parse(await json_body(request)))


# The infer routes' paths, for the OpenAPI body app.py gives them.
INFER_PATHS = tuple(
    route.path for route in router.routes if isinstance(route, APIRoute) and route.endpoint is model_infer
)
