"""Every sample event in events/ through the real handler, in process."""

from __future__ import annotations

from types import ModuleType

import pytest

from local.lambda_runtime import LambdaContext
from tests.events import EVENTS_DIR, load_event, response_text
from tests.expectations import EVENT_EXPECTATIONS, check_response


def test_every_event_file_has_an_expectation() -> None:
    assert {path.name for path in EVENTS_DIR.glob("*.json")} == set(EVENT_EXPECTATIONS)


@pytest.mark.parametrize("name", sorted(EVENT_EXPECTATIONS))
def test_event_file_gets_expected_response(
    name: str, app_module: ModuleType, lambda_context: LambdaContext, model_version: str
) -> None:
    response = app_module.handler(load_event(name), lambda_context)

    check_response(
        name,
        response["statusCode"],
        response["headers"]["content-type"],
        response_text(response),
        model_version,
    )
