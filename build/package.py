"""Assemble the Lambda package: pinned dependencies for the Lambda platform, the function's
code, and the baked model with its manifest. `sam build` runs this through the function's
Makefile; it can also be run by hand. With the S3 model source (`--model-source s3`,
MODEL_SOURCE=s3) the model is baked, gated and smoke-tested in the package as usual, then moved
beside it (build.unpackaged_model_dir) for `make publish`: the size limit applies without it.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from build import (
    FUNCTION_DIR,
    HOST_ARCHITECTURE,
    MODEL_SOURCES,
    PROJECT_ROOT,
    configured_model_source,
    sizes,
    unpackaged_model_dir,
)
from build.bake import ENGINE_CHOICES, CompileRefusedError, EngineChoice, bake_model
from build.bytecode import SmokeTestError, compile_cold_path, compile_modules, trace_cold_path
from build.checks import write_check_events
from build.engines import ExactnessError
from build.native import compile_tree_walk
from build.slim import (
    RUNTIME_COPY_NOT_ENOUGH,
    RUNTIME_PROVIDED,
    prune_unimported_subpackages,
    slim,
    strip_shared_objects,
)
from build.spec import SpecError, add_spec_argument, load_spec
from build.train import LIBRARIES, MODEL_LIBRARIES, model_cache_dir
from serving.config import PACKAGE_MODEL_DIR
from serving.engines import native
from serving.manifest import COMPILED

log = logging.getLogger(__name__)

EVENTS_DIR = PROJECT_ROOT / "events"
# The build environment's pins: XGBoost's and LightGBM's versions, for a model served through them.
BUILD_REQUIREMENTS = PROJECT_ROOT / "requirements-dev.txt"
LAMBDA_PYTHON_VERSION = "3.12"
# Both tags are needed: with only the first pip settles for old numpy/scipy/scikit-learn,
# with only the second it falls back to pydantic 1.
LAMBDA_PLATFORMS = {
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
}
TRACING_PACKAGES = ("aws_xray_sdk", "wrapt", "aws_lambda_powertools/tracing")
# The C walk is copied by itself, and only when built for the package's architecture.
SOURCE_EXCLUDES = ("Makefile", "requirements.in", "requirements.txt", "__pycache__", "*.pyc", "*.so", "*.so.partial")
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)")
# Shipped only for an estimator fitted on a DataFrame, served by the scikit-learn engine.
DATAFRAME_ONLY = frozenset({"pandas"})
# What only the scikit-learn engine needs: left out of a package that serves a compiled engine.
SCIKIT_LEARN_ENGINE_ONLY = frozenset({"scikit-learn", "scipy", "joblib", "threadpoolctl", "narwhals", "cloudpickle"})


class BuildError(Exception):
    """The package cannot be built as asked; the message says why and what to do."""


def pinned_versions(requirements: Path) -> dict[str, str]:
    pins = {}
    for line in requirements.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            pins[_normalise(match[1])] = match[2]
    return pins


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check_training_environment(requirements: Path, build_requirements: Path = BUILD_REQUIREMENTS) -> None:
    """Refuse to train with library versions other than the ones the function will run: the
    function's pins, and the build's for XGBoost and LightGBM (shipped when a model of theirs is
    served through them)."""
    pins = pinned_versions(requirements)
    build_pins = pinned_versions(build_requirements)
    if sys.version_info[:2] != (3, 12):
        raise BuildError(f"the build must run on Python {LAMBDA_PYTHON_VERSION}, not {sys.version.split()[0]}")
    mismatches = [
        f"{name} {metadata.version(name)} installed, {pinned.get(name)} pinned"
        for names, pinned in ((LIBRARIES, pins), (MODEL_LIBRARIES, build_pins))
        for name in names
        if metadata.version(name) != pinned.get(name)
    ]
    if mismatches:
        raise BuildError(
            "the training environment differs from the function's pins in "
            f"{requirements}: {'; '.join(mismatches)}. Run `make setup` to sync it."
        )


def lambda_requirements(
    requirements: Path,
    target: Path,
    engine: str,
    dataframe_input: bool,
    libraries: list[str] | None = None,
    build_requirements: Path = BUILD_REQUIREMENTS,
) -> Path:
    """The pins to install: less what the Lambda runtime provides (saying who pulled it in), and
    less scikit-learn and what only it needs when the model is served compiled; plus the model's
    own `libraries` (xgboost-cpu, lightgbm) at the build's pinned versions when it is served
    through them."""
    kept = []
    shipped_anyway = RUNTIME_COPY_NOT_ENOUGH["pandas"] if dataframe_input else frozenset()
    for line in requirements.read_text().splitlines():
        match = PIN.match(line.strip())
        # Not mutated, equivalent: a line that pins nothing is kept either way: no package set holds the name XXXX,
        # nor an empty one.
        name = _normalise(match[1]) if match else ""  # pragma: no mutate
        if name in RUNTIME_PROVIDED and name not in shipped_anyway:
            # Not mutated, equivalent: pip-compile's line annotation has one #: the text after the first and after the
            # last is the same.
            # pragma: no mutate start
            log.info("leaving out %s: the Lambda runtime provides it (%s)", name, line.partition("#")[2].strip())
            # pragma: no mutate end
        elif engine == COMPILED and name in SCIKIT_LEARN_ENGINE_ONLY:
            log.info("leaving out %s: the compiled engine does not need it", name)
        elif name in DATAFRAME_ONLY and not dataframe_input:
            log.info("leaving out %s: the model is not called with a DataFrame", name)
        else:
            kept.append(line)
    build_pins = pinned_versions(build_requirements)
    for name in libraries or []:
        log.info("adding %s %s: the model is served through it", name, build_pins[name])
        kept.append(f"{name}=={build_pins[name]}")
    # Not mutated, equivalent: the file's name is never read: its path is returned to pip, the only reader.
    filtered = target / "requirements.txt"  # pragma: no mutate
    filtered.write_text("\n".join(kept) + "\n")
    return filtered


def pip_install_command(requirements: Path, target: Path, architecture: str) -> list[str]:
    platform_args = [arg for tag in LAMBDA_PLATFORMS[architecture] for arg in ("--platform", tag)]
    return [
        sys.executable, "-m", "pip", "install",
        "--requirement", str(requirements),
        "--target", str(target),
        *platform_args,
        "--implementation", "cp",
        "--python-version", LAMBDA_PYTHON_VERSION,
        "--only-binary=:all:",
        "--no-compile",
        "--no-deps",
        "--quiet", "--disable-pip-version-check",
    ]  # fmt: skip


def install_dependencies(requirements: Path, target: Path, architecture: str) -> None:
    log.info("installing pinned dependencies for python%s %s", LAMBDA_PYTHON_VERSION, architecture)
    installed = subprocess.run(pip_install_command(requirements, target, architecture))
    if installed.returncode != 0:
        # pip has already printed its own error above the build's last line.
        raise BuildError(
            f"pip could not install {requirements.name} for python{LAMBDA_PYTHON_VERSION} {architecture} "
            f"(exit status {installed.returncode}): check that PyPI is reachable (pip's error is above)"
        )


def copy_function_code(source: Path, target: Path) -> None:
    log.info("copying function code from %s", source.relative_to(PROJECT_ROOT))
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*SOURCE_EXCLUDES))


def build_package(
    target: Path, architecture: str, engine: EngineChoice, spec_path: Path, model_source: str = MODEL_SOURCES[0]
) -> None:
    requirements = FUNCTION_DIR / "requirements.txt"
    check_training_environment(requirements)
    spec = load_spec(spec_path)
    log.info("building the model spec %s (%s), engine: %s", spec_path, spec.name, engine)
    unpackaged = unpackaged_model_dir(target)
    for previous in (target, unpackaged):
        if previous.exists():
            shutil.rmtree(previous)
    target.mkdir(parents=True)
    # Before the bake: its exactness gate runs the walk that ships.
    walk = compile_tree_walk(architecture)
    served_by = bake_model(target, engine, model_cache_dir(spec), spec).serving_engine
    with tempfile.TemporaryDirectory() as scratch:
        pins = lambda_requirements(
            requirements, Path(scratch), served_by.name, served_by.dataframe_input, served_by.libraries
        )
        install_dependencies(pins, target, architecture)
    slim(target)
    copy_function_code(FUNCTION_DIR, target)
    if walk is not None:
        shipped_walk = target / native.LIBRARY.relative_to(FUNCTION_DIR)
        shipped_walk.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(walk, shipped_walk)
    if architecture == HOST_ARCHITECTURE:
        # Removed whether the smoke test passes or not.
        with tempfile.TemporaryDirectory() as smoke_events:
            events = sorted(EVENTS_DIR.glob("*.json")) + write_check_events(spec, Path(smoke_events))
            cold_path = trace_cold_path(target, events)
            own_code = tuple(path.name for path in target.iterdir() if (FUNCTION_DIR / path.name).exists())
            prune_unimported_subpackages(target, cold_path.modules, keep=(*own_code, PACKAGE_MODEL_DIR))
            strip_shared_objects(target)
            compile_cold_path(target, events, cold_path.modules)
        # The sample events run with tracing off; what tracing on imports gets bytecode too.
        compile_modules(sorted(path for name in TRACING_PACKAGES for path in (target / name).rglob("*.py")))
    else:
        log.warning(
            "building for %s on %s: the package cannot run here, so it is not smoke-tested, pruned or "
            "stripped, and every module gets bytecode",
            architecture,
            HOST_ARCHITECTURE,
        )
        compile_modules(sorted(target.rglob("*.py")))
    model_in_package = model_source == MODEL_SOURCES[0]
    if not model_in_package:
        shutil.move(target / PACKAGE_MODEL_DIR, unpackaged)
        log.info("model left out of the package, kept at %s: `make publish BUCKET=...` uploads it", unpackaged)
    report = sizes.measure(target)
    # Not mutated, equivalent: the report holds no %: logging prints it the same as through %s.
    log.info("%s", report.render())  # pragma: no mutate
    report.check_limit(model_in_package)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out",
        type=Path,
        default=os.environ.get("ARTIFACTS_DIR"),
        help="package directory (default: $ARTIFACTS_DIR, set by sam build)",
    )
    parser.add_argument("--architecture", choices=sorted(LAMBDA_PLATFORMS), default="x86_64")
    parser.add_argument(
        "--engine",
        choices=ENGINE_CHOICES,
        default="auto",
        help="how the model is served: auto compiles what the compiled engines support and keeps scikit-learn "
        "for the rest (saying why); compiled fails instead",
    )
    add_spec_argument(parser)
    parser.add_argument(
        "--model-source",
        choices=MODEL_SOURCES,
        default=configured_model_source(),
        help="package: the model ships in the package; s3: it is left out, for `make publish` and the "
        "ModelBucket parameter (default: $MODEL_SOURCE, else package)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[build] %(message)s", stream=sys.stdout)
    if args.out is None:
        parser.error("--out is required when ARTIFACTS_DIR is not set")
    try:
        build_package(args.out.resolve(), args.architecture, args.engine, args.spec.resolve(), args.model_source)
    except (
        BuildError,
        SpecError,
        CompileRefusedError,
        ExactnessError,
        SmokeTestError,
        sizes.PackageTooLargeError,
    ) as error:
        log.error("build failed: %s", error)
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()
