"""CLI command modules; each has `register(cli)`."""

from __future__ import annotations

from engine.commands import audit, his, plan, prompts

COMMAND_MODULES = (audit, his, plan, prompts)
