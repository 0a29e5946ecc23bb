"""app.py's cold start, its imports included, runs without garbage collection (collections among the
objects it builds to keep cost about a tenth of it), freezes what it built so that no later
collection walks it, and leaves collection on afterwards, whether the function started or refused.
It leaves FastAPI's OpenAPI models to their first use, and answers exactly as with them built."""

from __future__ import annotations

import functools
import gc
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from build import FUNCTION_DIR, PROJECT_ROOT
from serving.errors import ModelLoadError
from tests.events import http_api_event
from tests.unit.conftest import imported_app, one_engine

# A fresh interpreter's cold start, as on Lambda (FastAPI first imported by app.py): the collections
# started while app.py runs (from its first statement: compiling it is no part of a cold start, whose
# package holds bytecode), whether the app it built is left to later collections, whether FastAPI's
# OpenAPI models were built by it, then the answers to requests that need those models. With
# "built when defined", FastAPI is imported before app.py (its models built when defined) and only
# the answers are compared. One process per engine answers every question of a cold start.
COLD_START = """
import gc, json, sys
collections = []
if sys.argv[1] == "built when defined":
    import fastapi
started = lambda: hasattr(sys.modules.get("app"), "gc")
gc.callbacks.append(lambda phase, info: phase == "start" and started() and collections.append(info))
import app
gc.callbacks.clear()
walked = any(found is app.app for found in gc.get_objects())
enabled = gc.isenabled()
from fastapi.openapi.models import OpenAPI
from local.lambda_runtime import LambdaContext

built_at_start = OpenAPI.__pydantic_complete__
answers = [app.handler(event, LambdaContext()) for event in json.load(sys.stdin)]
print(json.dumps({
    "collections": collections,
    "app_walked": walked,
    "enabled": enabled,
    "built_at_start": built_at_start,
    "answers": answers,
}))
"""
NEEDING_THE_OPENAPI_MODELS = [
    http_api_event(method="GET", path="/openapi.json", body=None),
    http_api_event(method="GET", path="/docs", body=None, stage="prod"),
    http_api_event(method="GET", path="/nope", body=None),
    http_api_event(),
]
ColdStart = Callable[[str], dict[str, Any]]


@pytest.fixture(scope="module")
def cold_start(iris_model_dir: Path) -> ColdStart:
    """What a fresh interpreter's cold start of app.py saw (COLD_START), once per engine and order."""
    env = {**os.environ, "PYTHONPATH": f"{FUNCTION_DIR}{os.pathsep}{PROJECT_ROOT}", "MODEL_DIR": str(iris_model_dir)}

    @functools.cache
    def run(order: str) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "-c", COLD_START, order],
            input=json.dumps(NEEDING_THE_OPENAPI_MODELS),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        seen: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
        return seen

    return run


@pytest.mark.slow
def test_a_cold_start_imports_and_builds_without_a_collection_and_freezes_what_it_built(
    cold_start: ColdStart,
) -> None:
    seen = cold_start("cold start")

    assert (seen["collections"], seen["app_walked"], seen["enabled"]) == ([], False, True)


def test_the_model_loads_and_the_app_is_built_without_a_collection(iris_model_dir: Path) -> None:
    collections: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        # From the last definition before the init block to the end of create_app.
        module = sys.modules.get("app")
        in_init = hasattr(module, "load_configured_model") and not hasattr(module, "app")
        if phase == "start" and in_init:
            collections.append(info["generation"])

    gc.callbacks.append(record)
    try:
        with imported_app(iris_model_dir) as module:
            assert module.handler is not None
    finally:
        gc.callbacks.remove(record)

    assert collections == []
    assert gc.isenabled()


def test_collection_is_back_on_after_a_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    monkeypatch.delitem(sys.modules, "app", raising=False)

    with pytest.raises(ModelLoadError):
        importlib.import_module("app")

    monkeypatch.delitem(sys.modules, "app", raising=False)
    assert gc.isenabled()


# The first use builds FastAPI's OpenAPI models, whatever the engine: the eager order on one engine.
@pytest.mark.slow
@one_engine
def test_fastapi_s_openapi_models_are_built_by_their_first_use_and_answer_as_if_built_when_defined(
    cold_start: ColdStart,
) -> None:
    lazy, eager = cold_start("cold start"), cold_start("built when defined")

    assert lazy["built_at_start"] is False
    assert eager["built_at_start"] is True
    assert lazy["answers"] == eager["answers"]
    assert [answer["statusCode"] for answer in lazy["answers"]] == [200, 200, 404, 200]
