"""GET /model shows the training profile beside everything it showed before."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.events import load_event, response_json


def test_get_model_shows_the_manifest_with_its_profile(
    app_module: ModuleType, iris_model_dir: Path, lambda_context: Any
) -> None:
    shown = response_json(app_module.handler(load_event("http-api-get-model.json"), lambda_context))
    written = json.loads((iris_model_dir / "manifest.json").read_text())
    assert shown["profile"] == written["profile"]
    assert set(shown["profile"]["features"]) == {"sepal_length", "sepal_width", "petal_length", "petal_width"}
    assert shown["name"] == written["name"] == "iris-random-forest"
