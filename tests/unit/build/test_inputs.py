"""build/inputs.py: of a model spec's folder only what the spec names is a build input, so that
scoring a file or writing a log beside a spec costs no rebuild; the record names the spec built,
for `make score` without MODEL=."""

from __future__ import annotations

from pathlib import Path

import pytest

from build import inputs
from build.inputs import inputs_digest, last_spec, spec_files, stamp_path


def project(tmp_path: Path) -> Path:
    """An empty project beside the user's model folder."""
    root = tmp_path / "project"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture
def own_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "my-model"
    (folder / "data").mkdir(parents=True)
    (folder / "spec.toml").write_text(
        'name = "mine"\ntask = "classification"\n[training]\ndata = "data/rows.csv"\nestimator = "recipe.py:make"\n'
    )
    (folder / "data" / "rows.csv").write_text("a,b\n1,2\n")
    (folder / "recipe.py").write_text("def make(): ...\n")
    monkeypatch.setenv("MODEL", str(folder / "spec.toml"))
    return folder


def test_only_the_spec_and_the_files_it_names_are_inputs(own_model: Path, tmp_path: Path) -> None:
    (own_model / "scored.csv").write_text("row,prediction\n1,0\n")
    (own_model / "build.log").write_text("...")

    assert spec_files(tmp_path / "project") == [
        own_model / "data" / "rows.csv",
        own_model / "recipe.py",
        own_model / "spec.toml",
    ]


@pytest.mark.parametrize("name", ["scored.csv", "data/other.csv", "notes/build.log"])
def test_a_file_written_beside_the_spec_keeps_the_digest(own_model: Path, tmp_path: Path, name: str) -> None:
    before = inputs_digest("x86_64", project(tmp_path))
    (own_model / name).parent.mkdir(exist_ok=True)
    (own_model / name).write_text("anything\n")

    assert inputs_digest("x86_64", project(tmp_path)) == before


@pytest.mark.parametrize("name", ["spec.toml", "data/rows.csv", "recipe.py"])
def test_a_file_the_spec_names_changes_the_digest(own_model: Path, tmp_path: Path, name: str) -> None:
    before = inputs_digest("x86_64", project(tmp_path))
    (own_model / name).write_text((own_model / name).read_text() + "\n")

    assert inputs_digest("x86_64", project(tmp_path)) != before


def test_the_record_names_the_spec_built_for_make_score(
    own_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "PredictFunction"
    monkeypatch.setattr("build.package.main", lambda argv: None)

    assert last_spec(package) == ""
    inputs.build(package, "x86_64", project(tmp_path))

    assert last_spec(package) == str(own_model / "spec.toml")
    assert stamp_path(package).read_text().splitlines()[0] == inputs_digest("x86_64", project(tmp_path))
    assert inputs.is_fresh(package, "x86_64", project(tmp_path))
    monkeypatch.delenv("MODEL")
    inputs.build(package, "x86_64", project(tmp_path))
    assert last_spec(package) == ""  # the default: make score needs no MODEL=


def test_the_default_stack_is_named_after_the_model_built_last(
    own_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "PredictFunction"
    monkeypatch.setattr("build.package.main", lambda argv: None)

    assert inputs.stack_name(package) == "iris-predict"  # nothing built: the default model
    inputs.build(package, "x86_64", project(tmp_path))

    assert inputs.stack_name(package) == "mine-predict"
