"""SnapStart: everything expensive (imports, model load) already happens at init, so it lands
in the snapshot; what must differ between environments restored from one snapshot is
renewed after restore. The function creates no ids, credentials or connections at init
(a model from S3 is fetched with a client used once and dropped).
"""

from __future__ import annotations

import random

from snapshot_restore_py import register_after_restore


def reseed_random() -> None:
    """Environments restored from one snapshot share its random state; give each its own."""
    random.seed()


register_after_restore(reseed_random)
