"""What CLI commands receive: the lazily built `App` (settings are validated on first use)."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from functools import update_wrapper
from typing import Any, Concatenate, ParamSpec, TypeVar

import click

from core.settings import Settings, load_settings
from engine.app import App, build_app

P = ParamSpec("P")
R = TypeVar("R")


class LazyApp:
    """Settings are validated when a command first needs them, so `--help` always works."""

    def __init__(self, config: str | None, data_dir: str | None) -> None:
        self._config = config
        self._data_dir = data_dir
        self._app: App | None = None

    def settings(self) -> Settings:
        overrides: dict[str, Any] = {"data_dir": self._data_dir} if self._data_dir else {}
        return load_settings(self._config, overrides=overrides)

    def get(self) -> App:
        if self._app is None:
            self._app = build_app(self.settings())
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


def pass_app(f: Callable[Concatenate[App, P], R]) -> Callable[P, R]:
    """Decorator: the command gets the built `App` as its first argument."""

    @click.pass_context
    def wrapper(ctx: click.Context, /, *args: P.args, **kwargs: P.kwargs) -> R:
        lazy = ctx.find_object(LazyApp)
        if lazy is None:
            raise click.UsageError("no application context")
        return f(lazy.get(), *args, **kwargs)

    return update_wrapper(wrapper, f)


def cli_actor() -> str:
    """Who a change made from the command line is audited as: `cli:<login name>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container without /etc/passwd entry)
        return "cli:unknown"
