"""Lambda entry point: the FastAPI app with its model, wrapped by Mangum."""

from __future__ import annotations

from fastapi import FastAPI
from mangum import Mangum

from serving import capture, inference, snapstart  # noqa: F401 - snapstart registers its runtime hooks
from serving.config import API_BASE_PATH_VARIABLE, ConfigurationError, Settings, load_settings
from serving.docs import DOCS_PATH, OPENAPI_PATH, register_docs
from serving.errors import register_error_handlers
from serving.events import served_events_only
from serving.middleware import (
    BodySizeLimitMiddleware,
    HeadAsGetMiddleware,
    StageRootPathMiddleware,
    UnexpectedErrorMiddleware,
    shadowed_routes,
)
from serving.model import LoadedModel, load_model
from serving.observability import configure, instrument, logger
from serving.routes import router
from serving.schemas import RowParser, response_schemas

REFUSAL = "refusing to start: the configuration or the model failed to load"


def create_app(model: LoadedModel, base_path: str = "") -> FastAPI:
    """The app serving `model`, its routes also under `base_path` (a custom domain's API mapping)."""
    # The routes parse their JSON bodies themselves (serving.deps.json_body). No trailing-slash
    # redirects: Starlette would build their Location from the client's Host header; /predict/
    # is a 404 that lists the routes instead.
    manifest = model.manifest
    app = FastAPI(
        title=f"{manifest.name} prediction API",
        description=(
            f"The scikit-learn {manifest.task} model {manifest.name} served on AWS Lambda; "
            "also speaks the Open Inference Protocol under /v2."
        ),
        version=manifest.version,
        redirect_slashes=False,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.model = model
    app.state.row_parser = RowParser(manifest.features)
    app.include_router(router)
    app.include_router(inference.router)
    register_docs(
        app,
        request_bodies={
            "/predict": app.state.row_parser.openapi_body(manifest.example),
            **dict.fromkeys(inference.INFER_PATHS, inference.openapi_body(manifest)),
        },
        schemas=response_schemas(manifest),
    )
    register_error_handlers(app)
    # Every path the app answers: the schema's, and the two it leaves out (the docs themselves).
    paths = [*app.openapi()["paths"], OPENAPI_PATH, DOCS_PATH] if base_path else []
    if shadowed := shadowed_routes(base_path, paths):
        raise ConfigurationError(
            f"{API_BASE_PATH_VARIABLE} {base_path} is the start of the routes {', '.join(shadowed)}: their "
            "execute-api URLs would stop working; choose a base path no route starts with, e.g. /iris"
        )
    # The last added runs first. The stage comes off the path before anything reads it; HEAD
    # becomes GET outside the error middleware, so even a 500 to a HEAD has no body; the error
    # middleware wraps the size limit, so a failure while reading the body is still one logged 500.
    app.add_middleware(BodySizeLimitMiddleware)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(StageRootPathMiddleware, base_path=base_path)
    return app


def load_configured_model(settings: Settings) -> LoadedModel:
    if settings.model_source is None:
        return load_model(settings.model_dir)
    # Imported only for models in S3: the baked-model cold path never loads boto3.
    from serving.model_source import fetch_model

    return load_model(fetch_model(settings.model_source))


# The settings are read here, once, and passed down. Whatever fails at init (a bad setting, a missing
# or tampered model) stops the function with one structured line saying so, not a bare traceback.
try:
    settings = load_settings()
    configure(settings)
    model = load_configured_model(settings)
    app = create_app(model, settings.api_base_path)
    capture.configure(model.manifest, settings.capture_percent)
except Exception:
    logger.exception(REFUSAL)
    raise

# lifespan="off": Mangum would otherwise run the app's startup and shutdown on every invocation.
asgi_handler = Mangum(app, lifespan="off")


handler = instrument(capture.with_request_id(served_events_only(asgi_handler)))
