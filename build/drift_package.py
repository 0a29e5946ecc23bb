"""Assemble the scheduled drift function's package (template.yaml's DriftFunction).

It holds the function (functions/drift), the serving modules it shares with the prediction
function (the manifest's schema and the feature codecs it asks, the capture record's keys, the
profile and its drift scores, the S3 model bundle's reader and its settings), the manifest of the
model the build serves (whose profile drift is measured against, unless the stack serves a model
from ModelBucket: then the function reads that bundle's manifest), and numpy
and pydantic at the prediction function's pins: no scikit-learn, no FastAPI.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from build import FUNCTION_DIR, PROJECT_ROOT
from build.package import LAMBDA_PLATFORMS, install_dependencies, pinned_versions
from build.spec import SpecError, add_spec_argument, load_spec
from build.train import model_cache_dir, train_if_needed
from serving.manifest import MANIFEST_FILE

log = logging.getLogger(__name__)

DRIFT_FUNCTION_DIR = PROJECT_ROOT / "functions" / "drift"
SOURCES = ("scheduled.py", "capture_objects.py")
SHARED_SERVING_MODULES = (
    "__init__.py",
    "manifest.py",
    "codecs/__init__.py",
    "codecs/base.py",
    "codecs/number.py",
    "codecs/category.py",
    "errors.py",
    "config.py",
    "bundle.py",
    "capture.py",
    "profile.py",
)
PACKAGES = frozenset(
    {"numpy", "pydantic", "pydantic-core", "annotated-types", "typing-extensions", "typing-inspection"}
)


def drift_requirements(requirements: Path, target: Path) -> Path:
    """The prediction function's pins of the packages the drift function imports."""
    pins = pinned_versions(requirements)
    filtered = target / "requirements.txt"
    filtered.write_text("".join(f"{name}=={pins[name]}\n" for name in sorted(PACKAGES)))
    return filtered


def build_drift_package(target: Path, architecture: str, spec_path: Path) -> None:
    spec = load_spec(spec_path)
    trained = train_if_needed(model_cache_dir(spec), spec)
    if target.exists():
        shutil.rmtree(target)
    (target / "serving" / "codecs").mkdir(parents=True)
    for name in SOURCES:
        shutil.copyfile(DRIFT_FUNCTION_DIR / name, target / name)
    for name in SHARED_SERVING_MODULES:
        shutil.copyfile(FUNCTION_DIR / "serving" / name, target / "serving" / name)
    shutil.copyfile(trained.manifest_path, target / MANIFEST_FILE)
    with tempfile.TemporaryDirectory() as scratch:
        install_dependencies(drift_requirements(FUNCTION_DIR / "requirements.txt", Path(scratch)), target, architecture)
    log.info("drift function for %s %s assembled in %s", spec.name, trained.manifest["version"], target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="the package directory (sam build's ARTIFACTS_DIR)")
    parser.add_argument("--architecture", choices=sorted(LAMBDA_PLATFORMS), default="x86_64")
    add_spec_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        build_drift_package(args.out, args.architecture, args.spec)
    except SpecError as error:
        log.error("model spec problem: %s", error)
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()
