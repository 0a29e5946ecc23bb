"""The build step: training, compiling and packaging the function.

It imports the function's own modules (functions/predict) where it checks them, so the
exactness gate tests the very evaluator that ships.
"""

import os
import platform
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIR = PROJECT_ROOT / "functions" / "predict"
DEFAULT_SPEC = PROJECT_ROOT / "models" / "iris.toml"
MODEL_VARIABLE = "MODEL"
HOST_ARCHITECTURE = {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
"""This machine's architecture as Lambda names it."""
"""The environment variable naming the model spec to build (`make build MODEL=...`, `MODEL=... sam build`)."""


def configured_spec_path() -> Path:
    """The spec named by $MODEL (relative to the working directory), else the default Iris spec."""
    return Path(os.environ.get(MODEL_VARIABLE) or DEFAULT_SPEC).resolve()


MODEL_SOURCE_VARIABLE = "MODEL_SOURCE"
"""Where the deployed function gets its model: `package` (baked in, the default) or `s3` (`make build
MODEL_SOURCE=s3`: baked and verified as usual, then kept beside the package for `make publish`)."""
MODEL_SOURCES = ("package", "s3")
UNPACKAGED_MODEL_SUFFIX = ".model"


def configured_model_source() -> str:
    return os.environ.get(MODEL_SOURCE_VARIABLE) or MODEL_SOURCES[0]


def unpackaged_model_dir(package: Path) -> Path:
    """Where a package built for the S3 model source keeps its model: beside it, not in it."""
    return package.with_name(package.name + UNPACKAGED_MODEL_SUFFIX)


if str(FUNCTION_DIR) not in sys.path:
    sys.path.append(str(FUNCTION_DIR))
