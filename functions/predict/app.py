"""Lambda entry point: the FastAPI app with its model, wrapped by Mangum."""

from __future__ import annotations

import gc

# No garbage collection during the cold start: the imports, the model and the app are built to live
# as long as the environment, and collecting among them, the imports above all, cost about a tenth
# of the cold start. Once built they are frozen (below), so that no later collection walks them.
gc.disable()

from serving.cold_start import models_built_when_first_used, record_left_out_modules  # noqa: E402

record_left_out_modules()
# Every pydantic model these imports define, FastAPI's for the OpenAPI document above all, is built
# by its first use (or before a SnapStart snapshot): serving/cold_start.py.
with models_built_when_first_used():
    from fastapi import FastAPI
    from fastapi.routing import iter_route_contexts
    from mangum import Mangum

    from serving import capture, inference
    from serving.config import API_BASE_PATH_VARIABLE, ConfigurationError
    from serving.docs import register_docs
    from serving.error_handlers import register_error_handlers
    from serving.events import served_events_only
    from serving.middleware import (
        BodySizeLimitMiddleware,
        HeadAsGetMiddleware,
        StageRootPathMiddleware,
        UnexpectedErrorMiddleware,
        shadowed_routes,
    )
    from serving.model import LoadedModel
    from serving.observability import instrument
    from serving.routes import router
    from serving.runtime import refusal_logged, start
    from serving.schemas import RowParser, error_schemas, response_schemas


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
        schemas={**response_schemas(manifest), **error_schemas()},
    )
    register_error_handlers(app)
    # Every path the app answers, the docs' own included, from its routes: not from its OpenAPI
    # document, which would cost a cold start under a base path about 0.15 s to build.
    # (A path with two routes, one per method, is named once.)
    routes = iter_route_contexts(app.routes) if base_path else []
    paths = list(dict.fromkeys(path for route in routes if (path := route.path_format)))
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


# The settings and the model, once per cold start (serving/runtime.py, shared with batch.py).
try:
    runtime = start()
    model = runtime.model
    with refusal_logged():
        app = create_app(model, runtime.settings.api_base_path)
        capture.configure(model.manifest, runtime.settings.capture_percent)
    # lifespan="off": Mangum would otherwise run the app's startup and shutdown on every invocation.
    asgi_handler = Mangum(app, lifespan="off")
    handler = instrument(capture.with_request_id(served_events_only(asgi_handler)))
finally:
    gc.freeze()
    gc.enable()
