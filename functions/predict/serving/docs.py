"""OpenAPI and Swagger UI that work wherever the API is mounted.

API Gateway puts a stage in front of the routes in two different ways: an HTTP API named
stage arrives in `rawPath` (`/prod/predict`), a REST API stage does not appear in `path`
(`/predict`) although the client called `/Prod/predict`. Mangum passes the raw event in
`scope["aws.event"]`; the middleware turns the stage into the ASGI `root_path`, so routing
sees `/predict` and links (the docs page's `openapi.json`, the schema's server URL) carry
the stage. `$default` stages, Function URLs and local servers have no prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"


def stage_prefix(event: dict[str, Any]) -> str:
    """The path prefix the client used for the API Gateway stage, or "" when there is none."""
    context = event.get("requestContext") or {}
    stage = context.get("stage")
    if not stage or stage == "$default":
        return ""
    prefix = f"/{stage}"
    called = event.get("rawPath") if event.get("version") == "2.0" else context.get("path")
    return prefix if called and (called == prefix or called.startswith(prefix + "/")) else ""


def staged_path(event: dict[str, Any], path: str, prefix: str) -> str:
    """The full path the client called: an HTTP API's path already carries the stage (`/prod`
    alone is the stage's root), a REST API's never does."""
    if event.get("version") != "2.0":
        return prefix + path
    return prefix + "/" if path == prefix else path


class StageRootPathMiddleware:
    """Sets the ASGI root_path (and, for REST APIs, the full path) from the API Gateway stage."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        event = scope.get("aws.event")
        if scope["type"] == "http" and isinstance(event, dict) and (prefix := stage_prefix(event)):
            path = staged_path(event, scope["path"], prefix)
            scope = {**scope, "root_path": prefix, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


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
            generated["components"]["schemas"].update(schemas)
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
