"""The request size limit at its exact boundary, with bodies Lambda could deliver.

The limit is the README's (413 for "a body over 6,000,000 bytes"), written here as a literal so a
changed limit in the code fails these tests; every event stays under Lambda's 6 MB synchronous
payload (6 MiB for the whole event) and carries its body's true content-length.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from local.lambda_runtime import LambdaContext
from tests.events import EVENT_BUILDERS, SEED_BODY, response_json

DOCUMENTED_LIMIT = 6_000_000
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024
NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# The iris features' ranges (cm), from the dataset's description.
LOW = np.array([4.3, 2.0, 1.0, 0.1])
HIGH = np.array([7.9, 4.4, 6.9, 2.5])


def deliverable_event(shape: str, body: str) -> dict[str, Any]:
    """A `shape` event for POST /predict with `body` and its true content-length, as Lambda would deliver it."""
    event = EVENT_BUILDERS[shape](raw_body=body)
    length = str(len(body.encode()))
    for name in list(event["headers"]):
        if name.lower() == "content-length":
            del event["headers"][name]
    event["headers"]["content-length"] = length
    if event.get("multiValueHeaders") is not None:
        event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    assert len(json.dumps(event).encode()) < LAMBDA_PAYLOAD_LIMIT
    return event


def padded_seed_body(size: int) -> str:
    """The seed request padded with trailing whitespace (still the same JSON) to exactly `size` bytes."""
    text = json.dumps(SEED_BODY)
    return text + " " * (size - len(text))


@pytest.mark.parametrize("shape", sorted(EVENT_BUILDERS))
def test_a_body_of_exactly_the_limit_is_served(
    shape: str, app_module: ModuleType, lambda_context: LambdaContext
) -> None:
    body = padded_seed_body(DOCUMENTED_LIMIT)

    response = app_module.handler(deliverable_event(shape, body), lambda_context)

    assert len(body.encode()) == DOCUMENTED_LIMIT
    assert (response["statusCode"], response_json(response)) == (200, {"prediction": 1})


@pytest.mark.parametrize("shape", sorted(EVENT_BUILDERS))
def test_one_byte_over_the_limit_is_413(shape: str, app_module: ModuleType, lambda_context: LambdaContext) -> None:
    body = padded_seed_body(DOCUMENTED_LIMIT + 1)

    response = app_module.handler(deliverable_event(shape, body), lambda_context)

    assert response["statusCode"] == 413
    assert response_json(response) == {
        "error": "request body is over the limit of 6,000,000 bytes (Lambda's 6 MB synchronous payload): "
        "send at most 10,000 instances per request, in several requests if needed"
    }


def full_precision_rows(count: int, seed: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """`count` rows in the iris ranges with every digit a float64 carries (17 significant digits)."""
    return np.random.default_rng(seed).uniform(LOW, HIGH, size=(count, len(NAMES)))


@pytest.mark.parametrize("by_name", [False, True])
def test_a_full_precision_batch_of_the_most_rows_allowed_is_served(
    by_name: bool, app_module: ModuleType, iris_estimator: Any, lambda_context: LambdaContext
) -> None:
    rows = full_precision_rows(10_000, seed=13)
    instances = [dict(zip(NAMES, row, strict=True)) if by_name else row for row in rows.tolist()]
    body = json.dumps({"instances": instances})

    response = app_module.handler(deliverable_event("http-api", body), lambda_context)

    # Over a megabyte by name, so a limit lowered to 1,000,000 bytes is seen here too.
    assert len(body) > (1_000_000 if by_name else 500_000)
    assert response["statusCode"] == 200
    assert response_json(response) == {"predictions": iris_estimator.predict(rows).tolist()}
