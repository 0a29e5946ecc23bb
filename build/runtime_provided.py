"""What Lambda's Python runtime provides beside the package (boto3, botocore and their helpers,
left out of the package by build/slim.py), installed here at the function's pinned versions for
local runs that import them: the package with tracing on, or with a model from S3.
local/lambda_runtime.py puts the directory after the package on the import path when
LAMBDA_LOCAL_RUNTIME_PATH names it, as /var/runtime follows /var/task on Lambda.
"""

from __future__ import annotations

import subprocess
import sys

from build import FUNCTION_DIR, PROJECT_ROOT
from build.package import pinned_versions
from build.slim import RUNTIME_PROVIDED
from local.lambda_runtime import RUNTIME_PATH_VARIABLE

RUNTIME_PROVIDED_DIR = PROJECT_ROOT / ".lambda-runtime-provided"
# What Lambda sets for a sampled request with active tracing, the runtime's libraries beside the
# package, and an X-Ray daemon address nothing listens on (the SDK logs, and does not fail).
TRACING_ENVIRONMENT = {
    "POWERTOOLS_TRACE_DISABLED": "false",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    RUNTIME_PATH_VARIABLE: str(RUNTIME_PROVIDED_DIR),
}


def ensure_runtime_provided() -> None:
    """Install the runtime-provided libraries once, at the versions the function pins."""
    if RUNTIME_PROVIDED_DIR.is_dir():
        return
    pins = pinned_versions(FUNCTION_DIR / "requirements.txt")
    specs = [f"{name}=={version}" for name, version in pins.items() if name in RUNTIME_PROVIDED]
    target = ["--target", str(RUNTIME_PROVIDED_DIR)]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *target, *specs], check=True)
