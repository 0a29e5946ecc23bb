"""The middlewares: ASGI wrappers around the whole app that see every request before routing.
app.py adds them, and says there why in that order.

The stage: API Gateway puts a stage in front of the routes in two different ways: an HTTP API
named stage arrives in `rawPath` (`/prod/predict`), a REST API stage does not appear in `path`
(`/predict`) although the client called `/Prod/predict`. Mangum passes the raw event in
`scope["aws.event"]`; StageRootPathMiddleware turns the stage into the ASGI `root_path`, so
routing sees `/predict` and links (the docs page's `openapi.json`, the schema's server URL) carry
the stage. `$default` stages, Function URLs and local servers have no prefix.

The base path: a custom domain's API mapping (`https://api.example.com/iris` → the API's stage)
leaves its key in the path (`rawPath`, `requestContext.http.path`, REST's `path`: `/iris/predict`)
and nothing in the event names it, so the setting API_BASE_PATH does. A path under it takes it as
root_path before any stage is looked for: through a custom domain the URL carries the mapping key,
never the stage, even when the mapping is to a named stage (and a REST mapping key equal to the
stage's name, `/v1` → stage `v1`, must be taken off once, not twice). Paths not under it (the
execute-api URL of the same API) keep the stage logic.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.error_handlers import error_response
from serving.errors import INTERNAL_ERROR_MESSAGE, PayloadTooLargeError, ServiceError
from serving.limits import MAX_BODY_BYTES, MAX_INSTANCES
from serving.observability import logger


def stage_prefix(event: dict[str, Any]) -> str:
    """The path prefix the client used for the API Gateway stage, or "" when there is none."""
    context = event.get("requestContext") or {}
    stage = context.get("stage")
    if not stage or stage == "$default":
        return ""
    prefix = f"/{stage}"
    called = event.get("rawPath") if event.get("version") == "2.0" else context.get("path")
    return prefix if called and is_under(called, prefix) else ""


def is_under(path: str, base_path: str) -> bool:
    """Whether `path` is `base_path` or below it, segment by segment: /iris/x is under /iris,
    /irises is not."""
    return path == base_path or path.startswith(base_path + "/")


def shadowed_routes(base_path: str, route_paths: list[str]) -> list[str]:
    """The routes whose paths start with `base_path`'s segments (a `{parameter}` matches any):
    with such a base path the same route could no longer be reached without it. No base path hides none."""
    if not base_path:
        return []
    base = base_path.split("/")[1:]

    def shadowed(route_path: str) -> bool:
        segments = route_path.split("/")[1:]
        pairs = zip(segments, base, strict=False)
        return len(segments) >= len(base) and all(own == key or own.startswith("{") for own, key in pairs)

    return [path for path in route_paths if shadowed(path)]


def staged_path(event: dict[str, Any], path: str, prefix: str) -> str:
    """The full path the client called: an HTTP API's path already carries the stage (`/prod`
    alone is the stage's root), a REST API's never does."""
    if event.get("version") != "2.0":
        return prefix + path
    return prefix + "/" if path == prefix else path


class StageRootPathMiddleware:
    """Sets the ASGI root_path (and, for REST APIs, the full path) from the custom domain's base
    path (`base_path`, "" for none) or else the API Gateway stage."""

    def __init__(self, app: ASGIApp, base_path: str = "") -> None:
        self.app = app
        self.base_path = base_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        event = scope.get("aws.event")
        if scope["type"] == "http" and self.base_path and is_under(scope["path"], self.base_path):
            # Every payload format's path already carries the mapping key; the key alone is its root.
            path = self.base_path + "/" if scope["path"] == self.base_path else scope["path"]
            scope = {**scope, "root_path": self.base_path, "path": path, "raw_path": path.encode()}
        elif scope["type"] == "http" and isinstance(event, dict) and (prefix := stage_prefix(event)):
            path = staged_path(event, scope["path"], prefix)
            scope = {**scope, "root_path": prefix, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


class HeadAsGetMiddleware:
    """Answers HEAD as GET without the body: FastAPI's routes, unlike Starlette's, do not add HEAD
    to GET routes, and no server strips the body behind Lambda."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            await send({**message, "body": b""} if message["type"] == "http.response.body" else message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


class UnexpectedErrorMiddleware:
    """Logs any exception no handler claimed and answers a generic 500 without details.

    Starlette's own server-error handler re-raises after responding, which makes Mangum
    log the same failure a second time, outside the structured logger.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception("unhandled error", extra={"method": scope["method"], "path": scope["path"]})
            if response_started:
                raise
            await error_response(ServiceError(INTERNAL_ERROR_MESSAGE))(scope, receive, send)


class BodySizeLimitMiddleware:
    """Answers 413 for a body over MAX_BODY_BYTES, measured as it is read.

    The content-length header is not consulted: behind Lambda the whole body is already in
    the event, so the header saves nothing, and a client may send any text in it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[Message] = []
        size = 0
        more = True
        while more:
            message = await receive()
            chunks.append(message)
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
            if size > MAX_BODY_BYTES:
                await self._refuse(scope, receive, send)
                return
        replay = iter(chunks)

        async def replay_receive() -> Message:
            return next(replay, {"type": "http.disconnect"})

        await self.app(scope, replay_receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
        refusal = PayloadTooLargeError(
            f"request body is over the limit of {MAX_BODY_BYTES:,} bytes (Lambda's 6 MB synchronous payload): "
            f"send at most {MAX_INSTANCES:,} instances per request, in several requests if needed"
        )
        await error_response(refusal)(scope, receive, send)
