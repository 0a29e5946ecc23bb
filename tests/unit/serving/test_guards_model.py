"""Pickle-free loading seen failing: a compiled model file carrying a pickled object, its sha256
pinned in the manifest (someone who can write the package), must be refused without running it."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from build import DEFAULT_SPEC
from build.bake import COMPILED_FILE, bake_model
from build.spec import load_spec
from serving.config import PACKAGE_MODEL_DIR
from serving.errors import ModelLoadError
from serving.manifest import COMPILED
from serving.model import load_model


class RunsCodeWhenUnpickled:
    """Unpickling this writes a file: the proof that loading ran code from the model file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).write_text('ran')",)


@pytest.fixture(scope="module")
def compiled_model(training_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    package = tmp_path_factory.mktemp("compiled")
    bake_model(package, COMPILED, training_dir, load_spec(DEFAULT_SPEC))
    return package / PACKAGE_MODEL_DIR


@pytest.mark.parametrize("replaced", [None, "kind", "leaf_values"])
def test_a_pickled_object_in_the_compiled_model_is_refused_unrun(
    replaced: str | None, compiled_model: Path, tmp_path: Path
) -> None:
    model_dir = Path(shutil.copytree(compiled_model, tmp_path / "model"))
    marker = tmp_path / "code-ran"
    with np.load(model_dir / COMPILED_FILE, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    payload = np.array([RunsCodeWhenUnpickled(marker)], dtype=object)
    arrays[replaced or "extra"] = payload
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (model_dir / COMPILED_FILE).write_bytes(buffer.getvalue())
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["engine"]["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    (model_dir / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ModelLoadError, match="cannot be read: Object arrays cannot be loaded when allow_pickle=False"):
        load_model(model_dir)

    assert not marker.exists()


@pytest.mark.parametrize("offset", [0, 1000, -1])
def test_a_model_file_with_one_byte_changed_is_refused_whichever_engine_serves_it(
    iris_model_dir: Path, tmp_path: Path, offset: int
) -> None:
    """The sha256 in the manifest guards every engine's file, the compiled one too: one byte
    flipped anywhere in it, and the function refuses to start, naming both digests."""
    model_dir = tmp_path / "model"
    shutil.copytree(iris_model_dir, model_dir)
    engine = json.loads((model_dir / "manifest.json").read_text())["engine"]
    path = model_dir / engine["file"]
    payload = bytearray(path.read_bytes())
    payload[offset] ^= 0x01
    path.write_bytes(bytes(payload))
    digest = hashlib.sha256(payload).hexdigest()

    expected = f"model file {path} has sha256 {digest}, its manifest expects {engine['sha256']}"
    with pytest.raises(ModelLoadError, match=f"^{re.escape(expected)}$"):
        load_model(model_dir)
