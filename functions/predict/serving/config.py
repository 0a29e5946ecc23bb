"""Every setting the function reads from its environment, in one place.

Names match the `Environment` section of template.yaml.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = PACKAGE_ROOT / "model"


DEFAULT_SERVICE_NAME = "iris-predict"


@dataclass(frozen=True)
class Settings:
    model_dir: Path
    service_name: str


def load_settings() -> Settings:
    return Settings(
        model_dir=Path(os.environ.get("MODEL_DIR") or DEFAULT_MODEL_DIR),
        service_name=os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE_NAME,
    )
