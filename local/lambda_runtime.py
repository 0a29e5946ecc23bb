"""What Lambda's Python runtime does inside the execution environment, for local/lambda_local.py:
import the handler with the environment variables Lambda sets, hand it a context, answer each
event with its response or Lambda's error document.

local/lambda_local.py runs this file as its child, `python -I -S -B -u lambda_runtime.py PACKAGE
TIMEOUT_S`: isolated, so nothing beside it is importable and it is written self-contained, with
the standard library alone. bench/probe.py, build/trace_cold_path.py and local/score.py import it
in isolated processes too: its imports are light ones the function imports anyway (they count in
the cold starts measured).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    Handler = Callable[[dict[str, Any], Any], Any]

FUNCTION_NAME = "PredictFunction"
HANDLER_MODULE, HANDLER_FUNCTION = "app", "handler"
REGION, ACCOUNT_ID = "us-east-1", "123456789012"
# Lambda's values when the template sets none.
LAMBDA_DEFAULT_MEMORY_MB, LAMBDA_DEFAULT_TIMEOUT_S = 128, 3
# A directory standing in for what the Lambda runtime provides beside the package (boto3,
# botocore): needed only to run with tracing on or with a model from S3.
RUNTIME_PATH_VARIABLE = "LAMBDA_LOCAL_RUNTIME_PATH"

log = logging.getLogger("lambda_local")  # the runner's own log (parent and child), on stderr beside the function's


def log_to_stderr() -> None:
    log.addHandler(logging.StreamHandler())
    log.setLevel(logging.INFO)
    log.propagate = False


class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name = FUNCTION_NAME
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FUNCTION_NAME}"

    def __init__(self, timeout_s: float = LAMBDA_DEFAULT_TIMEOUT_S) -> None:
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", LAMBDA_DEFAULT_MEMORY_MB))
        self.aws_request_id = str(uuid.uuid4())
        self.deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def load_handler(package: Path) -> Handler:
    """Import the handler from `package` with the environment variables Lambda sets (the memory
    size as the runner handed it), the package first on the import path."""
    lambda_variables = {"AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST"}
    lambda_variables |= {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "LAMBDA_TASK_ROOT": str(package)}
    for name, value in {**lambda_variables, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(LAMBDA_DEFAULT_MEMORY_MB)}.items():
        os.environ.setdefault(name, value)
    sys.path.insert(0, str(package))
    if os.environ.get(RUNTIME_PATH_VARIABLE):  # what Lambda's /var/runtime adds after /var/task
        sys.path.append(os.environ[RUNTIME_PATH_VARIABLE])
    handler: Handler = getattr(importlib.import_module(HANDLER_MODULE), HANDLER_FUNCTION)
    return handler


def runtime(package: Path, timeout_s: float) -> None:
    """Import the handler (the cold start), then answer each JSON event line on stdin with one
    line on the runner's pipe, the original stdout: `{"response": ...}` or `{"error": <Lambda's
    error document>}`, `"fatal": true` if the handler could not be imported. The function's
    prints join its log on stderr, as on Lambda."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def failure(error: Exception, kind: str) -> dict[str, Any]:
        trace = traceback.format_tb(error.__traceback__)
        return {"errorMessage": str(error), "errorType": kind, "stackTrace": trace}

    try:
        handler = load_handler(package)
    except Exception as error:
        log.exception("init failed: %s.%s could not be imported", HANDLER_MODULE, HANDLER_FUNCTION)
        kind = "Runtime.ImportModuleError" if isinstance(error, ImportError) else type(error).__name__
        answers.write(json.dumps({"error": failure(error, kind), "fatal": True}) + "\n")
        return
    for line in sys.stdin:
        try:
            reply = {"response": handler(json.loads(line), LambdaContext(timeout_s))}
        except Exception as error:
            log.exception("the function raised")
            reply = {"error": failure(error, type(error).__name__)}
        answers.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    log_to_stderr()
    runtime(Path(sys.argv[1]), float(sys.argv[2]))
