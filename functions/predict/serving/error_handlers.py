"""The one place errors become HTTP responses: {"error": "<message>"} with the error's status.

Routes raise serving.errors' classes; the framework's own errors (an unknown route or method, a
query parameter that does not validate) are answered in the same shape. Unexpected exceptions
are logged and answered with a generic 500 by serving.middleware.UnexpectedErrorMiddleware.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.exceptions import HTTPException

from serving.errors import InvalidRequestError, NotFoundError, ServiceError, describe_problems, shorten
from serving.observability import record_rejection

# Rejected input, counted in the ValidationErrors metric (unknown routes and methods are not).
VALIDATION_STATUSES = frozenset({400, 413, 415, 422})


def error_response(error: ServiceError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    if error.status_code in VALIDATION_STATUSES:
        record_rejection(error.status_code, error.message)
    return JSONResponse({"error": error.message}, status_code=error.status_code, headers=headers)


def _documented_routes(app: FastAPI) -> str:
    """The operations the OpenAPI document lists, in its order: read from the routes as FastAPI writes
    the document (each path at its first route, a route's methods in its order), so that a 404
    does not build the whole document (about 0.15 s) when nothing asked for it yet."""
    paths: dict[str, dict[str, None]] = {}
    for route in iter_route_contexts(app.routes):
        path, methods = route.path_format, route.methods
        if isinstance(route.original_route, APIRoute) and route.include_in_schema and path and methods:
            paths.setdefault(path, {}).update(dict.fromkeys(methods))
    return ", ".join(f"{method} {path}" for path, methods in paths.items() for method in methods)


async def handle_error(request: Request, error: Exception) -> JSONResponse:
    """The handler registered for every error the app answers itself: its own, and the framework's
    (FastAPI's validation of query parameters, Starlette's unknown routes and methods) in its words."""
    if isinstance(error, ServiceError):
        return error_response(error)
    if isinstance(error, RequestValidationError):
        # Query parameters only: the routes parse their bodies themselves.
        details = describe_problems([{**problem, "loc": problem["loc"][1:]} for problem in error.errors()])
        return error_response(InvalidRequestError(f"invalid request: {details}"))
    assert isinstance(error, HTTPException)
    method, path = shorten(request.method), shorten(request.url.path)
    if error.status_code == 404:
        routes = _documented_routes(request.app)
        return error_response(NotFoundError(f"no route for {method} {path}; available: {routes}"))
    if error.status_code == 405:
        allowed = (error.headers or {}).get("Allow", "")
        message = f"method {method} is not allowed on {path}; allowed: {allowed}"
        return error_response(ServiceError(message, status_code=405), headers={"Allow": allowed})
    return error_response(ServiceError(shorten(str(error.detail)), error.status_code), headers=error.headers)


def register_error_handlers(app: FastAPI) -> None:
    for error_type in (ServiceError, RequestValidationError, HTTPException):
        app.add_exception_handler(error_type, handle_error)
