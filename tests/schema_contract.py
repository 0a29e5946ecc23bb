"""One schemathesis run against an app's own /openapi.json, shared by the Iris and the penguins
contract tests: every check, as many examples as the hypothesis profile gives (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings

from serving.manifest import Manifest

if TYPE_CHECKING:
    import schemathesis

CompleteCase = Callable[["schemathesis.Case"], "schemathesis.Case"]
# schemathesis's generation modes by value, for parametrizing: schemathesis (and what it loads) is
# imported by the contract tests when they run, not by every test process that collects them.
MODES = ["positive", "negative"]


def check_schema_contract(app: Any, manifest: Manifest, mode: str, complete: CompleteCase) -> None:
    """Positive cases (completed by `complete` with what JSON Schema cannot state) must be accepted,
    negative ones refused with a 4xx (`mode`, one of MODES), and every response must match the schema."""
    import schemathesis

    generation = schemathesis.GenerationMode(mode)
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    # The served model's name and version, so that generated requests reach the model, not a 404.
    cases = api.as_strategy(generation, path_parameters={"name": manifest.name, "version": manifest.version})
    if generation.is_positive:
        cases = cases.map(complete)

    @given(case=cases)
    @settings(suppress_health_check=[*settings().suppress_health_check, HealthCheck.filter_too_much])
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate()

    conforms()
