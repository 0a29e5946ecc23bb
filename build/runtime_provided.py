"""What Lambda's Python runtime provides beside the package (boto3, botocore and their helpers,
left out of the package by build/slim.py), provided here at the function's pinned versions for
local runs that import them: the package with tracing on, or with a model from S3.
local/lambda_runtime.py puts the directory after the package on the import path when
LAMBDA_LOCAL_RUNTIME_PATH names it, as /var/runtime follows /var/task on Lambda.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

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


def ensure_runtime_provided(directory: Path = RUNTIME_PROVIDED_DIR) -> None:
    """Provide the runtime's libraries in `directory` once, at the versions the function pins. Those this
    environment has at the same versions are linked from it (botocore alone cost a pip install of 18 s
    and 11 s of CPU in every fresh clone); pip installs the others. Made beside and renamed into place,
    so that an install cut short is never taken for a complete one."""
    if directory.is_dir():
        return
    pins = pinned_versions(FUNCTION_DIR / "requirements.txt")
    partial = directory.with_name(f"{directory.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    to_install = []
    for name, version in sorted(pins.items()):
        if name not in RUNTIME_PROVIDED:
            continue
        installed = installed_distribution(name)
        if installed is None or installed.version != version:
            to_install.append(f"{name}=={version}")
            continue
        for entry in top_level_entries(installed):
            (partial / entry.name).symlink_to(entry)
    if to_install:
        target = ["--target", str(partial)]
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *target, *to_install], check=True
        )
    partial.rename(directory)


def installed_distribution(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def top_level_entries(distribution: metadata.Distribution) -> set[Path]:
    """The modules, packages and metadata folder a distribution put in site-packages (not its scripts,
    nor the bytecode Python writes again wherever it imports from)."""
    files = distribution.files or []
    tops = {file.parts[0] for file in files if file.parts[0] not in ("..", "__pycache__")}
    return {Path(str(distribution.locate_file(top))) for top in tops}
