"""The tree benchmark fills every column of its table, marks missed targets, and writes the table
between its markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import trees
from build.sizes import MB


@pytest.mark.slow
def test_a_tiny_run_fills_every_column_and_writes_between_the_markers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    installed: list[tuple[str, tuple[str, ...]]] = []

    def code_and_dependencies(engine: str, libraries: tuple[str, ...] = ()) -> int:
        installed.append((engine, libraries))  # no pip in a unit test: the sizes are the build's
        return 60 * MB if engine == "compiled" else 180 * MB

    monkeypatch.setattr(trees, "code_and_dependencies_bytes", code_and_dependencies)
    document = tmp_path / "benchmark.md"
    document.write_text("before\n<!-- bench:start trees -->\nold\n<!-- bench:end trees -->\nafter\n")
    argv = ["--families", "LightGBM", "--sizes", "small", "--scale", "0.02"]
    trees.main([*argv, "--rounds", "1", "--models", str(tmp_path / "models"), "--output", str(document)])

    text = document.read_text()
    assert text.startswith("before\n<!-- bench:start trees -->\n")
    assert text.endswith("<!-- bench:end trees -->\nafter\n")
    assert "\nold\n" not in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| family")]
    assert [row.split(" | ")[0] for row in rows] == ["| LightGBM"]
    for row in rows:
        cells = row.strip("| ").split(" | ")
        assert len(cells) == len(trees.HEADER)
        assert all(cell.strip() for cell in cells)
        assert cells[4].startswith("60 / 180")  # the package: code and dependencies plus the model file
    assert ("scikit-learn", ("lightgbm",)) in installed
    assert ("compiled", ()) in installed
    assert "load average" in capsys.readouterr().out


def test_a_ratio_over_its_target_is_marked_missed() -> None:
    assert trees.ratio(1.0, 4.0, trees.COLD_LIMIT) == "0.25x"
    assert trees.ratio(2.0, 4.0, trees.COLD_LIMIT) == "0.50x MISSED"


def test_the_package_target_holds_only_for_compiled_models_up_to_50_mb() -> None:
    assert trees.package_cell(85, 200, model_mb=30) == "85 / 200 MISSED"
    assert trees.package_cell(120, 300, model_mb=60) == "120 / 300 (library over Lambda's 250 MB)"
    assert trees.package_cell(70, 180, model_mb=10) == "70 / 180"
