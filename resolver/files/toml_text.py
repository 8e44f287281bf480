"""TOML values written as text: the few kinds a lock file needs, each one safe whatever it holds.

A string is always a basic string (`"…"`) with every character that could end it, end its line or hide
in a terminal escaped: the quote and the backslash, every control character (C0, DEL, C1), the line and
paragraph separators, and the invisible format characters (bidirectional overrides among them), as
`\\uXXXX` or `\\UXXXXXXXX`. So nothing an index serves can add a key, a table or a line to a written
file: the text parses back (tomllib) to exactly the value given. A lone surrogate has no TOML spelling
and is refused. Keys are the writer's own names, checked to be bare keys.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from ..errors import UnsafeValue

Value = str | int | bool | datetime | Sequence["Value"] | Mapping[str, "Value"]
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
# Candidates for escaping, tested one by one below: ASCII controls, the quote and backslash, and anything
# beyond ASCII (whose category decides).
_SUSPECT = re.compile(r'[\x00-\x1f"\\\x7f-\U0010ffff]')
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def string(text: str) -> str:
    """`text` as a TOML basic string."""
    return '"' + _SUSPECT.sub(_escape, text) + '"'


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    if character in _SHORT:
        return _SHORT[character]
    category = unicodedata.category(character)
    if category == "Cs":
        raise UnsafeValue("a string holding a lone surrogate", repr(character))
    if category not in _ESCAPED_CATEGORIES:
        return character
    code = ord(character)
    return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"


def key(name: str) -> str:
    """A bare key (the writer's own names only)."""
    if not BARE_KEY.fullmatch(name):
        raise ValueError(f"not a bare TOML key: {name!r}")
    return name


def value(item: Value) -> str:
    """A value on one line: a string, an integer, a boolean, a UTC date-time, an array or an inline table."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, str):
        return string(item)
    if isinstance(item, datetime):
        return date_time(item)
    if isinstance(item, Mapping):
        return inline_table(item)
    return "[" + ", ".join(value(element) for element in item) + "]"


def inline_table(table: Mapping[str, Value]) -> str:
    return "{ " + ", ".join(f"{key(name)} = {value(item)}" for name, item in table.items()) + " }" if table else "{}"


def date_time(moment: datetime) -> str:
    """An offset date-time in UTC (`2025-01-25T11:30:10.164985Z`); a naive one is taken to be UTC."""
    utc = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}{fraction}Z"


def assignment(name: str, item: Value) -> str:
    """`name = value`, one line."""
    return f"{key(name)} = {value(item)}"


def array_lines(name: str, items: Sequence[Value]) -> list[str]:
    """`name = [` with one element per line (a readable diff of long arrays), or `name = []`."""
    if not items:
        return [f"{key(name)} = []"]
    return [f"{key(name)} = [", *(f"    {value(item)}," for item in items), "]"]
