"""app.py's cold start, its imports included, runs without garbage collection (collections among the
objects it builds to keep cost about a tenth of it), freezes what it built so that no later
collection walks it, and leaves collection on afterwards, whether the function started or refused.
It leaves FastAPI's OpenAPI models to their first use, and answers exactly as with them built."""

from __future__ import annotations

import gc
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from build import FUNCTION_DIR, PROJECT_ROOT
from serving.errors import ModelLoadError
from tests.events import http_api_event
from tests.unit.conftest import imported_app

# A fresh interpreter's cold start: the collections started while app.py runs (from its first
# statement: compiling it is no part of a cold start, whose package holds bytecode), and whether the
# app it built is left to later collections.
COLD_START = """
import gc, json, sys
collections = []
started = lambda: hasattr(sys.modules.get("app"), "gc")
gc.callbacks.append(lambda phase, info: phase == "start" and started() and collections.append(info))
import app
gc.callbacks.clear()
walked = any(found is app.app for found in gc.get_objects())
print(json.dumps({"collections": collections, "app_walked": walked, "enabled": gc.isenabled()}))
"""


def test_a_cold_start_imports_and_builds_without_a_collection_and_freezes_what_it_built(
    iris_model_dir: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(FUNCTION_DIR), "MODEL_DIR": str(iris_model_dir)}

    result = subprocess.run(
        [sys.executable, "-c", COLD_START], env=env, capture_output=True, text=True, timeout=120, check=True
    )

    assert json.loads(result.stdout.splitlines()[-1]) == {"collections": [], "app_walked": False, "enabled": True}


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


# A fresh interpreter's cold start, then requests that need FastAPI's OpenAPI models: with FastAPI
# first imported by app.py, as on Lambda, or imported before it (its models built when defined).
ANSWERS = """
import json, sys
if sys.argv[1] == "built when defined":
    import fastapi
import app
from fastapi.openapi.models import OpenAPI
from local.lambda_runtime import LambdaContext

built_at_start = OpenAPI.__pydantic_complete__
answers = [app.handler(event, LambdaContext()) for event in json.load(sys.stdin)]
print(json.dumps({"built_at_start": built_at_start, "answers": answers}))
"""
NEEDING_THE_OPENAPI_MODELS = [
    http_api_event(method="GET", path="/openapi.json", body=None),
    http_api_event(method="GET", path="/docs", body=None, stage="prod"),
    http_api_event(method="GET", path="/nope", body=None),
    http_api_event(),
]


def test_fastapi_s_openapi_models_are_built_by_their_first_use_and_answer_as_if_built_when_defined(
    iris_model_dir: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": f"{FUNCTION_DIR}{os.pathsep}{PROJECT_ROOT}", "MODEL_DIR": str(iris_model_dir)}
    seen = {}
    for order in ("cold start", "built when defined"):
        result = subprocess.run(
            [sys.executable, "-c", ANSWERS, order],
            input=json.dumps(NEEDING_THE_OPENAPI_MODELS),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        seen[order] = json.loads(result.stdout.splitlines()[-1])

    assert seen["cold start"]["built_at_start"] is False
    assert seen["built when defined"]["built_at_start"] is True
    assert seen["cold start"]["answers"] == seen["built when defined"]["answers"]
    assert [answer["statusCode"] for answer in seen["cold start"]["answers"]] == [200, 200, 404, 200]
