"""What the build leaves out of the package, and the bytecode it ships."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import sklearn.tree

from build.bytecode import compile_modules
from build.slim import prune_unimported_subpackages, slim, strip_shared_objects


def make_files(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {name}\n")


def existing(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def test_slim_removes_tests_stubs_sources_and_scripts(tmp_path: Path) -> None:
    make_files(
        tmp_path,
        "bin/f2py",
        "pydantic/__init__.py",
        "pydantic/v1/__init__.py",
        "lib/__init__.py",
        "lib/core.py",
        "lib/core.pyi",
        "lib/_ext.pyx",
        "lib/include/lib.h",
        "lib/tests/test_core.py",
        "lib/sub/tests/data.csv",
        "lib/__pycache__/core.cpython-312.pyc",
        "lib/data/table.csv",
        "lib/_ext.cpython-312-x86_64-linux-gnu.so",
        "lib-1.0.dist-info/METADATA",
    )

    report = slim(tmp_path)

    assert existing(tmp_path) == {
        "pydantic/__init__.py",
        "lib/__init__.py",
        "lib/core.py",
        "lib/data/table.csv",
        "lib/_ext.cpython-312-x86_64-linux-gnu.so",
        "lib-1.0.dist-info/METADATA",
    }
    assert report.files == 8


def test_prune_keeps_what_was_imported_and_the_function_code(tmp_path: Path) -> None:
    make_files(
        tmp_path,
        "lib/__init__.py",
        "lib/used/__init__.py",
        "lib/used/mod.py",
        "lib/used/unused_child/__init__.py",
        "lib/unused/__init__.py",
        "lib/unused/deep/__init__.py",
        "lib/data.txt",
        "lazy/__init__.py",
        "serving/__init__.py",
        "serving/unimported/__init__.py",
        "app.py",
    )
    imported = [tmp_path / "lib/__init__.py", tmp_path / "lib/used/mod.py", tmp_path / "app.py"]

    report = prune_unimported_subpackages(tmp_path, imported, keep=("serving", "app.py"))

    assert existing(tmp_path) == {
        "lib/__init__.py",
        "lib/used/__init__.py",
        "lib/used/mod.py",
        "lib/data.txt",
        "lazy/__init__.py",
        "serving/__init__.py",
        "serving/unimported/__init__.py",
        "app.py",
    }
    assert report.files == 3


def test_strip_never_touches_vendored_libraries(tmp_path: Path) -> None:
    extension = next(Path(sklearn.tree.__file__).parent.glob("_utils*.so"))
    shutil.copy(extension, tmp_path / "ext.so")
    (tmp_path / "lib.libs").mkdir()
    shutil.copy(extension, tmp_path / "lib.libs" / "vendored.so")

    report = strip_shared_objects(tmp_path)

    assert report.files == 1
    assert (tmp_path / "ext.so").stat().st_size == extension.stat().st_size - report.bytes
    assert report.bytes > 0
    assert (tmp_path / "lib.libs" / "vendored.so").read_bytes() == extension.read_bytes()


def test_bytecode_is_unchecked_hash_based(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("ANSWER = 42\n")

    written = compile_modules([module, tmp_path / "ext.so"])

    pyc = Path(importlib.util.cache_from_source(str(module)))
    header_flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert written == pyc.stat().st_size
    assert header_flags == 0b01
