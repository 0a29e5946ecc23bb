"""Fixtures for the tests that run the package sam build produced."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import pytest

from build import DEFAULT_SPEC
from build.package import model_cache_dir
from build.spec import load_spec
from build.train import train_if_needed
from local.lambda_local import DEFAULT_PACKAGE, PROJECT_ROOT
from serving.config import PACKAGE_MODEL_DIR
from serving.manifest import MANIFEST_FILE

LAMBDA_LOCAL = PROJECT_ROOT / "local" / "lambda_local.py"
# Where the function reads its model when set (serving/config.py). The unit tests' session fixtures
# leave it set in their process (tests/unit/conftest.py's app_module, for the whole session), and
# `make test` runs them in the same processes: a package run here must read its own model.
UNIT_TESTS_MODEL_VARIABLE = "MODEL_DIR"


@pytest.fixture(autouse=True)
def without_the_unit_tests_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UNIT_TESTS_MODEL_VARIABLE, raising=False)


@pytest.fixture(scope="session")
def package() -> Path:
    if not (DEFAULT_PACKAGE / "app.py").is_file():
        pytest.fail(f"no built package at {DEFAULT_PACKAGE}: run `sam build` (or `make build`) before these tests")
    return DEFAULT_PACKAGE


@pytest.fixture(scope="session")
def manifest(package: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((package / PACKAGE_MODEL_DIR / MANIFEST_FILE).read_text())
    return loaded


@dataclass(frozen=True)
class ApiProcess:
    """local/lambda_local.py start-api serving the built package: its base URL and process id."""

    url: str
    pid: int


@contextmanager
def serving(package: Path) -> Iterator[ApiProcess]:
    """local/lambda_local.py start-api serving `package` on a free port, stopped on exit."""
    server = subprocess.Popen(
        [sys.executable, str(LAMBDA_LOCAL), "--package", str(package), "start-api", "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        # Session-scoped servers start before the autouse fixture above has run.
        env={name: value for name, value in os.environ.items() if name != UNIT_TESTS_MODEL_VARIABLE},
    )
    assert server.stderr is not None
    # The runner logs every request on stderr: keep reading it, or a full pipe stalls the server.
    drain = threading.Thread(target=server.stderr.read, daemon=True)
    try:
        line = server.stderr.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        assert match, f"start-api did not start: {line}{server.stderr.read() if server.poll() is not None else ''}"
        drain.start()
        yield ApiProcess(match[1], server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)
        if drain.is_alive():
            drain.join(timeout=10)
        server.stderr.close()


@pytest.fixture(scope="session")
def start_api_process(package: Path) -> Iterator[ApiProcess]:
    with serving(package) as process:
        yield process


@pytest.fixture(scope="session")
def start_api(start_api_process: ApiProcess) -> str:
    return start_api_process.url


@pytest.fixture(scope="session")
def training_estimator(manifest: dict[str, Any]) -> Any:
    """The estimator the package was compiled from (the build step's cached training output)."""
    spec = load_spec(DEFAULT_SPEC)
    trained = train_if_needed(model_cache_dir(spec), spec)
    assert trained.manifest["sha256"] == manifest["sha256"], "the package holds another model: run sam build"
    return joblib.load(trained.model_path)
