"""What the build's tests share: a stand-in package, the build without pip, a native model file's spec,
and logging as a fresh process has it."""

from __future__ import annotations

import logging
import shutil
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from build import DEFAULT_SPEC, package, train
from build.bytecode import ColdPath
from build.spec import ModelSpec, load_spec


def fake_package(directory: Path, handler_body: str) -> Path:
    """A package whose app.handler runs `handler_body` (standard library only)."""
    directory.mkdir(parents=True, exist_ok=True)
    source = "def handler(event, context):\n" + textwrap.indent(textwrap.dedent(handler_body), "    ")
    (directory / "app.py").write_text(source)
    return directory


NativeSpec = Callable[..., ModelSpec]


@pytest.fixture(scope="session")
def native_spec() -> NativeSpec:
    """The spec of a native XGBoost or LightGBM file `model` with the features x0, x1, x2:
    `native_spec(task)`, or `native_spec("classification", n_classes=3)` to name classes c0, c1, c2."""

    def make(task: str, n_classes: int | None = None) -> ModelSpec:
        return ModelSpec.model_validate(
            {
                "name": "native",
                "task": task,
                "estimator_file": "model",
                "sample_data": "rows.csv",
                "features": [{"name": f"x{i}"} for i in range(3)],
                "class_names": [f"c{i}" for i in range(n_classes)] if n_classes else None,
            }
        )

    return make


@pytest.fixture
def offline_build(training_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The build without pip and without running the package (the built-package tests do both),
    from the session's trained model as a previous build left it in the cache: records which pins
    each install would have installed."""
    installed: dict[str, list[str]] = {}
    shutil.copytree(training_dir, tmp_path / "cache" / load_spec(DEFAULT_SPEC).name)

    def record_install(requirements: Path, target: Path, architecture: str) -> None:
        installed[architecture] = [
            line.split("==")[0] for line in requirements.read_text().splitlines() if "==" in line
        ]

    monkeypatch.setattr(package, "install_dependencies", record_install)
    monkeypatch.setattr(train, "MODEL_CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(package, "trace_cold_path", lambda target, events: ColdPath(statuses={}, modules=[]))
    monkeypatch.setattr(package, "compile_cold_path", lambda target, events, modules: None)
    return installed


@contextmanager
def logging_unconfigured() -> Iterator[None]:
    """The root logger as a fresh process has it, without pytest's capture handlers: a build
    command's own logging.basicConfig then takes effect (read its output with capsys)."""
    root = logging.getLogger()
    handlers, level = root.handlers, root.level
    root.handlers = []
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.handlers = handlers
        root.setLevel(level)


def gblinear_spec(directory: Path) -> Path:
    """The spec of an XGBoost gblinear regressor saved as a model file (which no compiler serves, so
    the package serves it through XGBoost), with its sample rows."""
    import numpy as np
    import xgboost

    rows = np.random.default_rng(0).normal(size=(60, 2))
    with xgboost.config_context(verbosity=0):
        model = xgboost.XGBRegressor(booster="gblinear", n_estimators=3).fit(rows, rows[:, 0])
        model.get_booster().save_model(str(directory / "linear.json"))
    np.savetxt(directory / "rows.csv", np.c_[rows, rows[:, 0]], delimiter=",", header="a,b,target", comments="")
    spec = directory / "spec.toml"
    spec.write_text(
        'name = "linear"\ntask = "regression"\nestimator_file = "linear.json"\nsample_data = "rows.csv"\n'
        '[[features]]\nname = "a"\n[[features]]\nname = "b"\n'
    )
    return spec
