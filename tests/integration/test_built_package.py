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

from build.runtime_provided import TRACING_ENVIRONMENT, ensure_runtime_provided
from build.train import MODEL_FILE
from local.lambda_local import ISOLATED_PYTHON_FLAGS, PROJECT_ROOT
from serving.config import PACKAGE_MODEL_DIR
from tests.events import EVENTS_DIR, response_text
from tests.expectations import EVENT_EXPECTATIONS, check_response

LAMBDA_LOCAL = PROJECT_ROOT / "local" / "lambda_local.py"
CLEAN_PYTHON = [sys.executable, *ISOLATED_PYTHON_FLAGS]
SEED_EVENT = EVENTS_DIR / "http-api-predict.json"


def run_clean(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLEAN_PYTHON, *args], capture_output=True, text=True, timeout=120, check=True)


def run_local(*args: str) -> subprocess.CompletedProcess[str]:
    """local/lambda_local.py, which reads template.yaml here and runs the package in a clean process."""
    return subprocess.run(
        [sys.executable, str(LAMBDA_LOCAL), *args], capture_output=True, text=True, timeout=120, check=True
    )


def pycache_dirs(package: Path) -> int:
    return sum(1 for _ in package.rglob("__pycache__"))


def test_every_event_file_through_the_built_package(package: Path, manifest: dict[str, Any]) -> None:
    names = sorted(EVENT_EXPECTATIONS)
    pycache_before = pycache_dirs(package)

    result = run_local("invoke", *(str(EVENTS_DIR / name) for name in names))

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


def test_the_cold_start_imports_no_masked_arrays(package: Path) -> None:
    """numpy.ma costs a tenth of a second of cold start under load and serves nothing (numpy's
    np.unique imports it, for one)."""
    modules = json.loads(run_clean("-c", IMPORTED_MODULES_PROBE, str(package)).stdout.splitlines()[-1])

    assert [file for file, _ in modules if "/numpy/ma/" in file] == []


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
    assert hashlib.sha256((package / PACKAGE_MODEL_DIR / engine["file"]).read_bytes()).hexdigest() == engine["sha256"]
    assert not (package / PACKAGE_MODEL_DIR / MODEL_FILE).exists()
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
    """bench/probe.py as the benchmark runs it (its command line): the first answer on its report
    descriptor, then the warm timings and the peak RSS."""
    read_end, write_end = os.pipe()
    warm = 5
    probe = subprocess.Popen(
        [
            *CLEAN_PYTHON,
            str(PROJECT_ROOT / "bench" / "probe.py"),
            str(package),
            str(SEED_EVENT),
            str(warm),
            str(write_end),
        ],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as report:
        first, stats = report.readline(), report.readline()
    assert probe.wait(timeout=120) == 0

    assert first == 'first 200 {"prediction":1}\n'
    measured = json.loads(stats)
    assert len(measured["warm_ns"]) == warm
    assert all(ns > 0 for ns in measured["warm_ns"])
    assert measured["peak_rss_kib"] > 10 * 1024


def test_built_package_answers_with_tracing_on(package: Path) -> None:
    """Tracing imports modules the sample events (run with tracing off) never import: none may be missing."""
    ensure_runtime_provided()
    event = SEED_EVENT

    result = subprocess.run(
        [sys.executable, str(LAMBDA_LOCAL), "invoke", str(event)],
        env={**os.environ, **TRACING_ENVIRONMENT},
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
        answer = run_local("invoke", str(event_file)).stdout.encode()
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
