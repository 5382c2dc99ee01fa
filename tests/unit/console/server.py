"""Serve a console app with uvicorn on 127.0.0.1 (free port, background thread), and a
small cookie-keeping HTTP client that knows the console's CSRF field."""

from __future__ import annotations

import http.cookiejar
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(app: Any) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off", ws="none", http="h11", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("console server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]
    url: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Client:
    """A browser-ish client: keeps cookies, follows redirects only when asked."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                   _NoRedirect())
        self.csrf = ""

    def request(self, method: str, path: str, data: dict[str, Any] | list[tuple[str, str]]
                | None = None, follow: bool = True, raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        body = raw
        hdrs = dict(headers or {})
        if data is not None:
            body = urllib.parse.urlencode(data, doseq=True).encode()
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=hdrs)
        try:
            with self._opener.open(req, timeout=30) as resp:
                reply = Reply(resp.status, resp.read(), dict(resp.headers), resp.url)
        except urllib.error.HTTPError as exc:
            reply = Reply(exc.code, exc.read(), dict(exc.headers), exc.url or path)
        found = re.search(r'name="csrf" value="([^"]+)"', reply.text) \
            if reply.headers.get("content-type", "").startswith("text/html") else None
        if found:
            self.csrf = found.group(1)
        if follow and reply.status in (302, 303) and "location" in {k.lower() for k in
                                                                     reply.headers}:
            loc = next(v for k, v in reply.headers.items() if k.lower() == "location")
            return self.request("GET", urllib.parse.urlsplit(loc).path +
                                ("?" + urllib.parse.urlsplit(loc).query
                                 if urllib.parse.urlsplit(loc).query else ""))
        return reply

    def get(self, path: str, follow: bool = True) -> Reply:
        return self.request("GET", path, follow=follow)

    def post(self, path: str, data: dict[str, Any] | list[tuple[str, str]] | None = None,
             follow: bool = True, csrf: bool = True) -> Reply:
        payload: Any = data if data is not None else {}
        if csrf:
            payload = list(payload.items()) if isinstance(payload, dict) else list(payload)
            payload.append(("csrf", self.csrf))
        return self.request("POST", path, payload, follow=follow)

    def login(self, username: str, password: str) -> Reply:
        self.get("/login")
        return self.post("/login", {"username": username, "password": password})
