"""SnapStart runtime hooks registered by the function: environments restored from one snapshot
must not share its random state, and no restored environment builds a model the cold start left
to its first use."""

from __future__ import annotations

import inspect
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from snapshot_restore_py import get_after_restore

from build import FUNCTION_DIR
from serving.snapstart import reseed_random


def restore_twice() -> list[list[float]]:
    """What two environments restored from the same snapshot draw, after the registered hooks."""
    snapshot = random.getstate()
    draws = []
    for _ in range(2):
        random.setstate(snapshot)
        for hook, args, kwargs in get_after_restore():
            hook(*args, **kwargs)
        draws.append([random.random() for _ in range(4)])
    return draws


def test_the_reseed_hook_gives_each_restored_environment_its_own_random_state() -> None:
    first, second = restore_twice()

    assert reseed_random in [hook for hook, _, _ in get_after_restore()]
    assert first != second


# A fresh interpreter goes through SnapStart's life as Lambda does: it imports the entry point, runs
# the before-snapshot hooks (which models are left to build, before and after), takes the snapshot's
# random state, then restores twice from it as `restore_twice` above does (its source, sent along).
# A separate process: whether importing `app` registers the hooks cannot be seen in a process where
# the tests already imported serving.snapstart.
SNAPSTART = textwrap.dedent(
    """
    import json, random
    from pydantic import BaseModel
    from snapshot_restore_py import get_after_restore, get_before_snapshot

    import app

    def unbuilt():
        found, pending = [], BaseModel.__subclasses__()
        while pending:
            model = pending.pop()
            pending += model.__subclasses__()
            if not model.__pydantic_complete__:
                found.append(f"{model.__module__}.{model.__qualname__}")
        return sorted(found)

    at_init = unbuilt()
    for hook, args, kwargs in reversed(get_before_snapshot()):
        hook(*args, **kwargs)
    in_snapshot = unbuilt()

    snapshot = random.getstate()
    draws = restore_twice()
    random.setstate(snapshot)
    without_hooks = [random.random() for _ in range(4)]
    print(json.dumps({"at_init": at_init, "in_snapshot": in_snapshot, "draws": draws, "without_hooks": without_hooks}))
    """
).replace("import app\n", f"import app\n\n{inspect.getsource(restore_twice)}\n")


@pytest.fixture(scope="module")
def snapstart(iris_model_dir: Path) -> dict[str, Any]:
    """What SNAPSTART saw, once per engine."""
    env = {**os.environ, "MODEL_DIR": str(iris_model_dir), "PYTHONPATH": str(FUNCTION_DIR)}
    result = subprocess.run(
        [sys.executable, "-c", SNAPSTART], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    seen: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return seen


@pytest.mark.slow
def test_the_entry_point_registers_the_reseed_hook(snapstart: dict[str, Any]) -> None:
    first, second = snapstart["draws"]
    assert first != second
    assert snapstart["without_hooks"] not in (first, second)


@pytest.mark.slow
def test_every_model_the_cold_start_left_to_first_use_is_built_before_the_snapshot(snapstart: dict[str, Any]) -> None:
    assert "fastapi.openapi.models.OpenAPI" in snapstart["at_init"]
    assert snapstart["in_snapshot"] == []
