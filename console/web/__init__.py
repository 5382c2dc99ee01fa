"""The HTTP layer: thin views that parse, call one service, and render."""

from __future__ import annotations

from console.web.app import create_app

__all__ = ["create_app"]
