"""What goes into the Lambda package, and whether the built one still matches it.

The function's build (functions/predict/Makefile, run by `sam build`) goes through `build`,
which records a content hash of the package's inputs beside the package once it is complete;
`check` compares that record with the inputs now, so that `make start-api`, `make test` and
the like skip a build that would produce the same package. Inputs are named by exclusion: every
file of the project is one except those listed in NOT_INPUTS, so a new file can make a build
run again but never makes a stale package look fresh. The model specs' folder is the exception:
of it, only what the chosen spec names is an input (the spec, its estimator file, sample data,
training data and recipe module), so a CSV scored or a log written beside a spec costs no build.
The record also names the spec built, so that `make score` without MODEL= scores with the model
that was built last rather than rebuilding the default one (`last-spec`).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tomllib
from pathlib import Path
from typing import Any

from build import DEFAULT_SPEC, MODEL_SOURCES, PROJECT_ROOT, configured_model_source, configured_spec_path
from local.lambda_local import DEFAULT_PACKAGE
from serving.engines import native

# Top-level entries nothing in the package is built from. Hidden ones (.venv, .aws-sam, .git,
# .model-cache, tool caches, .ci) are left out too: they are environments, outputs and caches.
NOT_INPUTS = frozenset(
    {
        "tests",
        "bench",
        # The model specs and their files: only those of the chosen spec are inputs (spec_files).
        "models",
        "docs",
        "README.md",
        "pyproject.toml",
        "requirements-dev.in",
        # make mutate's copy of the project.
        "mutants",
        # npm's development tools (asl-validator): checks, not package contents.
        "node_modules",
        "package.json",
        "package-lock.json",
    }
)
BYTECODE_CACHE = "__pycache__"
NATIVE_LIBRARY = native.LIBRARY.name
STAMP_SUFFIX = ".inputs"


def input_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """Every file the package may be built from, relative to `root`, in a stable order."""
    files: list[Path] = []
    for entry in root.iterdir():
        if entry.name.startswith(".") or entry.name in NOT_INPUTS:
            continue
        candidates = entry.rglob("*") if entry.is_dir() else [entry]
        files.extend(
            path.relative_to(root)
            for path in candidates
            if path.is_file()
            and BYTECODE_CACHE not in path.relative_to(root).parts
            and path.suffix != ".pyc"
            # Built from tree_walk.c, an input, by the build itself.
            and path.name != NATIVE_LIBRARY
        )
    return sorted(files)


def chosen_spec(root: Path = PROJECT_ROOT) -> str:
    """Which spec $MODEL chooses, the same wherever the project is checked out."""
    spec = configured_spec_path()
    if spec == DEFAULT_SPEC:
        return "default"
    return spec.relative_to(root.resolve()).as_posix() if spec.is_relative_to(root.resolve()) else str(spec)


def named_files(document: dict[str, Any]) -> list[str]:
    """The files a spec names, relative to it: estimator file, sample data, training data and the
    recipe's module (build/spec.py defines the keys; a bundled "sklearn:" dataset is no file)."""
    training = document.get("training")
    training = training if isinstance(training, dict) else {}
    names = [document.get("estimator_file"), document.get("sample_data")]
    data = training.get("data")
    if isinstance(data, str) and not data.startswith("sklearn:"):
        names.append(data)
    estimator = training.get("estimator")
    if isinstance(estimator, str) and ":" in estimator:
        names.append(estimator.partition(":")[0])
    return [name for name in names if isinstance(name, str)]


def spec_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """The chosen spec and the files it names that exist (relative to `root` when inside it). A
    spec that cannot be read is an input alone: the build then fails on it and says why."""
    spec = configured_spec_path()
    if spec == DEFAULT_SPEC:
        spec = root / DEFAULT_SPEC.relative_to(PROJECT_ROOT)
    try:
        document = tomllib.loads(spec.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        document = {}
    paths = [spec, *((spec.parent / name).resolve() for name in named_files(document))]
    inside = root.resolve()
    return sorted(
        dict.fromkeys(
            path.resolve().relative_to(inside) if path.resolve().is_relative_to(inside) else path.resolve()
            for path in paths
            if path.is_file()
        )
    )


def inputs_digest(architecture: str, root: Path = PROJECT_ROOT) -> str:
    """A sha256 over the architecture, the model spec chosen, the model source (when not the package)
    and every input file's path and content."""
    digest = hashlib.sha256(f"architecture {architecture}\nmodel {chosen_spec(root)}\n".encode())
    if configured_model_source() != MODEL_SOURCES[0]:
        # Only then: a package built before the setting existed stays fresh.
        digest.update(f"model source {configured_model_source()}\n".encode())
    for path in [*input_files(root), *spec_files(root)]:
        digest.update(f"{path.as_posix()}\0{hashlib.sha256((root / path).read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def stamp_path(package: Path) -> Path:
    """Beside the package, not in it: the record must not ship to Lambda."""
    return package.with_name(package.name + STAMP_SUFFIX)


def is_fresh(package: Path, architecture: str, root: Path = PROJECT_ROOT) -> bool:
    stamp = stamp_path(package)
    return stamp.is_file() and stamp.read_text().partition("\n")[0] == inputs_digest(architecture, root)


def last_spec(package: Path) -> str:
    """The spec the package was last built from, as $MODEL named it (empty: none, or the default)."""
    stamp = stamp_path(package)
    if not stamp.is_file():
        return ""
    lines = stamp.read_text().splitlines()
    return lines[1] if len(lines) > 1 and Path(lines[1]).resolve() != DEFAULT_SPEC else ""


def build(package: Path, architecture: str, root: Path = PROJECT_ROOT) -> None:
    """Build the package and record the inputs it was built from. The hash is taken before the
    build starts, so an edit made during the build makes the next check fail, and the old record
    goes first, so a failed build leaves none."""
    from build.package import main as build_package  # imports the packaging libraries: only here

    digest = inputs_digest(architecture, root)
    stamp = stamp_path(package)
    stamp.unlink(missing_ok=True)
    build_package(["--out", str(package), "--architecture", architecture])
    stamp.write_text(f"{digest}\n{configured_spec_path()}\n")


def stack_name(package: Path) -> str:
    """The default stack name of the model built last: its service name (iris-predict for Iris)."""
    from serving.config import DEFAULT_MODEL_NAME, service_name_for

    spec = Path(last_spec(package) or DEFAULT_SPEC)
    try:
        name = tomllib.loads(spec.read_text()).get("name")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        name = None
    return service_name_for(name if isinstance(name, str) else DEFAULT_MODEL_NAME)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "command",
        choices=("check", "build", "last-spec", "stack-name"),
        help="check: exit 0 if the package is up to date; last-spec: print the spec it was built from; "
        "stack-name: print the default stack name of its model",
    )
    parser.add_argument("--package", type=Path, default=DEFAULT_PACKAGE, help="the package directory")
    parser.add_argument("--architecture", default="x86_64")
    args = parser.parse_args(argv)
    package = args.package.resolve()
    if args.command == "build":
        build(package, args.architecture)
    elif args.command == "last-spec":
        sys.stdout.write(last_spec(package) + "\n")  # the Makefile reads it
    elif args.command == "stack-name":
        sys.stdout.write(stack_name(package) + "\n")
    elif not is_fresh(package, args.architecture):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
