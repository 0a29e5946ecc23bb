"""SnapStart runtime hooks registered by the function."""

from __future__ import annotations

import random
from types import ModuleType

from snapshot_restore_py import get_after_restore

from serving.snapstart import reseed_random


def test_random_state_is_renewed_after_restore(app_module: ModuleType) -> None:
    registered = [hook for hook, _, _ in get_after_restore()]
    snapshot_state = random.getstate()

    [hook() for hook in registered]

    assert reseed_random in registered
    assert random.getstate() != snapshot_state
