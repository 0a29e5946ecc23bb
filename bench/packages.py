"""Building, or reusing, the packages the benchmark measures.

Each model spec under models/ is built twice by the project's own build (`python -m
build.package`): with the compiled engine where one supports the model ("auto"), and with the
scikit-learn engine. The naive tutorial build (bench/baseline/) is built by SAM's default
builder. Every package lives in bench/.build, stamped with a hash of everything that goes into
it, and is rebuilt only when that changed. A model whose build fails is reported, not fatal:
the other models are still measured.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from build import DEFAULT_SPEC, FUNCTION_DIR, HOST_ARCHITECTURE, PROJECT_ROOT, sizes
from build.package import (
    BUILD_REQUIREMENTS,
    EVENTS_DIR,
    copy_function_code,
    install_dependencies,
    lambda_requirements,
)
from build.slim import slim
from build.spec import SpecError, load_spec
from build.train import MODEL_FILE, fingerprint
from local.lambda_runtime import FUNCTION_NAME
from serving.config import PACKAGE_MODEL_DIR
from serving.manifest import COMPILED, MANIFEST_FILE, SCIKIT_LEARN

BENCH_DIR = PROJECT_ROOT / "bench"
BUILD_DIR = BENCH_DIR / ".build"
MODELS_DIR = DEFAULT_SPEC.parent
BASELINE_DIR = BENCH_DIR / "baseline"
BASELINE_PACKAGE = BUILD_DIR / "baseline" / "BaselineFunction"
DEPENDENCIES_DIR = BUILD_DIR / "dependencies"
STAMP_FILE = "inputs.sha256"
FAILURE_FILE = "build-failed.txt"
# build.package's option naming the engine to bake (it becomes --engine when the compiled
# engines are wired into the build), and the two choices compared: the compiled engine where
# one supports the model, else scikit-learn; and the scikit-learn engine always.
ENGINE_FLAG = "--engine"
AUTO = "auto"
ENGINE_CHOICES = (AUTO, SCIKIT_LEARN)
# The manifest's record of the engine that serves the model: {"name": ..., "file": ..., "sha256": ...}.
MANIFEST_ENGINE_KEY = "engine"
FAILURE_SHOWN_CHARS = 160


@dataclass(frozen=True)
class Build:
    """One model spec's package, built with one engine choice, or why it could not be."""

    model: str
    engine_choice: str
    package: Path
    error: str | None = None

    @property
    def served_by(self) -> str:
        """The engine that actually serves the built package, as its manifest records it."""
        manifest = json.loads((self.package / PACKAGE_MODEL_DIR / MANIFEST_FILE).read_text())
        name: str = manifest[MANIFEST_ENGINE_KEY]["name"]
        return name

    @property
    def fell_back(self) -> bool:
        """Asked for the compiled engine, served by scikit-learn: no compiled engine supports the model."""
        return self.engine_choice != SCIKIT_LEARN and self.served_by == SCIKIT_LEARN


def run(command: list[str], log: Path | None = None) -> int:
    """Run `command` from the project root and return its exit status; with `log`, its output goes
    there and a failure is the caller's to report, else a failure raises."""
    shown = f"$ {' '.join(command)}" + (f"  (log: {log.relative_to(PROJECT_ROOT)})" if log else "")
    print(shown, flush=True)  # noqa: T201 - a command-line tool reporting progress
    # The interpreter's own bin first, as the Makefile does: it holds sam, and sam build needs a python3.12.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    environment = {**os.environ, "PATH": path, "SAM_CLI_TELEMETRY": "0"}
    if log is None:
        return subprocess.run(command, check=True, cwd=PROJECT_ROOT, env=environment).returncode
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        finished = subprocess.run(command, cwd=PROJECT_ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT)
    return finished.returncode


def inputs_key(*roots: Path) -> str:
    """A hash of every file under `roots`, to rebuild a package only when its inputs changed."""
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*") if root.is_dir() else [root]):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + path.read_bytes())
    return digest.hexdigest()


def build_if_changed(package: Path, key: str, build: Callable[[], str | None], rebuild: bool = False) -> str | None:
    """Run `build` unless it already ran on the same inputs `key`; return why it failed, or None.
    A failure is remembered too, since the same inputs fail the same way (`rebuild` retries)."""
    stamp, failure = package.parent / STAMP_FILE, package.parent / FAILURE_FILE
    if not rebuild and stamp.is_file() and stamp.read_text() == key:
        if failure.is_file():
            print(f"reusing the failed build of {package} (inputs unchanged; --rebuild retries)")  # noqa: T201
            return failure.read_text()
        if (package / "app.py").is_file():
            return None
    stamp.unlink(missing_ok=True)
    failure.unlink(missing_ok=True)
    error = build()
    package.parent.mkdir(parents=True, exist_ok=True)
    if error is not None:
        failure.write_text(error)
    stamp.write_text(key)
    return error


def failure_summary(log_text: str) -> str:
    """The build's own "build failed" line and the last line of its output, paths relative to the
    project, shortened."""
    text = log_text.replace(f"{PROJECT_ROOT}{os.sep}", "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = next((line.removeprefix("[build] ") for line in lines if "build failed" in line), "")
    last = lines[-1] if lines else "no output"
    summary = said if last == said else f"{said} … {last}".strip(" …")
    return summary if len(summary) <= FAILURE_SHOWN_CHARS else summary[: FAILURE_SHOWN_CHARS - 1] + "…"


def spec_paths() -> list[Path]:
    """The shipped model specs, the default model first."""
    return sorted(MODELS_DIR.glob("*.toml"), key=lambda path: (path != DEFAULT_SPEC, path.name))


def build_model(spec_path: Path, engine_choice: str, rebuild: bool = False) -> Build:
    """The package of `spec_path` with `engine_choice`, built unless its inputs are unchanged."""
    model = spec_path.stem
    package = BUILD_DIR / model / engine_choice / FUNCTION_NAME
    try:
        model_key = fingerprint(load_spec(spec_path))
    except SpecError as error:
        return Build(model, engine_choice, package, error=str(error))
    log = package.parent / "build.log"

    def build() -> str | None:
        command = [sys.executable, "-m", "build.package", "--out", str(package), "--spec", str(spec_path)]
        succeeded = run([*command, ENGINE_FLAG, engine_choice], log) == 0
        return None if succeeded else failure_summary(log.read_text())

    key = inputs_key(FUNCTION_DIR, PROJECT_ROOT / "build", EVENTS_DIR) + model_key + engine_choice
    return Build(model, engine_choice, package, error=build_if_changed(package, key, build, rebuild))


def build_baseline(model_file: Path, rebuild: bool = False) -> Path:
    """The naive tutorial build (SAM's default Python builder) serving the pickled `model_file`."""

    def build() -> None:
        template = BASELINE_DIR / "template.yaml"
        run(["sam", "build", "--template-file", str(template), "--build-dir", str(BASELINE_PACKAGE.parent)])
        shutil.copy2(model_file, BASELINE_PACKAGE / MODEL_FILE)

    key = inputs_key(BASELINE_DIR) + hashlib.sha256(model_file.read_bytes()).hexdigest()
    build_if_changed(BASELINE_PACKAGE, key, build, rebuild)
    return BASELINE_PACKAGE


def estimator_file(scikit_learn_build: Build) -> Path:
    """The pickled estimator a scikit-learn-engine package serves."""
    return scikit_learn_build.package / PACKAGE_MODEL_DIR / MODEL_FILE


def code_and_dependencies_bytes(engine: str, libraries: tuple[str, ...] = (), rebuild: bool = False) -> int:
    """Unzipped bytes of a package before its model: the function's code and the dependencies the
    build installs for `engine` (COMPILED or SCIKIT_LEARN, the latter with the model's
    `libraries`, xgboost-cpu or lightgbm) and slims, as build.package does. Each dependency set is
    installed once into bench/.build/dependencies and reused while the pins and the build's
    install and slim code are unchanged. Not pruned to what the cold path imports nor given
    bytecode: both need a built model and change a few MB."""
    if engine not in (COMPILED, SCIKIT_LEARN):
        raise ValueError(f"engine {engine!r}: expected {COMPILED!r} or {SCIKIT_LEARN!r}")
    dependencies = DEPENDENCIES_DIR / "-".join((engine, *libraries)) / "package"
    measured = dependencies.parent / "unzipped-bytes"
    requirements = FUNCTION_DIR / "requirements.txt"

    def build() -> None:
        if dependencies.exists():
            shutil.rmtree(dependencies)
        dependencies.mkdir(parents=True)
        with tempfile.TemporaryDirectory() as scratch:
            pins = lambda_requirements(requirements, Path(scratch), engine, False, list(libraries))
            install_dependencies(pins, dependencies, HOST_ARCHITECTURE)
        slim(dependencies)
        measured.write_text(str(sizes.measure(dependencies).unzipped_bytes))
        (dependencies / "app.py").touch()  # what build_if_changed takes for a finished package

    build_code = [PROJECT_ROOT / "build" / name for name in ("package.py", "slim.py")]
    key = inputs_key(requirements, BUILD_REQUIREMENTS, *build_code)
    build_if_changed(dependencies, key, build, rebuild)
    with tempfile.TemporaryDirectory() as scratch:
        code = Path(scratch) / "code"
        copy_function_code(FUNCTION_DIR, code)
        return int(measured.read_text()) + sizes.measure(code).unzipped_bytes
