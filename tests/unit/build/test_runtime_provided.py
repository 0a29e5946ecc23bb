"""The libraries Lambda's runtime provides beside the package are provided for local runs at the
versions the function pins, linked from this environment when it has them, installed otherwise."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from build import FUNCTION_DIR, runtime_provided
from build.package import pinned_versions
from build.slim import RUNTIME_PROVIDED


def provided_versions(directory: Path) -> dict[str, str]:
    return {
        distribution.name.lower(): distribution.version
        for distribution in metadata.distributions(path=[str(directory)])
    }


def test_the_pinned_runtime_libraries_are_provided_at_their_pinned_versions(tmp_path: Path) -> None:
    directory = tmp_path / "runtime"

    runtime_provided.ensure_runtime_provided(directory)

    pins = pinned_versions(FUNCTION_DIR / "requirements.txt")
    expected = {name: version for name, version in pins.items() if name in RUNTIME_PROVIDED}
    assert expected
    assert provided_versions(directory) == expected
    assert (directory / "botocore" / "__init__.py").is_file()
    assert not directory.with_name("runtime.partial").exists()


def test_a_library_at_another_version_here_is_installed_at_the_pinned_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed: list[list[str]] = []

    def pip(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        installed.append(command)
        return subprocess.CompletedProcess(command, 0)

    real = runtime_provided.installed_distribution
    monkeypatch.setattr(runtime_provided, "installed_distribution", lambda name: None if name == "six" else real(name))
    monkeypatch.setattr(runtime_provided.subprocess, "run", pip)
    directory = tmp_path / "runtime"

    runtime_provided.ensure_runtime_provided(directory)

    six = pinned_versions(FUNCTION_DIR / "requirements.txt")["six"]
    assert [command[-1] for command in installed] == [f"six=={six}"]
    assert "six" not in provided_versions(directory)
    assert "botocore" in provided_versions(directory)


def test_a_directory_already_there_is_kept(tmp_path: Path) -> None:
    directory = tmp_path / "runtime"
    directory.mkdir()

    runtime_provided.ensure_runtime_provided(directory)

    assert list(directory.iterdir()) == []
