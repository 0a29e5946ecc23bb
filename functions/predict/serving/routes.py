"""The API's own routes. They parse, call the model and shape responses; errors are raised, not built."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from numpy.typing import NDArray
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import MalformedBodyError, NoProbabilitiesError, UnsupportedMediaTypeError, quote, shorten
from serving.manifest import Manifest
from serving.model import LoadedModel, Predictions
from serving.observability import record_predictions, traced
from serving.schemas import (
    BatchPredictResponse,
    ErrorResponse,
    ModelSummary,
    PredictResponse,
    RowParser,
    StatusResponse,
)

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse} for status in (400, 413, 415, 422, 500)
}


async def current_model(request: Request) -> LoadedModel:
    model: LoadedModel = request.app.state.model
    return model


Model = Annotated[LoadedModel, Depends(current_model)]


def run_model(model: LoadedModel, rows: NDArray[Any], probabilities: bool) -> Predictions:
    """The model call on validated rows, timed, traced and, for a classifier, counted by class."""
    classifier = model.manifest.task == "classification"
    if probabilities and not classifier:
        raise NoProbabilitiesError(model.manifest.name)
    started = time.perf_counter()
    with traced("model.predict"):
        predicted = model.predict(rows, probabilities)
    elapsed_ms = (time.perf_counter() - started) * 1000
    by_class = Counter(model.class_name(label) for label in predicted.labels) if classifier else Counter()
    record_predictions(len(rows), dict(by_class), elapsed_ms)
    return predicted


def is_json(content_type: str | None) -> bool:
    """The one rule for which bodies are JSON: no content-type (as `sam local generate-event`
    events and Triton's client send them), application/json or an application/*+json type."""
    if content_type is None:
        return True
    kind, _, subtype = content_type.split(";")[0].strip().lower().partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


async def json_body(request: Request) -> Any:
    """The request body, parsed as JSON under `is_json`; anything else is a 400 or a 415.

    Routes parse their bodies here rather than through FastAPI's Body(), whose own rule
    for JSON differs and hands other bodies on as bytes.
    """
    content_type = request.headers.get("content-type")
    if not is_json(content_type):
        raise UnsupportedMediaTypeError(
            f"content-type {quote(content_type)} is not accepted; send a JSON body with content-type application/json"
        )
    raw = await request.body()
    if not raw.strip():
        raise MalformedBodyError("request body is empty; send a JSON object (see /docs)")
    try:
        return json.loads(raw)
    except RecursionError as error:
        raise MalformedBodyError("request body is nested too deeply to parse; send a JSON object") from error
    except ValueError as error:  # invalid JSON or UTF-8, or an integer of over 4,300 digits
        reason = shorten(str(error))
        raise MalformedBodyError(f"request body is not valid JSON ({reason}); send a JSON object") from error


class HeadAsGetMiddleware:
    """Answers HEAD as GET without the body: FastAPI's routes, unlike Starlette's, do not add HEAD
    to GET routes, and no server strips the body behind Lambda."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            await send({**message, "body": b""} if message["type"] == "http.response.body" else message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


router = APIRouter()


@router.get("/", summary="API status and the model it serves")
async def status(model: Model) -> StatusResponse:
    manifest = model.manifest
    return StatusResponse(
        status="ok",
        message=status_message(manifest),
        model=ModelSummary(name=manifest.name, version=manifest.version, engine=manifest.serving_engine.name),
    )


def status_message(manifest: Manifest) -> str:
    what = "a number" if manifest.task == "regression" else "a class"
    values = "numbers" if manifest.all_numeric else "values"
    count = len(manifest.features)
    return f'{manifest.name} is running: it predicts {what}; POST /predict with {{"features": [{count} {values}]}}'


@router.get("/model", summary="The model's manifest: identity, task, features, classes, metrics, libraries, engine")
async def model_metadata(model: Model) -> Manifest:
    return model.manifest


@router.post(
    "/predict",
    summary="Predict one row or a batch",
    description=(
        'One row: `{"features": [values in feature order]}` → `{"prediction": label}`, or the row by feature '
        'name. A batch of up to 10,000 rows: `{"instances": [[...], {...}]}` → `{"predictions": [...]}`. '
        "For a classifier, `?probabilities=true` adds class names and each class's probability."
    ),
    responses=ERROR_RESPONSES,
    response_model_exclude_none=True,
)
async def predict(
    request: Request,
    probabilities: Annotated[
        bool, Query(description="a classifier's class names and per-class probabilities (a regressor has none)")
    ] = False,
) -> PredictResponse | BatchPredictResponse:
    # The model and parser come from app.state directly, not as dependencies: each dependency
    # costs a resolution on every request of the hot path.
    model: LoadedModel = request.app.state.model
    parser: RowParser = request.app.state.row_parser
    parsed = parser.parse(await json_body(request))
    predicted = run_model(model, parsed.rows, probabilities)
    names = [model.class_name(label) for label in predicted.labels] if probabilities else None
    by_class = (
        [dict(zip(model.manifest.class_names, row.tolist(), strict=True)) for row in predicted.probabilities]
        if predicted.probabilities is not None
        else None
    )
    if parsed.single:
        return PredictResponse(
            prediction=predicted.labels[0],
            class_name=names[0] if names else None,
            probabilities=by_class[0] if by_class else None,
        )
    return BatchPredictResponse(predictions=predicted.labels, class_names=names, probabilities=by_class)
