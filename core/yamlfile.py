"""YAML loading that remembers where every value came from.

Rule, script and mapping files are validated after loading; an error must name the file,
the line and the field. `load_yaml_with_lines` returns the plain data plus a `LineMap`
from a field path (`("rules", 2, "offsets", 0)`) to its 1-based line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import FileValidationError

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class LineMap:
    path: str
    lines: dict[Path_, int]

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of `loc`, or of its nearest ancestor that has one."""
        key = tuple(loc)
        while True:
            if key in self.lines:
                return self.lines[key]
            if not key:
                return None
            key = key[:-1]

    def error(self, loc: Sequence[str | int], problem: str) -> FileValidationError:
        field = ".".join(str(p) for p in loc) or "(document)"
        return FileValidationError(self.path, self.line_of(loc), field, problem)


class _Loader(yaml.SafeLoader):
    pass


def _construct(node: yaml.Node) -> Any:
    loader = _Loader("")
    return loader.construct_object(node, deep=True)


def load_yaml_with_lines(path: str | Path, text: str | None = None) -> tuple[Any, LineMap]:
    """Parse one YAML document. Raises FileValidationError on syntax errors (with the line)."""
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FileValidationError(name, None, "(file)", f"cannot read: {exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise FileValidationError(name, line, "(syntax)", str(exc.problem or exc)) from exc
    lines: dict[Path_, int] = {}
    if node is None:
        return None, LineMap(name, lines)
    try:
        data = _walk_constructed(node, (), lines)
    except FileValidationError as exc:
        raise FileValidationError(name, exc.line, exc.field, exc.problem) from None
    return data, LineMap(name, lines)


def _walk_constructed(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    """Like `_walk` but builds scalars with the SafeLoader's resolvers (ints, dates, bools)."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(key_node)
            if isinstance(key, list | dict):
                raise FileValidationError("", key_node.start_mark.line + 1,
                                          ".".join(str(p) for p in path), "key must be a scalar")
            if key in out:
                raise FileValidationError("", key_node.start_mark.line + 1,
                                          ".".join(str(p) for p in (*path, key)),
                                          "duplicate key")
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _walk_constructed(value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk_constructed(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _construct(node)
