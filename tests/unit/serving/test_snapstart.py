"""SnapStart runtime hooks registered by the function: environments restored from one snapshot
must not share its random state."""

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
