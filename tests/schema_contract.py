"""One schemathesis run against an app's own /openapi.json, shared by the Iris and the penguins
contract tests: every check, as many examples as the hypothesis profile gives (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from serving.manifest import Manifest

CompleteCase = Callable[[schemathesis.Case], schemathesis.Case]


def check_schema_contract(
    app: Any, manifest: Manifest, mode: schemathesis.GenerationMode, complete: CompleteCase
) -> None:
    """Positive cases (completed by `complete` with what JSON Schema cannot state) must be accepted,
    negative ones refused with a 4xx, and every response must match the schema."""
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    # The served model's name and version, so that generated requests reach the model, not a 404.
    cases = api.as_strategy(mode, path_parameters={"name": manifest.name, "version": manifest.version})
    if mode.is_positive:
        cases = cases.map(complete)

    @given(case=cases)
    @settings(suppress_health_check=[*settings().suppress_health_check, HealthCheck.filter_too_much])
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate()

    conforms()
