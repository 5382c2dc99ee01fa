"""Build the engine's objects from the settings. Nothing else constructs them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.audit import AuditLog, load_or_create_key
from core.clock import Clock, SystemClock
from core.settings import Settings
from core.store.db import Database


@dataclass
class App:
    """What every command and job needs, built once per process."""

    settings: Settings
    clock: Clock
    db: Database
    audit: AuditLog = field(init=False)

    def __post_init__(self) -> None:
        self.audit = AuditLog(self.clock, self.audit_key, self.settings.audit_anchor)

    @property
    def audit_key(self) -> bytes:
        """The audit chain's key: the setting, else the key file in the data folder."""
        secret = self.settings.audit.key.get_secret_value()
        if secret:
            return bytes.fromhex(secret)
        return load_or_create_key(self.data_dir / "audit.key")

    @property
    def data_dir(self) -> Path:
        return Path(self.settings.data_dir).resolve()

    def close(self) -> None:
        self.db.dispose()


def build_app(settings: Settings, clock: Clock | None = None) -> App:
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return App(settings=settings, clock=clock or SystemClock(),
               db=Database(settings.database_url, echo=settings.database.echo))
