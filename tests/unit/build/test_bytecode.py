"""The build's smoke test of the package (build/bytecode.py), seen failing on tiny stand-in packages:
a server error or no answer fails the build, an answer without one passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from build.bytecode import SmokeTestError, trace_cold_path
from tests.unit.build.conftest import fake_package


@pytest.fixture
def sample_event(tmp_path: Path) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"version": "2.0", "rawPath": "/predict"}))
    return path


@pytest.mark.parametrize("status", [500, 502, 503])
def test_the_smoke_test_fails_a_package_that_answers_a_server_error(
    status: int, tmp_path: Path, sample_event: Path
) -> None:
    broken = fake_package(tmp_path / "package", f"return {{'statusCode': {status}, 'body': ''}}")

    with pytest.raises(SmokeTestError, match=rf"server errors: {{'event.json': {status}}}"):
        trace_cold_path(broken, [sample_event])


def test_the_smoke_test_fails_a_package_that_cannot_answer(tmp_path: Path, sample_event: Path) -> None:
    broken = fake_package(tmp_path / "package", "raise RuntimeError('model missing')")

    with pytest.raises(SmokeTestError, match=r"failed to start or answer:(.|\n)*RuntimeError: model missing"):
        trace_cold_path(broken, [sample_event])


@pytest.mark.parametrize("status", [200, 400, 404, 413, 499])
def test_the_smoke_test_passes_a_package_that_answers_without_a_server_error(
    status: int, tmp_path: Path, sample_event: Path
) -> None:
    working = fake_package(tmp_path / "package", f"return {{'statusCode': {status}, 'body': ''}}")

    traced = trace_cold_path(working, [sample_event])

    assert traced.statuses == {"event.json": status}
    assert working / "app.py" in traced.modules
