"""Every setting the function reads from its environment, in one place.

Names match the `Environment` section of template.yaml. The model comes from the package
(`model/` beside app.py, or MODEL_DIR) unless MODEL_S3_BUCKET is set: then MODEL_S3_KEY,
MODEL_S3_VERSION_ID and MODEL_SHA256 pin one version of a model bundle in S3. API_BASE_PATH is the
path a custom domain's API mapping puts in front of the routes (docs/api.md#custom-domains-and-base-paths).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# The baked model's directory inside the package, beside app.py (build/bake.py writes it there).
PACKAGE_MODEL_DIR = "model"
DEFAULT_MODEL_DIR = PACKAGE_ROOT / PACKAGE_MODEL_DIR
# The function's names (Powertools service, metrics namespace, the stack's default name) follow
# the model's name; the default Iris model keeps the names its deployments have always had.
DEFAULT_MODEL_NAME = "iris-random-forest"
DEFAULT_MODEL_BASE_NAME = "iris"
DEFAULT_SERVICE_NAME = "iris-predict"
DEFAULT_METRICS_NAMESPACE = "IrisPrediction"
# The S3 pin record: each field of S3ModelSource, the environment variable the function reads it
# from, and the template parameter that sets that variable (build/publish.py prints those).
S3_PIN = (
    ("bucket", "MODEL_S3_BUCKET", "ModelBucket"),
    ("key", "MODEL_S3_KEY", "ModelKey"),
    ("version_id", "MODEL_S3_VERSION_ID", "ModelVersionId"),
    ("sha256", "MODEL_SHA256", "ModelSha256"),
)

CAPTURE_VARIABLE = "CAPTURE_SAMPLE_PERCENT"
"""The percentage of requests captured (serving/capture.py): template parameter CaptureSamplePercent."""

API_BASE_PATH_VARIABLE = "API_BASE_PATH"
# One or more segments of the characters API Gateway accepts in an API mapping key, no trailing
# slash, no `.` or `..` segment (clients normalise those away). template.yaml's ApiBasePath
# AllowedPattern says the same (tests/unit/serving/test_middleware.py compares them).
API_BASE_PATH_PATTERN = re.compile(r"(/(?!\.+(?:/|$))[A-Za-z0-9$_.+!*'()-]+)+")


class ConfigurationError(Exception):
    """The function's environment is inconsistent; the function must not start."""


@dataclass(frozen=True)
class S3ModelSource:
    """One version of a model bundle in S3, pinned by its version id and sha256: what the function
    loads at cold start, and what `make publish` records for the version it uploaded."""

    bucket: str
    key: str
    version_id: str
    sha256: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}?versionId={self.version_id}"

    def parameter_overrides(self) -> str:
        """The template parameters that make a deployed function load exactly this version."""
        return " ".join(f"{parameter}={getattr(self, field)}" for field, _, parameter in S3_PIN)


def base_name(model_name: str) -> str:
    """What the function's names start with: the model's name ("iris" for the default model)."""
    return DEFAULT_MODEL_BASE_NAME if model_name == DEFAULT_MODEL_NAME else model_name


def service_name_for(model_name: str, role: str = "predict") -> str:
    """The Powertools service (and the stack's default name) of a model's function: `<name>-predict`,
    or `<name>-batch-scoring` for the batch job's."""
    return f"{base_name(model_name)}-{role}"


def metrics_namespace_for(model_name: str) -> str:
    """The CloudWatch namespace of a model's metrics: its name in CamelCase, then Prediction."""
    words = re.split(r"[^A-Za-z0-9]+", base_name(model_name))
    return "".join(word[:1].upper() + word[1:] for word in words if word) + "Prediction"


@dataclass(frozen=True)
class Settings:
    model_dir: Path
    service_name: str | None = None
    """None: named after the model (service_name_for)."""
    metrics_namespace: str | None = None
    """None: named after the model (metrics_namespace_for)."""
    role: str = "predict"
    """What the function does, the end of its service name: predict, or batch-scoring for the batch job's."""
    tracing: bool = False
    model_source: S3ModelSource | None = None
    api_base_path: str = ""
    capture_percent: float = 0.0


def s3_model_source() -> S3ModelSource | None:
    """The pinned model bundle the MODEL_S3_* settings name, or None when no bucket is set."""
    values = {variable: os.environ.get(variable, "") for _, variable, _ in S3_PIN}
    bucket_variable = S3_PIN[0][1]
    if not values[bucket_variable]:
        return None
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ConfigurationError(
            f"{bucket_variable} is set, so {', '.join(missing)} must be set too: a model in S3 is pinned "
            "by its version id and sha256"
        )
    pinned = {field: values[variable] for field, variable, _ in S3_PIN}
    return S3ModelSource(**{**pinned, "sha256": pinned["sha256"].lower()})


def _api_base_path() -> str:
    value = os.environ.get(API_BASE_PATH_VARIABLE, "")
    if value and not API_BASE_PATH_PATTERN.fullmatch(value):
        raise ConfigurationError(
            f"{API_BASE_PATH_VARIABLE} is {value!r}: expected empty or a path such as /iris or "
            "/ml/iris (a leading slash, no trailing slash; letters, digits and $-_.+!*'() in each segment)"
        )
    return value


def _capture_percent() -> float:
    value = os.environ.get(CAPTURE_VARIABLE, "") or "0"
    try:
        percent = float(value)
    except ValueError:
        percent = math.nan
    if not 0 <= percent <= 100:
        raise ConfigurationError(f"{CAPTURE_VARIABLE} is {value!r}: expected a percentage from 0 (off) to 100")
    return percent


def load_settings() -> Settings:
    return Settings(
        model_dir=Path(os.environ.get("MODEL_DIR") or DEFAULT_MODEL_DIR),
        service_name=os.environ.get("POWERTOOLS_SERVICE_NAME") or None,
        metrics_namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or None,
        role=os.environ.get("SERVICE_ROLE") or "predict",
        # Off unless the template turns it on: the X-Ray SDK then stays off the cold path.
        tracing=os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").lower() == "false",
        model_source=s3_model_source(),
        api_base_path=_api_base_path(),
        capture_percent=_capture_percent(),
    )
