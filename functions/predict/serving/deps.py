"""What the routes share (FastAPI's full-stack template keeps these in `api/deps.py`): the model
dependency, the timed model call and the one rule for JSON bodies. Routers import from here, never
from each other."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Annotated, Any

from fastapi import Depends, Request
from numpy.typing import NDArray

from serving import capture
from serving.errors import (
    BadRequestError,
    InvalidRequestError,
    NoProbabilitiesError,
    UnsupportedMediaTypeError,
    quote,
    shorten,
)
from serving.model import LoadedModel, Predictions
from serving.observability import record_predictions, traced


async def current_model(request: Request) -> LoadedModel:
    model: LoadedModel = request.app.state.model
    return model


Model = Annotated[LoadedModel, Depends(current_model)]


def run_model(model: LoadedModel, rows: NDArray[Any], probabilities: bool) -> Predictions:
    """The model call on validated rows, timed, traced, for a classifier counted by class, and
    captured when sampled (serving/capture.py)."""
    classifier = model.manifest.task == "classification"
    if probabilities and not classifier:
        raise NoProbabilitiesError(model.manifest.name)
    if probabilities and model.manifest.no_probabilities:
        raise InvalidRequestError(model.manifest.no_probabilities)
    started = time.perf_counter()
    with traced("model.predict"):
        predicted = model.predict(rows, probabilities)
    elapsed_ms = (time.perf_counter() - started) * 1000
    by_class = Counter(model.class_name(label) for label in predicted.labels) if classifier else Counter()
    record_predictions(len(rows), dict(by_class), elapsed_ms)
    capture.sample(rows, predicted.labels, predicted.probabilities)
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
        raise BadRequestError("request body is empty; send a JSON object (see /docs)")
    try:
        return json.loads(raw)
    except RecursionError as error:
        raise BadRequestError("request body is nested too deeply to parse; send a JSON object") from error
    except ValueError as error:  # invalid JSON or UTF-8, or an integer of over 4,300 digits
        raise BadRequestError(f"request body is not valid JSON ({shorten(str(error))}); send a JSON object") from error
