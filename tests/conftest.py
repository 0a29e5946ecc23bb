from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from build.train import TrainingConfig, train_if_needed
from local.lambda_local import LambdaContext


@pytest.fixture(scope="session")
def iris_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The product's model, trained by the build step into a temporary directory."""
    model_dir = tmp_path_factory.mktemp("iris-model")
    train_if_needed(model_dir)
    return model_dir


@pytest.fixture
def tiny_model_dir(tmp_path: Path) -> Path:
    """A three-tree seeded forest: fast to train, same files and manifest as the real one."""
    train_if_needed(tmp_path, TrainingConfig(n_estimators=3, random_state=7))
    return tmp_path


@pytest.fixture(scope="session")
def app_module(iris_model_dir: Path) -> Iterator[ModuleType]:
    """The Lambda entry point module, imported once with the session's model (as a cold start)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_DIR", str(iris_model_dir))
        import app

        yield app


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


LogRecords = Callable[[], list[dict[str, object]]]


@pytest.fixture
def log_records() -> Iterator[LogRecords]:
    """Reads the JSON lines the function's Powertools logger writes from now on."""
    from serving.observability import logger

    handler = logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    handler.setStream(previous)
