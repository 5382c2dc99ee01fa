"""The security headers every page of ours carries, as ASGI middleware (the staff console
and the patients' questionnaire each give their own policy).

Every HTTP response gets the content security policy, `nosniff`, `DENY` framing and the
referrer policy given; every one but the static files gets `Cache-Control: no-store`
unless it set its own (pages and exports hold patient data: no browser or proxy may keep
them), and the static files get `static_cache` when given. A request body announced larger
than `max_body` is refused (413) before anyone reads it.
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, csp: str, referrer: str, max_body: int,
                 static_cache: str | None = None) -> None:
        self.app = app
        self._fixed = [(b"content-security-policy", csp.encode()),
                       (b"x-content-type-options", b"nosniff"),
                       (b"referrer-policy", referrer.encode()),
                       (b"x-frame-options", b"DENY")]
        self._max_body = max_body
        self._static_cache = static_cache.encode() if static_cache else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self._max_body:
                await PlainTextResponse("request too large", status_code=413)(
                    scope, receive, send)
                return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + self._fixed
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    cache = self._static_cache if static else b"no-store"
                    if cache is not None:
                        headers.append((b"cache-control", cache))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
