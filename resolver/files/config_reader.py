"""Reading `[tool.cuda-constraints]`: typed values, and errors that name the file, the line and the key."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UsageError
from .local import read_limited


def key_line(path: Path, key: str) -> int:
    """The line where a key of the table is set (`key = ...`, or its own `[tool.cuda-constraints.key]`
    table), for messages; 0 when it cannot be found."""
    try:
        lines = read_limited(path).decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 0
    table = re.compile(rf"^\s*\[\s*tool\.cuda-constraints\.{re.escape(key)}\s*\]")
    assignment = re.compile(rf"""^\s*["']?{re.escape(key.rsplit(".", 1)[-1])}["']?\s*=""")
    inside = False
    for number, line in enumerate(lines, start=1):
        if table.match(line):
            return number
        if line.lstrip().startswith("["):
            inside = line.strip() in ("[tool.cuda-constraints]", "[tool]")
        elif inside and assignment.match(line):
            return number
    return 0


_TOML_WHERE = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|(end of document))\)$")
_DECLARED_TWICE = re.compile(r"^Cannot declare \((.*)\) twice$")


def toml_error(path: Path, error: ValueError) -> ConfigError:
    """A pyproject.toml the TOML parser refuses, said as its file, line and key, with the fix where the
    mistake is a known one; the parser's own text is kept as a detail, never the whole message."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    where = _TOML_WHERE.search(text)
    line, column = (int(where.group(1)), int(where.group(2))) if where and where.group(1) else (0, 0)
    detail = text[: where.start()] if where else text
    twice = _DECLARED_TWICE.match(detail)
    keys = re.findall(r"'([^']*)'", twice.group(1)) if twice else []
    table = keys[2:] if keys[:2] == ["tool", "cuda-constraints"] else []
    if twice and len(table) == 2 and table[0] == "cuda":
        given = key_line(path, "cuda")
        problem = (
            f"[tool.cuda-constraints.cuda.{table[1]}] cannot be declared here, because `cuda` is already a list of majors"
            f"{f' (line {given})' if given else ''}. Give the majors one way: either `cuda = [12, 13]`, or one "
            "[tool.cuda-constraints.cuda.N] table per major to compile (an empty table when a major needs nothing "
            "of its own), without the `cuda = [...]` line"
        )
        return ConfigError(path, "cuda", problem, line)
    if twice:
        name = ".".join(keys)
        problem = (f"[{name}] is declared twice, or set above as a value: TOML allows each table once; merge the two "
                   f"(the TOML parser says: {detail})")
        return ConfigError(path, ".".join(table), problem, line)
    at = f" (column {column})" if column else " at the end of the file" if where and where.group(3) else ""
    quoted = f": {_line(path, line)!r}" if _line(path, line) else ""
    meaning = "a key set twice in one table (TOML allows each once)" if detail == "Cannot overwrite a value" else "not valid TOML"
    return ConfigError(path, "", f"{meaning}{at}{quoted} (the TOML parser says: {detail})", line)


def _line(path: Path, number: int) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    return lines[number - 1].strip() if 0 < number <= len(lines) else ""


@dataclass
class TableReader:
    """Typed values of one TOML table, each failure a ConfigError naming the file, line and key."""

    table: dict[str, Any]
    path: Path
    prefix: str = ""  # the key path of a nested table ("cuda.12."), for messages

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.path, self.prefix + key, problem, key_line(self.path, self.prefix + key))

    def nested(self, key: str) -> TableReader:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return TableReader(value, self.path, f"{self.prefix}{key}.")

    def optional_string(self, key: str) -> str | None:
        return self.string(key, "") if key in self.table else None

    def known(self, keys: Iterable[str]) -> None:
        unknown = sorted(set(self.table) - set(keys))
        if unknown:
            raise self.fail(unknown[0], f"unknown key (known: {', '.join(sorted(keys))})")

    def string(self, key: str, default: str) -> str:
        value = self.table.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(key, "must be a non-empty string")
        return value

    def strings(self, key: str, default: tuple[str, ...] = ()) -> list[str]:
        value = self.table.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "must be a list of strings")
        return value

    def boolean(self, key: str) -> bool:
        value = self.table.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def each(self, key: str, default: tuple[str, ...], parse: Any) -> list[Any]:
        values = self.strings(key, default)
        try:
            return [parse(v) for v in values]
        except UsageError as error:
            raise self.fail(key, error.problem) from None

    def date(self, key: str) -> datetime | None:
        if key not in self.table:
            return None
        value = self.table[key]
        try:
            return parse_date(str(value))
        except UsageError as error:
            raise self.fail(key, error.problem) from None


def parse_date(text: str) -> datetime:
    """`2026-11-01` (end of that day, UTC) or an RFC 3339 timestamp."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d")
            return day.replace(hour=23, minute=59, second=59, tzinfo=timezone.utc)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not a date: {text!r} (give YYYY-MM-DD or an RFC 3339 timestamp)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
