"""The API's own routes. They parse, call the model and shape responses; errors are raised, not built."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from serving.deps import Model, json_body, run_model
from serving.limits import MAX_INSTANCES
from serving.manifest import Manifest
from serving.model import LoadedModel
from serving.schemas import (
    BatchPredictResponse,
    ModelSummary,
    PredictResponse,
    RowParser,
    StatusResponse,
    error_responses,
)

ERROR_RESPONSES = error_responses(400, 413, 415, 422, 500)


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
async def model_manifest(model: Model) -> Manifest:
    return model.manifest


@router.post(
    "/predict",
    summary="Predict one row or a batch",
    description=(
        'One row: `{"features": [values in feature order]}` → `{"prediction": label}`, or the row by feature '
        f'name. A batch of up to {MAX_INSTANCES:,} rows: `{{"instances": [[...], {{...}}]}}` → '
        '`{"predictions": [...]}`. '
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
