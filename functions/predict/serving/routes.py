"""The API's routes. They validate, call the model and shape responses; errors are raised, not built."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from serving.model import LoadedModel
from serving.schemas import ErrorResponse, ModelSummary, PredictRequest, PredictResponse, StatusResponse

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse} for status in (400, 415, 422, 500)
}


async def current_model(request: Request) -> LoadedModel:
    model: LoadedModel = request.app.state.model
    return model


Model = Annotated[LoadedModel, Depends(current_model)]
router = APIRouter()


@router.get("/", summary="API status and the model it serves")
async def status(model: Model) -> StatusResponse:
    manifest = model.manifest
    return StatusResponse(
        status="ok",
        message='Iris prediction API is running; POST /predict with {"features": [4 numbers]}',
        model=ModelSummary(name=manifest.name, version=manifest.version, runtime=manifest.serving_runtime.name),
    )


@router.post("/predict", summary="Predict the class of one row", responses=ERROR_RESPONSES)
async def predict(body: PredictRequest, model: Model) -> PredictResponse:
    model.check_row(body.features, "features")
    return PredictResponse(prediction=model.predict([body.features])[0])
