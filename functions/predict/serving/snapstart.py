"""SnapStart: everything expensive (imports, model load) already happens at init, so it lands
in the snapshot; what must differ between environments restored from one snapshot is
renewed after restore. The function creates no ids, credentials or connections at init
(a model from S3 is fetched with a client used once and dropped). The pydantic models a cold
start leaves to their first use (serving/cold_start.py) are built before the snapshot, so that
no restored environment's request builds one.
"""

from __future__ import annotations

import random

from snapshot_restore_py import register_after_restore, register_before_snapshot

from serving.cold_start import build_deferred_models


def reseed_random() -> None:
    """Environments restored from one snapshot share its random state; give each its own."""
    random.seed()


register_before_snapshot(build_deferred_models)
register_after_restore(reseed_random)
