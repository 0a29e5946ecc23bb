"""The build step: training, compiling and packaging the function.

It imports the function's own modules (functions/predict) where it checks them, so the
exactness gate tests the very evaluator that ships.
"""

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIR = PROJECT_ROOT / "functions" / "predict"
DEFAULT_SPEC = PROJECT_ROOT / "models" / "iris.toml"
MODEL_VARIABLE = "MODEL"
"""The environment variable naming the model spec to build (`make build MODEL=...`, `MODEL=... sam build`)."""


def configured_spec_path() -> Path:
    """The spec named by $MODEL (relative to the working directory), else the default Iris spec."""
    return Path(os.environ.get(MODEL_VARIABLE) or DEFAULT_SPEC).resolve()


if str(FUNCTION_DIR) not in sys.path:
    sys.path.append(str(FUNCTION_DIR))
