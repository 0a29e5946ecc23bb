"""What both Lambda entry points start from: the settings, read once, and the model, loaded and
verified once, at cold start (so that SnapStart snapshots them).

app.py (the API) and batch.py (the batch job's scoring) each call `start()` once, at import:
one call per execution environment, whichever function it runs. Nothing here imports a web
framework: the batch function's cold start loads no FastAPI, Starlette or Mangum.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from serving import model as loading
from serving import snapstart  # noqa: F401 - snapstart registers its runtime hooks
from serving.config import Settings, load_settings
from serving.observability import configure, logger

REFUSAL = "refusing to start: the configuration or the model failed to load"


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    model: loading.LoadedModel


@contextmanager
def refusal_logged() -> Iterator[None]:
    """Whatever fails at init (a bad setting, a missing or tampered model) stops the function with
    one structured line saying so, not a bare traceback."""
    try:
        yield
    except Exception:
        logger.exception(REFUSAL)
        raise


def load_configured_model(settings: Settings) -> loading.LoadedModel:
    if settings.model_source is None:
        return loading.load_model(settings.model_dir)
    # Imported only for models in S3: the baked-model cold path never loads boto3.
    from serving.model_source import fetch_model

    return loading.load_model(fetch_model(settings.model_source))


def start() -> Runtime:
    """Read the settings, load the model, and configure logging, metrics and tracing (named after
    the model unless set)."""
    with refusal_logged():
        settings = load_settings()
        model = load_configured_model(settings)
        configure(settings, model.manifest.name)
        return Runtime(settings, model)
