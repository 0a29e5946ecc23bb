"""build/package.py and build/bytecode.py: the scikit-learn fallback of a DataFrame-fitted model
ships what pandas imports (python-dateutil and six are not the runtime's to give it), and a
failed smoke test names the package's own error line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from build import bytecode, package


def pins(tmp_path: Path, engine: str, dataframe_input: bool) -> set[str]:
    written = package.lambda_requirements(package.FUNCTION_DIR / "requirements.txt", tmp_path, engine, dataframe_input)
    return {line.split("==")[0] for line in written.read_text().splitlines() if "==" in line}


def test_pandas_ships_with_the_dateutil_it_imports(tmp_path: Path) -> None:
    assert {"pandas", "python-dateutil", "six"} <= pins(tmp_path, "scikit-learn", dataframe_input=True)
    assert not {"python-dateutil", "six", "boto3", "botocore"} & pins(tmp_path, "scikit-learn", dataframe_input=False)
    assert not {"boto3", "botocore"} & pins(tmp_path, "scikit-learn", dataframe_input=True)


POWERTOOLS_EXCEPTION = json.dumps(
    {
        "level": "ERROR",
        "message": "unexpected error",
        "exception": 'Traceback (most recent call last):\n  File "/var/task/pandas/__init__.py", line 1\n'
        "ModuleNotFoundError: No module named 'dateutil'",
    }
)


@pytest.mark.parametrize(
    ("printed", "line"),
    [
        (f"START\n{POWERTOOLS_EXCEPTION}\nEND", "ModuleNotFoundError: No module named 'dateutil'"),
        (
            "Traceback (most recent call last):\n  x\nImportError: cannot import name 'y'\n",
            "ImportError: cannot import name 'y'",
        ),
        ('{"level": "INFO", "message": "ok"}\n', None),
    ],
)
def test_the_package_error_line_is_found_in_what_it_printed(printed: str, line: str | None) -> None:
    assert bytecode.package_error(printed) == line


def test_a_smoke_test_with_server_errors_names_the_package_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def answer_with_500(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        Path(command[-2]).write_text(json.dumps({"statuses": {"http-api-predict.json": 500}, "modules": []}))
        return subprocess.CompletedProcess(command, 0, stdout=POWERTOOLS_EXCEPTION + "\n", stderr="")

    monkeypatch.setattr(bytecode.subprocess, "run", answer_with_500)

    with pytest.raises(bytecode.SmokeTestError) as failed:
        bytecode.trace_cold_path(tmp_path, [tmp_path / "http-api-predict.json"])

    assert str(failed.value).endswith("the package's error: ModuleNotFoundError: No module named 'dateutil'")
