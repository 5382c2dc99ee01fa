"""AMI framing: `Key: Value` lines ending in CRLF, a message ending with an empty line.

`AmiFrame` is the raw message *inside* the adapter only; `ami_messages` turns frames into
typed events before anything leaves `dialer/asterisk`. Unlike panoramisk's `Message`, a
missing header is `None`, never `''` (Asterisk does send empty values, e.g. `AccountCode: `).
"""

from __future__ import annotations

from dataclasses import dataclass, field

EOL = "\r\n"


class AmiValueError(ValueError):
    """A value we were about to send would break the framing (CR/LF)."""


@dataclass(frozen=True, slots=True)
class AmiFrame:
    """One AMI message: ordered headers (a key may repeat, e.g. `Variable:`)."""

    headers: tuple[tuple[str, str], ...]
    _index: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for key, value in self.headers:
            self._index.setdefault(key.lower(), value)

    @classmethod
    def parse(cls, block: str) -> AmiFrame:
        """Parse one message (without the blank line). Lines without `:` are kept as
        `Output` (old `Response: Follows` bodies); nothing here raises."""
        headers: list[tuple[str, str]] = []
        for line in block.split("\n"):
            line = line.rstrip("\r")
            if not line:
                continue
            key, sep, value = line.partition(":")
            if not sep or not key or " " in key:
                headers.append(("Output", line))
                continue
            headers.append((key, value[1:] if value.startswith(" ") else value))
        return cls(tuple(headers))

    @classmethod
    def build(cls, *pairs: tuple[str, str]) -> AmiFrame:
        return cls(tuple(pairs))

    def get(self, name: str) -> str | None:
        return self._index.get(name.lower())

    def get_all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def response(self) -> str | None:
        return self.get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def to_bytes(self) -> bytes:
        """Serialize; refuses CR/LF inside keys or values (header injection)."""
        lines = []
        for key, value in self.headers:
            if any(c in key for c in "\r\n:") or "\r" in value or "\n" in value:
                raise AmiValueError(f"AMI header {key!r} holds a line break")
            lines.append(f"{key}: {value}")
        return (EOL.join(lines) + EOL + EOL).encode("utf-8")


def split_stream(data: str) -> tuple[list[str], str]:
    """Split received text into complete message blocks and the unfinished rest."""
    parts = data.replace("\r\n", "\n").split("\n\n")
    rest = parts.pop()
    return [p for p in parts if p.strip()], rest
