"""What every request and response of the pages goes through, before any route: the hosts the station answers
to, a cap on request bodies, and the security headers of every answer.

ASGI middlewares rather than Starlette's BaseHTTPMiddleware: the live alerts are a stream, passed through
untouched."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Pages that run only their own scripts, load nothing from elsewhere (the station may have no internet) and are
# not framed by another site; audio and images come from the station itself (blob: for a recording made in
# the page).
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; object-src 'none'; "
        b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
# Pages and API answers carry a user's name and CSRF token: kept by no cache, shared or not.
PRIVATE = (b"text/html", b"application/json")
MAX_BODY = 64 * 1024  # a sign-in or a mark with its note is well under a kilobyte


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP answer, and `Cache-Control: no-store` to pages and JSON."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *SECURITY_HEADERS]
                kind = next((value for name, value in headers if name.lower() == b"content-type"), b"")
                if kind.startswith(PRIVATE) and not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuses (413) a request body over `limit` bytes, from its Content-Length or as soon as that much has come,
    before any route reads it: a form is parsed before the route knows who sent it. Paths in `own_limits` check
    their bodies themselves (an upload to identify)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY, own_limits: tuple[str, ...] = ("/api/identify",)):
        self.app, self.limit, self.own_limits = app, limit, own_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.own_limits:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self.too_large(scope, receive, send)
            return
        received = 0
        started = False  # the app has begun its answer: no 413 can follow, the body is only cut
        answered = False  # the 413 has gone out: what the app would answer after it is dropped

        async def counted() -> Message:
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit and not answered and not started:
                    answered = True
                    await self.too_large(scope, receive, send)
                if received > self.limit:  # the app's parser may catch this and try to answer: it is not heard
                    raise BodyTooLarge
            return message

        async def unless_answered(message: Message) -> None:
            nonlocal started
            if not answered:
                started = started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, counted, unless_answered)
        except BodyTooLarge:
            pass

    async def too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = JSONResponse({"error": f"a request body here is at most {self.limit} bytes"}, status_code=413)
        await answer(scope, receive, send)
