"""What goes into the Lambda package, and whether the built one still matches it.

The function's build (functions/predict/Makefile, run by `sam build`) goes through `build`,
which records a content hash of the package's inputs beside the package once it is complete;
`check` compares that record with the inputs now, so that `make start-api`, `make test` and
the like skip a build that would produce the same package. Inputs are named by exclusion: every
file of the project is one except those listed in NOT_INPUTS, so a new file can make a build
run again but never makes a stale package look fresh.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from build import DEFAULT_SPEC, PROJECT_ROOT, configured_spec_path
from local.lambda_local import DEFAULT_PACKAGE

# Top-level entries nothing in the package is built from. Hidden ones (.venv, .aws-sam, .git,
# .model-cache, tool caches, .ci) are left out too: they are environments, outputs and caches.
NOT_INPUTS = frozenset(
    {
        "tests",
        "bench",
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
            if path.is_file() and BYTECODE_CACHE not in path.relative_to(root).parts and path.suffix != ".pyc"
        )
    return sorted(files)


def chosen_spec(root: Path = PROJECT_ROOT) -> str:
    """Which spec $MODEL chooses, the same wherever the project is checked out."""
    spec = configured_spec_path()
    if spec == DEFAULT_SPEC:
        return "default"
    return spec.relative_to(root.resolve()).as_posix() if spec.is_relative_to(root.resolve()) else str(spec)


def spec_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """The files of the model spec $MODEL names when it lies outside the project (inside, they are
    inputs already): every file in the spec's folder, since its data and recipe live beside it."""
    spec = configured_spec_path()
    if spec == DEFAULT_SPEC or spec.is_relative_to(root.resolve()) or not spec.parent.is_dir():
        return []
    return sorted(path for path in spec.parent.rglob("*") if path.is_file() and BYTECODE_CACHE not in path.parts)


def inputs_digest(architecture: str, root: Path = PROJECT_ROOT) -> str:
    """A sha256 over the architecture, the model spec chosen, and every input file's path and content."""
    digest = hashlib.sha256(f"architecture {architecture}\nmodel {chosen_spec(root)}\n".encode())
    for path in [*input_files(root), *spec_files(root)]:
        digest.update(f"{path.as_posix()}\0{hashlib.sha256((root / path).read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def stamp_path(package: Path) -> Path:
    """Beside the package, not in it: the record must not ship to Lambda."""
    return package.with_name(package.name + STAMP_SUFFIX)


def is_fresh(package: Path, architecture: str, root: Path = PROJECT_ROOT) -> bool:
    stamp = stamp_path(package)
    return stamp.is_file() and stamp.read_text().strip() == inputs_digest(architecture, root)


def build(package: Path, architecture: str, root: Path = PROJECT_ROOT) -> None:
    """Build the package and record the inputs it was built from. The hash is taken before the
    build starts, so an edit made during the build makes the next check fail, and the old record
    goes first, so a failed build leaves none."""
    from build.package import main as build_package  # imports the packaging libraries: only here

    digest = inputs_digest(architecture, root)
    stamp = stamp_path(package)
    stamp.unlink(missing_ok=True)
    build_package(["--out", str(package), "--architecture", architecture])
    stamp.write_text(digest + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("check", "build"), help="check: exit 0 if the package is up to date")
    parser.add_argument("--package", type=Path, default=DEFAULT_PACKAGE, help="the package directory")
    parser.add_argument("--architecture", required=True)
    args = parser.parse_args(argv)
    package = args.package.resolve()
    if args.command == "build":
        build(package, args.architecture)
    elif not is_fresh(package, args.architecture):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
