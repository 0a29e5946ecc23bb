"""SnapStart runtime hooks registered by the function: environments restored from one snapshot
must not share its random state, and no restored environment builds a model the cold start left
to its first use."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

from snapshot_restore_py import get_after_restore

from build import FUNCTION_DIR
from serving.snapstart import reseed_random
from tests.unit.conftest import one_engine

# A fresh interpreter imports the entry point as Lambda does, takes the snapshot's random state,
# then restores twice from it, running the after-restore hooks the way the runtime does.
TWO_RESTORES = textwrap.dedent(
    """
    import json, random
    from snapshot_restore_py import get_after_restore

    import app

    snapshot = random.getstate()
    draws = []
    for _ in range(2):
        random.setstate(snapshot)
        for hook, args, kwargs in get_after_restore():
            hook(*args, **kwargs)
        draws.append([random.random() for _ in range(4)])
    random.setstate(snapshot)
    without_hooks = [random.random() for _ in range(4)]
    print(json.dumps({"draws": draws, "without_hooks": without_hooks}))
    """
)


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


# app.py registers the hook whatever engine it loads: one engine (a scikit-learn engine's cold start costs
# three times the CPU).
@one_engine
def test_the_entry_point_registers_the_reseed_hook(iris_model_dir: Path) -> None:
    env = {**os.environ, "MODEL_DIR": str(iris_model_dir), "PYTHONPATH": str(FUNCTION_DIR)}
    # A separate process: whether importing `app` registers the hook cannot be seen in a process
    # where the tests already imported serving.snapstart.
    result = subprocess.run(
        [sys.executable, "-c", TWO_RESTORES], env=env, capture_output=True, text=True, check=True, timeout=120
    )

    seen = json.loads(result.stdout.splitlines()[-1])
    first, second = seen["draws"]
    assert first != second
    assert seen["without_hooks"] not in (first, second)


# A fresh interpreter imports the entry point as Lambda does, then runs the before-snapshot hooks the
# way the runtime does: which models are left to build, before and after.
SNAPSHOT = textwrap.dedent(
    """
    import json
    from pydantic import BaseModel
    from snapshot_restore_py import get_before_snapshot

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
    print(json.dumps({"at_init": at_init, "in_snapshot": unbuilt()}))
    """
)


def test_every_model_the_cold_start_left_to_first_use_is_built_before_the_snapshot(iris_model_dir: Path) -> None:
    env = {**os.environ, "MODEL_DIR": str(iris_model_dir), "PYTHONPATH": str(FUNCTION_DIR)}
    result = subprocess.run(
        [sys.executable, "-c", SNAPSHOT], env=env, capture_output=True, text=True, check=True, timeout=120
    )

    seen = json.loads(result.stdout.splitlines()[-1])
    assert "fastapi.openapi.models.OpenAPI" in seen["at_init"]
    assert seen["in_snapshot"] == []
