"""Who made a change, as staff read it (the audit keeps the full actor string)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.i18n import translate
from core.store.models import User


def actor_display(session: Session, actors: Iterable[str], lang: str) -> dict[str, str]:
    """Who made each change, as staff read it: a console user by display name, the command
    line as such, anything else as stored (the audit keeps the full actor)."""
    wanted = set(actors)
    users = {f"user:{u}": name for u, name in session.execute(
        select(User.username, User.display_name).where(User.username.in_(
            sorted(a.partition(":")[2] for a in wanted if a.startswith("user:")))))}
    out: dict[str, str] = {}
    for actor in wanted:
        kind, _, name = actor.partition(":")
        out[actor] = translate(lang, "wb.by_cli", who=name) if kind == "cli" else \
            users.get(actor, name or actor)
    return out
