"""The indexes a command asks: the client with its limits and cache, and credentials for every URL given."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..commands.options import Flags
from ..commands.routing import IndexChoice
from ..errors import UsageError
from ..files.config import Config
from ..index.auth import CredentialStore
from ..index.blocking import BlockingIndex
from ..index.cache import Cache, default_cache_dir
from ..index.client import ClientOptions, IndexClient
from ..index.http import MIB, Limits
from .progress import Progress

if TYPE_CHECKING:
    from ..commands.check import CheckedFile


def open_index(args: Flags, config: Config, *urls: str, progress: Progress | None = None) -> BlockingIndex:
    """The indexes, with credentials for every URL the tool was given (`urls`: the flags' and the files')."""
    if args.no_cache and args.offline:
        raise UsageError("--offline needs the cache; drop --no-cache")
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    warn = progress.warning if progress else (lambda message: print(f"warning: {message}", file=sys.stderr))
    cache = Cache(cache_dir, warn=warn)
    if args.retries < 0 or args.timeout <= 0 or (args.deadline is not None and args.deadline <= 0) or args.max_page_size <= 0:
        raise UsageError("--retries must be 0 or more, and --timeout, --deadline and --max-page-size more than 0")
    limits = Limits(
        page_bytes=int(args.max_page_size * MIB),
        deadline=args.deadline if args.deadline is not None else 10 * args.timeout,
    )
    options = ClientOptions(
        offline=args.offline,
        refresh=args.refresh,
        retries=args.retries,
        timeout=args.timeout,
        limits=limits,
        credentials=credential_store(config, *urls),
    )
    return BlockingIndex(lambda: IndexClient(options, cache))


def credential_store(config: Config, *urls: str | None) -> CredentialStore:
    """Credentials from every index URL the tool was given (flags, files, configuration, environment), and
    from `~/.netrc` and keyring."""
    majors = config.majors.values()
    given = [
        *urls, config.index_url, *config.indexes.extra_index_urls, *(index.url for index in config.indexes.named),
        config.environment.index_url, *config.environment.extra_index_urls,
        *(url for major in majors for url in (major.indexes.index_url, *major.indexes.extra_index_urls)),
    ]
    return CredentialStore([url for url in given if url])


def flag_choice(args: Flags, default_index_url: str) -> IndexChoice:
    """The indexes the index flags of `inspect` or `check --online` give."""
    return IndexChoice(
        args.index_url or default_index_url, tuple(args.extra_index_url or ()), tuple(args.find_links or ()),
        bool(args.no_index), args.index_strategy,
    )


def file_choice(args: Flags, checked: CheckedFile) -> IndexChoice:
    """The indexes a checked file was compiled from, unless index flags say otherwise."""
    assert checked.request is not None and checked.requirements_input is not None
    flags = flag_choice(args, checked.request.index_url)
    if flags != IndexChoice(checked.request.index_url):
        return flags
    return IndexChoice.of(checked.request, checked.requirements_input)
