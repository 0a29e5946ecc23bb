"""Assemble the Lambda package: pinned dependencies for the Lambda platform, the function's
code, and the baked model with its manifest. `sam build` runs this through the function's
Makefile; it can also be run by hand.
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

from build import sizes
from build.bytecode import SmokeTestError, compile_cold_path, trace_cold_path
from build.slim import RUNTIME_PROVIDED, prune_unimported_subpackages, slim, strip_shared_objects
from build.train import LIBRARIES, MANIFEST_FILE, MODEL_FILE, train_if_needed

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIR = PROJECT_ROOT / "functions" / "predict"
MODEL_CACHE_DIR = PROJECT_ROOT / ".model-cache"
EVENTS_DIR = PROJECT_ROOT / "events"
PACKAGE_MODEL_DIR = "model"
LAMBDA_PYTHON_VERSION = "3.12"
# Both tags are needed: with only the first pip settles for old numpy/scipy/scikit-learn,
# with only the second it falls back to pydantic 1.
LAMBDA_PLATFORMS = {
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
}
SOURCE_EXCLUDES = ("Makefile", "requirements.in", "requirements.txt", "__pycache__", "*.pyc")
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)")


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


def check_training_environment(requirements: Path) -> None:
    """Refuse to train with library versions other than the ones the function will run."""
    pins = pinned_versions(requirements)
    if sys.version_info[:2] != (3, 12):
        raise BuildError(f"the build must run on Python {LAMBDA_PYTHON_VERSION}, not {sys.version.split()[0]}")
    mismatches = [
        f"{name} {metadata.version(name)} installed, {pins[name]} pinned"
        for name in LIBRARIES
        if metadata.version(name) != pins.get(name)
    ]
    if mismatches:
        raise BuildError(
            "the training environment differs from the function's pins in "
            f"{requirements}: {'; '.join(mismatches)}. Run `make setup` to sync it."
        )


def lambda_requirements(requirements: Path, target: Path) -> Path:
    """The pins to install, less the packages the Lambda runtime provides (saying who pulled them in)."""
    kept = []
    for line in requirements.read_text().splitlines():
        match = PIN.match(line.strip())
        if match and _normalise(match[1]) in RUNTIME_PROVIDED:
            log.info("leaving out %s: the Lambda runtime provides it (%s)", match[1], line.partition("#")[2].strip())
        else:
            kept.append(line)
    filtered = target / "requirements.txt"
    filtered.write_text("\n".join(kept) + "\n")
    return filtered


def install_dependencies(requirements: Path, target: Path, architecture: str) -> None:
    platform_args = [arg for tag in LAMBDA_PLATFORMS[architecture] for arg in ("--platform", tag)]
    command = [
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
    log.info("installing pinned dependencies for python%s %s", LAMBDA_PYTHON_VERSION, architecture)
    subprocess.run(command, check=True)


def copy_function_code(source: Path, target: Path) -> None:
    log.info("copying function code from %s", source.relative_to(PROJECT_ROOT))
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*SOURCE_EXCLUDES))


def bake_model(target: Path) -> None:
    result = train_if_needed(MODEL_CACHE_DIR)
    model_dir = target / PACKAGE_MODEL_DIR
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_FILE, MANIFEST_FILE):
        shutil.copy2(MODEL_CACHE_DIR / name, model_dir / name)
    manifest = result.manifest
    log.info(
        "baked model %s %s (test accuracy %.4f) into %s",
        manifest["name"],
        manifest["version"],
        manifest["metrics"]["test_accuracy"],
        model_dir,
    )


def build_package(target: Path, architecture: str = "x86_64") -> None:
    requirements = FUNCTION_DIR / "requirements.txt"
    check_training_environment(requirements)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as scratch:
        install_dependencies(lambda_requirements(requirements, Path(scratch)), target, architecture)
    slim(target)
    copy_function_code(FUNCTION_DIR, target)
    bake_model(target)
    events = sorted(EVENTS_DIR.glob("*.json"))
    cold_path = trace_cold_path(target, events)
    own_code = tuple(path.name for path in target.iterdir() if (FUNCTION_DIR / path.name).exists())
    prune_unimported_subpackages(target, cold_path.modules, keep=(*own_code, PACKAGE_MODEL_DIR))
    strip_shared_objects(target)
    compile_cold_path(target, events)
    report = sizes.measure(target)
    log.info("%s", report.render())
    report.check_limit()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out",
        type=Path,
        default=os.environ.get("ARTIFACTS_DIR"),
        help="package directory (default: $ARTIFACTS_DIR, set by sam build)",
    )
    parser.add_argument("--architecture", choices=sorted(LAMBDA_PLATFORMS), default="x86_64")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[build] %(message)s", stream=sys.stdout)
    if args.out is None:
        parser.error("--out is required when ARTIFACTS_DIR is not set")
    try:
        build_package(args.out.resolve(), args.architecture)
    except (BuildError, SmokeTestError, sizes.PackageTooLargeError) as error:
        log.error("build failed: %s", error)
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()
