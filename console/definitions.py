"""The scripts and rules viewer's seam: the engine passes a `DefinitionSource` (it may load
scripts and rules; the console may not import those packages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class DefinitionFile:
    kind: str  # "script" | "rules"
    name: str  # path relative to its folder
    text: str
    problem: str  # "" when the file validates

    @property
    def valid(self) -> bool:
        return not self.problem


class DefinitionSource(Protocol):
    def definitions(self) -> list[DefinitionFile]:
        """Every script and rule file with its validation result (never raises for a bad
        file: the problem is in `DefinitionFile.problem`)."""
        ...


class StaticDefinitions:
    """An in-memory source (tests, or a console without the definition folders)."""

    def __init__(self, files: list[DefinitionFile]) -> None:
        self._files = list(files)

    def definitions(self) -> list[DefinitionFile]:
        return list(self._files)
