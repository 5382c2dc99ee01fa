"""Fixtures of the Asterisk tier (see `server.py`)."""

from tests.integration.asterisk.server import asterisk

__all__ = ["asterisk"]
