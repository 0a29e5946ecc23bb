"""The request size the function accepts, consistent with Lambda's 6 MB synchronous payload."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import ServiceError, error_response

# Lambda refuses synchronous payloads over 6 MB (6,291,456 bytes) for the whole event; the body
# must leave room for the event's headers and context around it.
MAX_BODY_BYTES = 6_000_000


class PayloadTooLargeError(ServiceError):
    """The request body is over the size the function accepts."""

    status_code = 413


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
        message = (
            f"request body is over the limit of {MAX_BODY_BYTES:,} bytes (Lambda's 6 MB "
            "synchronous payload): send at most 10,000 instances per request, in several requests if needed"
        )
        await error_response(PayloadTooLargeError(message))(scope, receive, send)
