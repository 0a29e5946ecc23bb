"""The runtime both entry points start from: the batch function's cold start loads the model and
the settings without the API's web framework, and refuses to start as the API does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from build import FUNCTION_DIR
from tests.unit.conftest import ColdStartWithoutAModel

WEB_FRAMEWORK = ("fastapi", "starlette", "mangum")
# A fresh interpreter, as Lambda starts the batch function: import its entry point, then list
# what the import loaded.
COLD_START = textwrap.dedent(
    """
    import json, sys

    import batch

    modules = sorted(sys.modules)
    row = dict(zip(batch.model.manifest.feature_names, [6.1, 2.8, 4.7, 1.2]))
    event = {"Items": [{"index": 0, "row": row}], "BatchInput": {"id_column": None}}
    rows = batch.handler(event, None)["predictions"]

    import app

    print(json.dumps({
        "modules": modules,
        "model": batch.model.manifest.name,
        "rows": rows,
        "api_runtime": type(app.runtime).__module__,
        "api_model": app.model.manifest.name,
    }))
    """
)


def cold_start(script: str, model_dir: Path) -> dict[str, object]:
    env = {**os.environ, "MODEL_DIR": str(model_dir), "PYTHONPATH": str(FUNCTION_DIR)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    loaded: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return loaded


@pytest.mark.slow
def test_the_batch_functions_cold_start_loads_the_model_without_the_web_framework(iris_model_dir: Path) -> None:
    started = cold_start(COLD_START, iris_model_dir)

    modules = started["modules"]
    assert isinstance(modules, list)
    assert [name for name in modules if name.split(".")[0] in WEB_FRAMEWORK] == []
    assert "app" not in modules
    assert started["model"] == json.loads((iris_model_dir / "manifest.json").read_text())["name"]
    assert started["rows"] == [{"row": 1, "prediction": 1}]
    # The API's entry point, imported after it in the same process, starts from the same runtime.
    assert started["api_runtime"] == "serving.runtime"
    assert started["api_model"] == started["model"]


def test_the_batch_function_refuses_to_start_without_its_model(
    cold_start_without_a_model: ColdStartWithoutAModel,
) -> None:
    [record] = [record for record in cold_start_without_a_model("batch") if record["level"] == "ERROR"]

    assert record["message"] == "refusing to start: the configuration or the model failed to load"
