"""CLI command modules; each has `register(cli)`."""

from __future__ import annotations

from engine.commands import his, plan, prompts

COMMAND_MODULES = (his, plan, prompts)
