"""The package `sam build` produced, run the way Lambda runs it: a clean python3.12 process with
only the package (and the standard library) on its import path and no bytecode writes."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import sysconfig
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from local.lambda_local import ISOLATED_PYTHON_FLAGS, PROJECT_ROOT
from tests.events import EVENTS_DIR, response_text
from tests.expectations import EVENT_EXPECTATIONS, check_response

LAMBDA_LOCAL = PROJECT_ROOT / "local" / "lambda_local.py"
CLEAN_PYTHON = [sys.executable, *ISOLATED_PYTHON_FLAGS]


def run_clean(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLEAN_PYTHON, *args], capture_output=True, text=True, timeout=120, check=True)


def pycache_dirs(package: Path) -> int:
    return sum(1 for _ in package.rglob("__pycache__"))


def test_every_event_file_through_the_built_package(package: Path, manifest: dict[str, Any]) -> None:
    names = sorted(EVENT_EXPECTATIONS)
    pycache_before = pycache_dirs(package)

    result = run_clean(str(LAMBDA_LOCAL), "invoke", *(str(EVENTS_DIR / name) for name in names))

    responses = json.loads(result.stdout)
    assert len(responses) == len(names)
    for name, response in zip(names, responses, strict=True):
        check_response(
            name,
            response["statusCode"],
            response["headers"]["content-type"],
            response_text(response),
            manifest["version"],
        )
    assert pycache_dirs(package) == pycache_before
    assert '"message":"model loaded"' in result.stderr


IMPORTED_MODULES_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import app
modules = [m for m in list(sys.modules.values()) if getattr(m, "__file__", None)]
print(json.dumps([[m.__file__, getattr(m, "__cached__", None)] for m in modules]))
"""


def test_package_imports_nothing_from_outside_itself(package: Path) -> None:
    modules = json.loads(run_clean("-c", IMPORTED_MODULES_PROBE, str(package)).stdout.splitlines()[-1])

    allowed = (package.resolve(), Path(sysconfig.get_paths()["stdlib"]).resolve())
    outside = [file for file, _ in modules if not any(Path(file).resolve().is_relative_to(r) for r in allowed)]
    assert outside == []
    assert [file for file, _ in modules if "/sklearn/" in file or "/scipy/" in file or "/joblib/" in file] == []


def test_every_module_of_the_cold_start_has_shipped_bytecode(package: Path) -> None:
    modules = json.loads(run_clean("-c", IMPORTED_MODULES_PROBE, str(package)).stdout.splitlines()[-1])

    from_package = [
        (file, cached) for file, cached in modules if file.startswith(str(package)) and file.endswith(".py")
    ]
    assert len(from_package) > 100
    assert [file for file, cached in from_package if not (cached and Path(cached).is_file())] == []


def test_package_leaves_out_what_never_runs(package: Path) -> None:
    assert not [path for path in package.rglob("tests") if path.is_dir()]
    assert not list(package.rglob("*.pyi"))
    assert not (package / "bin").exists()
    assert not (package / "boto3").exists()
    assert not (package / "botocore").exists()
    assert (package / "numpy.libs").is_dir()


def test_package_serves_the_compiled_forest_without_scikit_learn(package: Path, manifest: dict[str, Any]) -> None:
    engine = manifest["engine"]
    installed = {
        match[1].lower(): match[2]
        for path in package.glob("*.dist-info")
        if (match := re.match(r"(.+)-([^-]+)\.dist-info$", path.name))
    }

    assert engine["name"] == "compiled"
    assert engine["kind"] == "forest"
    assert hashlib.sha256((package / "model" / engine["file"]).read_bytes()).hexdigest() == engine["sha256"]
    assert not (package / "model" / "model.joblib").exists()
    assert installed["numpy"] == manifest["libraries"]["numpy"]
    for left_out in ("scikit_learn", "scipy", "joblib", "threadpoolctl"):
        assert left_out not in installed
    for directory in ("sklearn", "scipy", "scipy.libs", "joblib"):
        assert not (package / directory).exists()
    assert (package / "app.py").is_file()
    assert not (package / "Makefile").exists()
    assert not (package / "requirements.txt").exists()


def call(url: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_start_api_answers_the_seed_curl_command(start_api: str) -> None:
    assert call(f"{start_api}/predict", b'{"features": [6.1, 2.8, 4.7, 1.2]}') == (200, {"prediction": 1})


def test_start_api_status_and_errors(start_api: str, manifest: dict[str, Any]) -> None:
    status, body = call(f"{start_api}/")
    assert status == 200
    assert body["model"] == {"name": manifest["name"], "version": manifest["version"], "engine": "compiled"}

    status, body = call(f"{start_api}/predict", b'{"features": [6.1, 2.8]}')
    assert status == 422
    assert "expected 4 numbers" in body["error"]


def test_benchmark_probe_measures_the_package(package: Path) -> None:
    from bench.measure import Variant, measure_once

    variant = Variant("project", package)

    measure_once(variant, warm=5)

    assert variant.first_response == '200 {"prediction":1}'
    assert len(variant.cold_s) == 1
    assert len(variant.warm_ms) == 5
    assert variant.rss_mib[0] > 10


def test_built_package_answers_with_tracing_on(package: Path) -> None:
    """Tracing imports modules the sample events (run with tracing off) never import: none may be missing."""
    from bench.measure import TRACING_ENVIRONMENT
    from bench.packages import RUNTIME_PROVIDED_DIR, ensure_runtime_provided

    ensure_runtime_provided()
    event = EVENTS_DIR / "http-api-predict.json"

    result = subprocess.run(
        [*CLEAN_PYTHON, str(LAMBDA_LOCAL), "invoke", str(event)],
        env={**os.environ, **TRACING_ENVIRONMENT, "LAMBDA_LOCAL_RUNTIME_PATH": str(RUNTIME_PROVIDED_DIR)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert json.loads(result.stdout)["body"] == '{"prediction":1}'
    assert "Traceback" not in result.stderr


class BuiltPackageLambda:
    """A Lambda client whose `invoke` runs the built package on the payload, in a clean process."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        event_file = self.scratch / "event.json"
        event_file.write_bytes(Payload)
        answer = run_clean(str(LAMBDA_LOCAL), "invoke", str(event_file)).stdout.encode()
        return {"StatusCode": 200, "Payload": io.BytesIO(answer)}


def test_the_built_hook_passes_the_built_package(package: Path, manifest: dict[str, Any], tmp_path: Path) -> None:
    hook_dir = package.parent / "PreTrafficHookFunction"
    module_spec = importlib.util.spec_from_file_location("built_hook", hook_dir / "hook.py")
    assert module_spec is not None
    assert module_spec.loader is not None
    built_hook = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(built_hook)
    checks = json.loads((hook_dir / "checks.json").read_text())

    problems = built_hook.check_version(BuiltPackageLambda(tmp_path), "version-arn", checks)

    assert problems == []
    assert checks["model"] == {"name": manifest["name"], "version": manifest["version"]}
    assert len(checks["cases"]) == 3
