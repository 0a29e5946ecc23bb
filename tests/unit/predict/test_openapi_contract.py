"""schemathesis against the app's own /openapi.json: every check, a fixed seed, a bounded budget.

Positive cases must be accepted (2xx, or a documented 404), negative ones refused with a 4xx,
and every response must match the schema, so the schema says exactly what the API accepts.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from serving.inference import INFER_PATHS
from tests.schema_contract import MODES, check_schema_contract
from tests.unit.conftest import one_engine

if TYPE_CHECKING:
    import schemathesis


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


# The HTTP contract does not depend on the engine: checked once, with the one shipped (`one_engine`).
@pytest.mark.slow
@one_engine
@pytest.mark.parametrize("mode", MODES)
def test_the_api_does_what_its_schema_says(mode: str, app_module: ModuleType) -> None:
    check_schema_contract(app_module.app, app_module.model.manifest, mode, consistent_tensor)
