"""Ship bytecode for the modules the cold path imports, so Lambda does not compile them at
every cold start (its code directory is read-only, so Python cannot cache bytecode there).

Which modules: the package is run isolated against the sample events and every module it
imports from itself is compiled, by this Python (the runtime's minor version), as
unchecked-hash .pyc files: valid whatever timestamps the zip and Lambda's unpacking leave.
Running the events is also a smoke test of the package: any 5xx fails the build.
"""

from __future__ import annotations

import json
import logging
import py_compile
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.util import cache_from_source
from pathlib import Path

from local.lambda_local import ISOLATED_PYTHON_FLAGS

log = logging.getLogger(__name__)

TRACER = Path(__file__).resolve().parent / "trace_cold_path.py"
# The last line of a Python traceback: "ModuleNotFoundError: No module named 'dateutil'".
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b.*$")
MAX_ERROR_LINE = 300


def package_error(output: str) -> str | None:
    """The package's own error line in what it printed while answering: the last exception of a
    traceback, in plain text or inside a JSON log line's "exception" (Powertools' format)."""
    found: str | None = None
    for line in output.splitlines():
        text = line.strip()
        if text.startswith("{"):
            try:
                record = json.loads(text)
            except ValueError:
                record = None
            if isinstance(record, dict) and isinstance(record.get("exception"), str):
                lines = [part.strip() for part in record["exception"].splitlines() if part.strip()]
                found = lines[-1] if lines else found
                continue
        if EXCEPTION_LINE.match(text):
            found = text
    return found[:MAX_ERROR_LINE] if found else None


class SmokeTestError(Exception):
    """The built package failed to answer the sample events."""


@dataclass(frozen=True)
class ColdPath:
    statuses: dict[str, int]
    modules: list[Path]


def trace_cold_path(package: Path, events: list[Path]) -> ColdPath:
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "trace.json"
        command = [sys.executable, *ISOLATED_PYTHON_FLAGS, str(TRACER), str(package), str(output), *map(str, events)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        printed = f"{result.stdout}\n{result.stderr}"
        if result.returncode != 0:
            raise SmokeTestError(
                f"the package failed to start or answer: {package_error(printed) or 'no error line'}\n"
                f"{result.stderr or result.stdout}"
            )
        traced = json.loads(output.read_text())
    failures = {name: status for name, status in traced["statuses"].items() if status >= 500}
    if failures:
        raise SmokeTestError(
            f"the package answered sample events with server errors: {failures}; "
            f"the package's error: {package_error(printed) or 'none logged'}"
        )
    return ColdPath(statuses=traced["statuses"], modules=[Path(module) for module in traced["modules"]])


def compile_modules(modules: list[Path]) -> int:
    """Compile each .py module beside itself in __pycache__; return the bytes written."""
    written = 0
    for module in modules:
        if module.suffix != ".py":
            continue
        target = Path(cache_from_source(str(module)))
        py_compile.compile(
            str(module),
            cfile=str(target),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        written += target.stat().st_size
    return written


def compile_cold_path(package: Path, events: list[Path], modules: list[Path]) -> ColdPath:
    """Compile `modules` (what answering `events` imported), then answer the events again
    from the bytecode and prove nothing imported was left uncompiled."""
    written = compile_modules(modules)
    cold_path = trace_cold_path(package, events)
    uncompiled = [m for m in cold_path.modules if m.suffix == ".py" and not Path(cache_from_source(str(m))).is_file()]
    if uncompiled:
        raise SmokeTestError(f"modules imported without shipped bytecode: {uncompiled[:5]}")
    log.info(
        "answered %d sample events without a server error; shipped bytecode for the %d modules imported (%.1f MB)",
        len(cold_path.statuses),
        len(cold_path.modules),
        written / 1e6,
    )
    return cold_path
