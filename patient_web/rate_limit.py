"""At most `per_minute` requests a minute from one client address; beyond that a plain
429 page. In memory and per process: it slows a guesser down, and the birth year's own
counter (in the store) is what stops one."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from patient_web.texts import DEFAULT_LANGUAGE, text

WINDOW_S = 60.0
_FORGET_AFTER = 10_000  # addresses kept before idle ones are dropped


def too_many_page() -> str:
    lang = DEFAULT_LANGUAGE
    return ("<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{text(lang, 'too_many.heading')}</title></head><body>"
            f"<h1>{text(lang, 'too_many.heading')}</h1><p>{text(lang, 'too_many.body')}</p>"
            f"<p lang=\"en\">{text('en-US', 'too_many.body')}</p></body></html>")


class RateLimit:
    """ASGI middleware: a sliding one-minute window per client address. `clock`: seconds
    (monotonic), an input so tests can move it. `/static/` is not counted."""

    def __init__(self, app: ASGIApp, per_minute: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}

    def allow(self, address: str) -> bool:
        now = self.clock()
        if len(self._seen) > _FORGET_AFTER:
            self._seen = {a: q for a, q in self._seen.items() if q and q[-1] > now - WINDOW_S}
        times = self._seen.setdefault(address, deque())
        while times and times[0] <= now - WINDOW_S:
            times.popleft()
        if len(times) >= self.per_minute:
            return False
        times.append(now)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith("/static/"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        if not self.allow(address):
            await HTMLResponse(too_many_page(), status_code=429,
                               headers={"retry-after": str(int(WINDOW_S))})(
                scope, receive, send)
            return
        await self.app(scope, receive, send)
