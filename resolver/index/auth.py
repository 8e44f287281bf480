"""Credentials for private indexes, found where pip and uv look for them, and sent only where they belong.

Sources, in the order a request's origin (scheme, host, port) is looked up:

1. the URL itself (`https://user:password@host/simple`, or a token as `https://TOKEN@host/`), from a flag,
   a requirements-file line, `[tool.cuda-constraints]` or the environment (`PIP_INDEX_URL`, ...);
2. `~/.netrc` (or the file `NETRC` names), by host;
3. the `keyring` package, when it is installed (`pip install 'cuda-constraints[keyring]'`), asked only
   after the index answers 401 to a request without credentials.

URLs are split into a credential-free URL, which is what the client requests, caches and shows, and the
credentials, which live only here. A header records `https://user:****@host/simple`: the `****` says that
the password comes from one of the sources above, so that URL contributes the user name only.
Credentials go to their own origin only; httpx drops the `Authorization` header when a redirect leaves it.
"""

from __future__ import annotations

import base64
import logging
import netrc
import os
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..errors.display import REDACTED, redact_url

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

Origin = tuple[str, str, int | None]


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(default="", repr=False)

    def header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"


@dataclass(frozen=True)
class IndexUrl:
    """An index URL and the credentials for it, shown with the password masked wherever it is printed."""

    url: str  # without credentials
    credentials: Credentials | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return redact_url(self.with_secret())

    def __repr__(self) -> str:
        return f"IndexUrl({str(self)!r})"

    def with_secret(self) -> str:
        """The URL with its credentials, for an installer's environment; never for printing."""
        if self.credentials is None:
            return self.url
        parts = urlsplit(self.url)
        user = quote(self.credentials.username, safe="")
        userinfo = f"{user}:{quote(self.credentials.password, safe='')}" if self.credentials.password else user
        return urlunsplit((parts.scheme, f"{userinfo}@{parts.netloc}", parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class IndexUrls:
    """Several index URLs as one variable holds them (`PIP_EXTRA_INDEX_URL`), credentials masked when shown."""

    urls: tuple[IndexUrl, ...]

    def __str__(self) -> str:
        return " ".join(str(url) for url in self.urls)

    def with_secret(self) -> str:
        return " ".join(url.with_secret() for url in self.urls)


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """`https://user:pw@host/x` -> (`https://host/x`, "user", "pw"); a redacted or absent password is None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None, None
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    username, colon, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    if not colon:
        return clean, unquote(username), ""  # a token as the user name, with an empty password
    return clean, unquote(username), None if password == REDACTED else unquote(password)


def origin_of(url: str | httpx.URL) -> Origin:
    import httpx  # only a run that asks an index or holds credentials pays for importing it

    parsed = httpx.URL(str(url))
    return (parsed.scheme, parsed.host, parsed.port)


class CredentialStore:
    """Credentials by origin, from URLs given to the tool, `~/.netrc` and (on a 401) keyring."""

    def __init__(
        self,
        urls: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
        use_keyring: bool = True,
        read_netrc: bool = True,
    ) -> None:
        self._by_origin: dict[Origin, Credentials] = {}
        self._usernames: dict[Origin, str] = {}
        self._environ = dict(os.environ if environ is None else environ)
        self._netrc: netrc.netrc | bool | None = False if read_netrc else None  # False: not read yet
        self._use_keyring = use_keyring
        self._asked_keyring: set[Origin] = set()
        for url in urls:
            self.add(url)

    def add(self, url: str) -> str:
        """Remember the credentials a URL carries; return the URL without them."""
        clean, username, password = split_credentials(url)
        if username is not None:
            origin = origin_of(clean)
            self._usernames.setdefault(origin, username)
            if password is not None:
                self._by_origin.setdefault(origin, Credentials(username, password))
        return clean

    def index(self, url: str) -> IndexUrl:
        """A URL given to the tool, with whatever credentials are known for its origin."""
        clean = self.add(url)
        return IndexUrl(clean, self.for_url(clean))

    def for_url(self, url: str | httpx.URL) -> Credentials | None:
        """Credentials to send to this URL's origin: from a URL given to the tool, else from netrc."""
        origin = origin_of(url)
        found = self._by_origin.get(origin)
        if found is None:
            found = self._from_netrc(origin)
            if found is not None:
                self._by_origin[origin] = found
        return found

    def after_unauthorized(self, url: str | httpx.URL) -> Credentials | None:
        """Credentials from keyring for an origin that answered 401 (asked once per origin)."""
        origin = origin_of(url)
        if not self._use_keyring or origin in self._asked_keyring:
            return None
        self._asked_keyring.add(origin)
        found = _from_keyring(origin, self._usernames.get(origin))
        if found is not None:
            self._by_origin[origin] = found
        return found

    def _from_netrc(self, origin: Origin) -> Credentials | None:
        if self._netrc is False:
            self._netrc = _read_netrc(self._environ)
        if not isinstance(self._netrc, netrc.netrc):
            return None
        entry = self._netrc.authenticators(origin[1])
        if entry is None:
            return None
        login, _, password = entry
        wanted = self._usernames.get(origin)
        if wanted is not None and login and login != wanted:
            return None
        return Credentials(login or wanted or "", password or "")


def _read_netrc(environ: Mapping[str, str]) -> netrc.netrc | None:
    path = Path(environ["NETRC"]) if environ.get("NETRC") else Path(environ.get("HOME") or Path.home()) / ".netrc"
    if not path.is_file():
        return None
    try:
        return netrc.netrc(str(path))
    except (netrc.NetrcParseError, OSError) as error:
        logger.warning("%s cannot be read (%s); continuing without it", path, getattr(error, "msg", error))
        return None


def _from_keyring(origin: Origin, username: str | None) -> Credentials | None:
    try:
        import keyring  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    scheme, host, port = origin
    netloc = f"{host}:{port}" if port else host
    for service in (f"{scheme}://{netloc}", netloc):
        try:
            credential = keyring.get_credential(service, username)
        except Exception as error:  # a keyring backend can fail in many ways; it is only a fallback
            logger.warning("keyring lookup for %s failed: %s", service, error)
            return None
        if credential is not None:
            return Credentials(credential.username, credential.password)
    return None


def index_auth(store: CredentialStore) -> httpx.Auth:
    """Basic auth from a `CredentialStore`, per request origin; on a 401 without credentials, keyring.
    Made with the first connection, when httpx is imported."""
    import httpx

    class IndexAuth(httpx.Auth):
        def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
            credentials = store.for_url(request.url)
            if credentials is not None:
                request.headers["Authorization"] = credentials.header()
            response = yield request
            if response.status_code == 401 and credentials is None:
                credentials = store.after_unauthorized(request.url)
                if credentials is not None:
                    request.headers["Authorization"] = credentials.header()
                    yield request

    return IndexAuth()
