"""app.py's init runs without garbage collection (a cold start's full collection among the objects
it builds to keep) and leaves collection on afterwards, whether the function started or refused."""

from __future__ import annotations

import gc
import importlib
import sys
from pathlib import Path

import pytest

from serving.errors import ModelLoadError
from tests.unit.conftest import imported_app


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
