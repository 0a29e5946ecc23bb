"""The entry to the build: which files a package is built from (so that an unchanged one is
reused and a changed one never is), and build/setup_env.sh, which creates the build environment
for `make setup` and for a bare `sam build` alike."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from build import MODEL_SOURCE_VARIABLE, PROJECT_ROOT, inputs
from build.inputs import input_files, inputs_digest, is_fresh, last_spec, spec_files, stamp_path
from local.lambda_local import DEFAULT_PACKAGE

SETUP_ENV = PROJECT_ROOT / "build" / "setup_env.sh"
BUILT = DEFAULT_PACKAGE.relative_to(PROJECT_ROOT)
PINS = ("requirements-dev.txt", "functions/predict/requirements.txt")
# What the build reads, by the list: the function's code and pins, the build step, the
# training inputs, the template and SAM's settings, the smoke test's events and runner.
MUST_BE_INPUTS = (
    "functions/predict/app.py",
    "functions/predict/serving/model.py",
    "functions/predict/requirements.txt",
    "functions/predict/Makefile",
    "functions/pretraffic/hook.py",
    "build/package.py",
    "build/train.py",
    "build/setup_env.sh",
    "requirements-dev.txt",
    "template.yaml",
    "samconfig.toml",
    "Makefile",
    "local/lambda_local.py",
)
# Files a project holds that nothing in the package comes from, as (path, content).
NOT_INPUTS = (
    "tests/unit/predict/test_app.py",
    "bench/run.py",
    "docs/api.md",
    "README.md",
    "pyproject.toml",
    "requirements-dev.in",
    ".venv/lib/python3.12/site-packages/numpy/__init__.py",
    f"{BUILT}/app.py",
    f"{BUILT}.inputs",
    ".model-cache/model.joblib",
    ".git/HEAD",
    ".ci/run",
    "functions/predict/__pycache__/app.cpython-312.pyc",
    "build/__pycache__/train.cpython-312.pyc",
    "functions/predict/serving/model.pyc",
    "mutants/functions/predict/serving/model.py",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this project's inputs, beside one file of every kind that is not an input."""
    root = tmp_path_factory.mktemp("project")
    for path in input_files(PROJECT_ROOT):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / path, root / path)
    for name in NOT_INPUTS:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("not an input\n")
    return root


def test_the_build_reads_only_inputs_of_the_hash() -> None:
    found = {path.as_posix() for path in input_files(PROJECT_ROOT)}

    assert set(MUST_BE_INPUTS) <= found
    assert {path.relative_to(PROJECT_ROOT).as_posix() for path in (PROJECT_ROOT / "events").glob("*.json")} <= found
    assert not [path for path in found if path.startswith(("tests/", "bench/", ".")) or "__pycache__" in path]


def test_files_that_are_not_inputs_are_left_out(project: Path) -> None:
    found = {path.as_posix() for path in input_files(project)}

    assert found == {path.as_posix() for path in input_files(PROJECT_ROOT)}
    assert found.isdisjoint(NOT_INPUTS)


@pytest.mark.slow
def test_changing_any_input_changes_the_digest(project: Path) -> None:
    before = inputs_digest("x86_64", project)
    unchanged = []
    for path in input_files(project):
        original = (project / path).read_bytes()
        (project / path).write_bytes(original + b"\n")
        if inputs_digest("x86_64", project) == before:
            unchanged.append(path)
        (project / path).write_bytes(original)

    assert unchanged == []
    assert inputs_digest("x86_64", project) == before


def test_changing_what_is_not_an_input_keeps_the_digest(project: Path) -> None:
    before = inputs_digest("x86_64", project)
    for name in NOT_INPUTS:
        (project / name).write_text("changed\n")

    assert inputs_digest("x86_64", project) == before


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda root: (root / "functions/predict/serving/new.py").write_text(""), id="new-module"),
        pytest.param(lambda root: (root / "events/http-api-predict.json").unlink(), id="removed-event"),
        pytest.param(lambda root: (root / "build/train.py").rename(root / "build/training.py"), id="renamed"),
        pytest.param(lambda root: (root / "model-spec.toml").write_text("n_estimators = 3\n"), id="new-top-level-file"),
    ],
)
def test_adding_removing_or_renaming_an_input_changes_the_digest(
    change: Callable[[Path], object], tmp_path: Path, project: Path
) -> None:
    root = tmp_path / "copy"
    shutil.copytree(project, root)
    before = inputs_digest("x86_64", root)

    change(root)

    assert inputs_digest("x86_64", root) != before


def test_the_architecture_is_an_input(project: Path) -> None:
    assert inputs_digest("x86_64", project) != inputs_digest("arm64", project)


def test_the_model_source_is_an_input(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    in_package = inputs_digest("x86_64", project)
    monkeypatch.setenv(MODEL_SOURCE_VARIABLE, "package")
    assert inputs_digest("x86_64", project) == in_package

    monkeypatch.setenv(MODEL_SOURCE_VARIABLE, "s3")
    assert inputs_digest("x86_64", project) != in_package


def test_the_chosen_spec_and_the_files_it_names_are_inputs(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = inputs_digest("x86_64", project)
    monkeypatch.setenv("MODEL", str(project / "models" / "penguins.toml"))
    inside = inputs_digest("x86_64", project)
    own = tmp_path / "my-model"
    own.mkdir()
    (own / "spec.toml").write_text('name = "mine"\n[training]\ndata = "rows.csv"\n')
    (own / "rows.csv").write_text("a,b\n1,2\n")
    monkeypatch.setenv("MODEL", str(own / "spec.toml"))
    outside = inputs_digest("x86_64", project)
    (own / "rows.csv").write_text("a,b\n1,3\n")

    assert len({default, inside, outside}) == 3
    assert inputs_digest("x86_64", project) != outside


def test_the_record_lives_beside_the_package_not_in_it(tmp_path: Path) -> None:
    package = tmp_path / DEFAULT_PACKAGE.relative_to(PROJECT_ROOT)

    assert stamp_path(package).parent == package.parent
    assert stamp_path(package).name.startswith(package.name)
    assert stamp_path(package) != package


def fake_build(calls: list[list[str]], during: Callable[[], object] = lambda: None) -> Callable[[list[str]], None]:
    def build_package(argv: list[str]) -> None:
        calls.append(argv)
        during()

    return build_package


def test_a_build_records_its_inputs_and_a_check_then_finds_it_fresh(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "PredictFunction"
    calls: list[list[str]] = []
    monkeypatch.setattr("build.package.main", fake_build(calls))

    assert not is_fresh(package, "arm64", project)
    inputs.build(package, "arm64", project)

    assert calls == [["--out", str(package), "--architecture", "arm64"]]
    assert is_fresh(package, "arm64", project)
    assert not is_fresh(package, "x86_64", project)


def test_an_edit_during_the_build_leaves_the_package_stale(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "copy"
    shutil.copytree(project, root)
    package = tmp_path / "PredictFunction"

    def edit() -> None:
        (root / "functions/predict/app.py").write_text("edited while building\n")

    monkeypatch.setattr("build.package.main", fake_build([], during=edit))

    inputs.build(package, "x86_64", root)

    assert not is_fresh(package, "x86_64", root)


def test_a_failed_build_forgets_the_previous_record(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "PredictFunction"
    monkeypatch.setattr("build.package.main", fake_build([]))
    inputs.build(package, "x86_64", project)

    def fail(argv: list[str]) -> None:
        raise SystemExit(1)

    monkeypatch.setattr("build.package.main", fail)
    with pytest.raises(SystemExit):
        inputs.build(package, "x86_64", project)

    assert not stamp_path(package).exists()
    assert not is_fresh(package, "x86_64", project)


def test_check_exits_nonzero_unless_fresh(tmp_path: Path) -> None:
    package = tmp_path / "PredictFunction"
    with pytest.raises(SystemExit) as stale:
        inputs.main(["check", "--package", str(package), "--architecture", "x86_64"])
    assert stale.value.code == 1

    stamp_path(package).write_text(inputs_digest("x86_64") + "\n")
    inputs.main(["check", "--package", str(package), "--architecture", "x86_64"])


# build/setup_env.sh, run in a project of its own with stand-ins for python3.12 and pip.


def stub(path: Path, script: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


def setup_project(root: Path) -> Path:
    """A project with the setup script, the pins and a bin/ of only the tools the script uses."""
    for name in (*PINS, "build/setup_env.sh"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, root / name)
    for tool in ("bash", "dirname", "grep", "tail", "touch", "mkdir", "cp"):
        found = shutil.which(tool)
        assert found, tool
        (root / "bin").mkdir(exist_ok=True)
        (root / "bin" / tool).symlink_to(found)
    return root


def run_setup(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The script with bin/ alone on PATH and a home without ~/.pyenv."""
    environment = {"PATH": str(root / "bin"), "HOME": str(root / "home"), **env}
    return subprocess.run(
        [str(root / "bin" / "bash"), str(root / "build" / "setup_env.sh")],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def fake_python312(root: Path, pip: str) -> Path:
    """A python3.12 whose `-m venv DIR` makes a venv whose `-m pip` runs `pip` (a shell line)."""
    venv_python = stub(root / "stubs" / "venv-python", f'[ "$1 $2" = "-m pip" ] && {{ {pip}; }}\nexit 0\n')
    return stub(
        root / "bin" / "python3.12",
        f'[ "$1 $2" = "-m venv" ] && mkdir -p "$3/bin" && cp {venv_python} "$3/bin/python" && exit 0\n'
        "# the version check\n"
        'case "$1 $2" in "-c "*) exit 0 ;; esac\nexit 1\n',
    )


def assert_one_line_failure(result: subprocess.CompletedProcess[str], *named: str) -> str:
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("setup failed: ")
    assert "`make setup`" in lines[0]
    for text in named:
        assert text in lines[0]
    return lines[0]


def test_no_python_312_anywhere_is_one_line_naming_it_and_the_fix(tmp_path: Path) -> None:
    root = setup_project(tmp_path)
    # Interpreters that are not 3.12: on PATH under the name, in a pyenv install, and as PYTHON312.
    wrong = stub(root / "bin" / "python3.12", "exit 1\n")
    stub(root / "home" / ".pyenv" / "versions" / "3.12.1" / "bin" / "python3.12", "exit 1\n")

    result = run_setup(root, PYTHON312=str(wrong))

    assert_one_line_failure(result, "Python 3.12", "pyenv install 3.12", "PYTHON312=")
    assert not (root / ".venv").exists()


def test_pip_failure_is_one_line_with_pips_reason_and_the_fix(tmp_path: Path) -> None:
    root = setup_project(tmp_path)
    reason = "ERROR: Could not find a version that satisfies the requirement numpy==2.5.5 (from versions: none)"
    fake_python312(root, pip=f"echo 'WARNING: Retrying after connection broken'; echo '{reason}' >&2; exit 1")

    result = run_setup(root)

    line = assert_one_line_failure(result, reason, "PyPI", ".venv/setup.log")
    assert line.count("ERROR") == 1
    assert not (root / ".venv" / ".installed").exists()


def test_setup_creates_the_venv_once_and_says_so(tmp_path: Path) -> None:
    root = setup_project(tmp_path)
    fake_python312(root, pip='echo "$@" > pip-args')

    first = run_setup(root)
    second = run_setup(root)

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "creating .venv with python3.12 and the pinned tools of requirements-dev.txt (once; takes a few minutes)"
    ]
    assert (root / "pip-args").read_text().split()[-2:] == ["--requirement", "requirements-dev.txt"]
    assert (root / ".venv" / ".installed").is_file()
    assert (second.returncode, second.stdout, second.stderr) == (0, "", "")


@pytest.mark.parametrize("pin", PINS)
def test_a_changed_pin_updates_the_venv(pin: str, tmp_path: Path) -> None:
    root = setup_project(tmp_path)
    fake_python312(root, pip="true")
    assert run_setup(root).returncode == 0
    stamp = root / ".venv" / ".installed"
    later = stamp.stat().st_mtime + 10
    os.utime(root / pin, (later, later))

    assert run_setup(root).stdout.startswith("updating .venv with python3.12")


def user_project(tmp_path: Path) -> Path:
    """An empty project beside the user's model folder."""
    root = tmp_path / "user_project"
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

    assert spec_files(tmp_path / "user_project") == [
        own_model / "data" / "rows.csv",
        own_model / "recipe.py",
        own_model / "spec.toml",
    ]


@pytest.mark.parametrize("name", ["scored.csv", "data/other.csv", "notes/build.log"])
def test_a_file_written_beside_the_spec_keeps_the_digest(own_model: Path, tmp_path: Path, name: str) -> None:
    before = inputs_digest("x86_64", user_project(tmp_path))
    (own_model / name).parent.mkdir(exist_ok=True)
    (own_model / name).write_text("anything\n")

    assert inputs_digest("x86_64", user_project(tmp_path)) == before


@pytest.mark.parametrize("name", ["spec.toml", "data/rows.csv", "recipe.py"])
def test_a_file_the_spec_names_changes_the_digest(own_model: Path, tmp_path: Path, name: str) -> None:
    before = inputs_digest("x86_64", user_project(tmp_path))
    (own_model / name).write_text((own_model / name).read_text() + "\n")

    assert inputs_digest("x86_64", user_project(tmp_path)) != before


def test_the_record_names_the_spec_built_for_make_score(
    own_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "PredictFunction"
    monkeypatch.setattr("build.package.main", lambda argv: None)

    assert last_spec(package) == ""
    inputs.build(package, "x86_64", user_project(tmp_path))

    assert last_spec(package) == str(own_model / "spec.toml")
    assert stamp_path(package).read_text().splitlines()[0] == inputs_digest("x86_64", user_project(tmp_path))
    assert inputs.is_fresh(package, "x86_64", user_project(tmp_path))
    monkeypatch.delenv("MODEL")
    inputs.build(package, "x86_64", user_project(tmp_path))
    assert last_spec(package) == ""  # the default: make score needs no MODEL=


def test_the_default_stack_is_named_after_the_model_built_last(
    own_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "PredictFunction"
    monkeypatch.setattr("build.package.main", lambda argv: None)

    assert inputs.stack_name(package) == "iris-predict"  # nothing built: the default model
    inputs.build(package, "x86_64", user_project(tmp_path))

    assert inputs.stack_name(package) == "mine-predict"
