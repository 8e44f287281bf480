"""What may be shown: URLs without secrets, and text from an index without control characters.

Every URL that reaches a message, a log line, a file header or an installer command line passes through
`redact_url`: the password of `user:password@` becomes `****` (a bare `token@` too), and so do the values of
query parameters whose names look like secrets (`?token=…`, `X-Amz-Signature=…`). Text that came from an
index (file names, metadata fields) passes through `escape` before it is printed, so a newline or an ANSI
escape sequence in it cannot forge a line in a CI log.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "****"
_SECRET_QUERY_KEY = re.compile(r"token|secret|passw|pwd|key|sig|auth|credential|session|access", re.IGNORECASE)
# C0 and C1 control characters, DEL, and the Unicode line and paragraph separators.
_QUERY_PAIR = re.compile(r"(^|[&;])([^=&;]*)=([^&;]*)")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


# `user:password@` anywhere, URL or not (a mistyped `user:PW@host/links`, `http:/user:PW@host`): the password.
_USERINFO = re.compile(r"(?<![^\s/'\"=(\[,])([^\s/:@'\"=]+):(?!\*\*\*\*@)([^\s/@'\"]+)@")


def mask_userinfo(text: str) -> str:
    """Every `user:password@` in a text, URL or not, with the password masked."""
    return _USERINFO.sub(rf"\1:{REDACTED}@", text)


def redact_url(url: str) -> str:
    """The URL with its secrets masked: `https://user:****@host/simple`, `https://****@host/`, `?token=****`;
    anything with the shape of `user:password@` is masked too, where the text is no URL at all."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_userinfo(_redact_unparsable(url))
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        username, colon, _ = userinfo.partition(":")
        # A lone user part is usually a token (`https://TOKEN@host`); a user with a password keeps the user.
        netloc = f"{username}:{REDACTED}@{host}" if colon else f"{REDACTED}@{host}"
    query = _QUERY_PAIR.sub(_redact_pair, parts.query)
    if not netloc:  # a relative URL, or a typo such as `user:PW@host/links` or `http:/user:PW@host`: kept as given
        return mask_userinfo(url.replace(parts.query, query, 1) if parts.query else url)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_pair(match: re.Match[str]) -> str:
    start, key, value = match.groups()
    return f"{start}{key}={REDACTED}" if _SECRET_QUERY_KEY.search(key) and value else match.group(0)


def _redact_unparsable(url: str) -> str:
    return re.sub(r"//[^/@\s]*@", f"//{REDACTED}@", url)


# A URL in running text; punctuation that ends a sentence or a clause is not part of it.
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,;:)\]]")


def redact_text(text: str) -> str:
    """Every URL in a free text (a message, a quoted requirements line) with its secrets masked, and
    anything else with the shape of `user:password@`."""
    return mask_userinfo(_URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text))


def has_secret(url: str) -> bool:
    """Whether `redact_url` would mask anything in this URL."""
    return redact_url(url) != url


def escape(text: str) -> str:
    """Control characters (newlines included) as `\\xNN` escapes: for text an index sent."""
    return _CONTROL.sub(_escaped, text)


def escape_for_terminal(text: str) -> str:
    """Control characters except newlines as escapes: for whole messages whose lines are the tool's own."""
    return _CONTROL_BUT_NEWLINE.sub(_escaped, text)


def shown_url(url: str) -> str:
    """A URL as every message shows it: secrets masked, control characters escaped."""
    return escape(redact_url(url))


def _escaped(match: re.Match[str]) -> str:
    character = match.group(0)
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
