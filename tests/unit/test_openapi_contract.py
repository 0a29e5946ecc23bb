"""schemathesis against the app's own /openapi.json: every check, a fixed seed, a bounded budget.

Positive cases must be accepted (2xx, or a documented 404), negative ones refused with a 4xx,
and every response must match the schema, so the schema says exactly what the API accepts.
"""

from __future__ import annotations

from types import ModuleType

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from serving.inference import INFER_PATHS
from serving.manifest import COMPILED

EXAMPLES_PER_MODE = 150


def consistent_tensor(case: schemathesis.Case) -> schemathesis.Case:
    """Completes a positive infer body with the one rule JSON Schema cannot state: `shape[0]`
    counts the rows in `data`. Any other case is left as generated."""
    if case.operation.path in INFER_PATHS and isinstance(case.body, dict):
        tensor = case.body["inputs"][0]
        data, columns = tensor["data"], tensor["shape"][1]
        if not isinstance(data[0], list):
            rows = max(1, len(data) // columns)
            tensor["data"] = (data * columns)[: rows * columns]
        tensor["shape"][0] = len(tensor["data"]) if isinstance(data[0], list) else rows
    return case


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode))
def test_the_api_does_what_its_schema_says(mode: schemathesis.GenerationMode, app_module: ModuleType) -> None:
    manifest = app_module.model.manifest
    if manifest.serving_engine.name != COMPILED:
        pytest.skip("the HTTP contract does not depend on the engine: checked once, with the one shipped")
    api = schemathesis.openapi.from_asgi("/openapi.json", app_module.app)
    # The served model's name and version, so that generated requests reach the model, not a 404.
    cases = api.as_strategy(mode, path_parameters={"name": manifest.name, "version": manifest.version})
    if mode.is_positive:
        cases = cases.map(consistent_tensor)

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES_PER_MODE,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate()

    conforms()
