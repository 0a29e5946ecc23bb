"""OpenAPI and Swagger UI that work wherever the API is mounted: their links start with the ASGI
`root_path`, which serving.middleware.StageRootPathMiddleware sets from the API Gateway stage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"


def register_docs(
    app: FastAPI, request_bodies: Mapping[str, dict[str, Any]], schemas: Mapping[str, dict[str, Any]]
) -> None:
    """/openapi.json (with the caller's stage as server URL) and /docs (Swagger UI).

    `request_bodies` maps each POST path to its body's description: the routes parse their
    bodies themselves, so the schema says exactly what they accept. `schemas` replaces component
    schemas by name: those that depend on the model served (its classes, or a regressor's number).
    """

    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            generated = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            for path, body in request_bodies.items():
                generated["paths"][path]["post"]["requestBody"] = body
            # In name order, as FastAPI writes its own.
            components = generated["components"]
            components["schemas"] = dict(sorted({**components["schemas"], **schemas}.items()))
            app.openapi_schema = generated
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]

    @app.get(OPENAPI_PATH, include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse({**schema(), "servers": [{"url": request.scope.get("root_path") or "/"}]})

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root_path = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=f"{root_path}{OPENAPI_PATH}", title=f"{app.title} - docs")
