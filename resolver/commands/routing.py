"""Which indexes each CUDA major asks, from everything that names one (model/indexes.py says how they
are asked).

- The default index: `--index-url`, else a requirements file's `--index-url` line, else `index-url` in
  `[tool.cuda-constraints]` (or a named index with `default = true`), else the environment's
  (`UV_DEFAULT_INDEX`, `UV_INDEX_URL`, `PIP_INDEX_URL`), else PyPI; a major's own `index-url` replaces it.
- Extra indexes, asked before the default one as uv asks them: the major's own, then the flags', the
  requirements files', the configuration's (named indexes included) and the environment's (`UV_INDEX`,
  `UV_EXTRA_INDEX_URL`, `PIP_EXTRA_INDEX_URL`), each once.
- Find-links locations from all of these too (`UV_FIND_LINKS`, `PIP_FIND_LINKS`); `--no-index` (or
  `no-index = true`) asks no index at all.
- Routes: `[tool.cuda-constraints.sources]`, a major's own `sources`, and its `torch-backend`, which routes
  the PyTorch projects to `<pytorch-index>/<backend>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName

from ..errors import ConfigError, UsageError
from ..errors.display import redact_url
from ..files.config import Config
from ..files.constraints import ConstraintsDocument, IndexKind, IndexLine
from ..files.requirements import RequirementsInput, mistyped_url, relative_to_root
from ..model.distributions import DEFAULT_INDEX_URL
from ..model.indexes import PYTORCH_PROJECTS, STRATEGIES, IndexSource, IndexStrategy, Routing, torch_backend_index
from .options import CompileRequest


@dataclass(frozen=True)
class IndexChoice:
    """The indexes a run was given, before the configuration and the environment add theirs."""

    index_url: str  # the default index, already chosen (flag, requirements line, configuration, environment)
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    strategy: str | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.index_url, *self.extra_index_urls)

    @classmethod
    def of(cls, request: CompileRequest, requirements_input: RequirementsInput) -> IndexChoice:
        return cls(
            request.index_url_flag or requirements_input.index_url or request.index_url,
            (*request.extra_index_urls, *requirements_input.extra_index_urls),
            (*request.find_links, *requirements_input.find_links),
            request.no_index or requirements_input.no_index,
            request.index_strategy,
        )


def routing_for(config: Config, choice: IndexChoice, major: int) -> Routing:
    """Which indexes CUDA `major` asks, in order, and which projects are routed where."""
    settings = config.major(major)
    named = {index.name: IndexSource(index.url, index.name, index.explicit) for index in config.indexes.named}
    if settings.torch_backend:
        backend = torch_backend_index(settings.torch_backend, config.indexes.pytorch_index)
        named[backend.name] = backend
    default_url = settings.indexes.index_url or choice.index_url
    extras = _unique(
        *settings.indexes.extra_index_urls, *choice.extra_index_urls,
        *(index.url for index in config.indexes.named if not index.explicit and not index.default),
        *config.indexes.extra_index_urls, *config.environment.extra_index_urls,
    )
    no_index = choice.no_index or config.no_index or config.environment.no_index
    indexes = () if no_index else tuple(named_or_plain(url, named, config) for url in (*extras, default_url) if url)
    links = _unique(*settings.indexes.find_links, *choice.find_links, *config.indexes.find_links, *config.environment.find_links)
    return Routing(
        indexes=tuple(dict.fromkeys(indexes)),
        find_links=tuple(_find_links(place, config) for place in links),
        routes=_routes(config, settings.indexes.sources, named, settings.torch_backend),
        strategy=_strategy(choice.strategy or config.indexes.strategy or config.environment.strategy),
    )


def named_or_plain(url: str, named: dict[str, IndexSource], config: Config) -> IndexSource:
    plain = IndexSource(url, origin=config.environment.origins.get(url, ""))
    return next((index for index in named.values() if index.url == url), plain)


def _routes(
    config: Config, major_sources: Mapping[NormalizedName, str], named: dict[str, IndexSource], backend: str | None
) -> dict[NormalizedName, IndexSource]:
    routes: dict[NormalizedName, IndexSource] = {}
    if backend:
        routes.update(dict.fromkeys(PYTORCH_PROJECTS, named[f"pytorch-{backend}"]))
    for project, name in (*config.indexes.sources.items(), *major_sources.items()):
        if name not in named:
            raise ConfigError(config.path or Path("pyproject.toml"), "sources", f"{project} names the unknown index {name!r}")
        routes[project] = named[name]
    return routes


def _find_links(place: str, config: Config) -> IndexSource:
    origin = config.environment.origins.get(place, "")
    if "://" in place:
        return IndexSource(place, find_links=True, origin=origin)
    if mistyped_url(place):
        raise UsageError(f"find-links {redact_url(place)!r} looks like a URL but has no valid scheme: give scheme://host/…, or a directory")
    path = config.resolve_path(Path(place)).resolve()
    # A directory the environment names is shown as it names it: relative to this project, one of the
    # machine's directories would read `../../../opt/wheels`.
    return IndexSource(str(path), find_links=True, shown=place if origin else relative_to_root(path, config.root), origin=origin)


def _strategy(value: str | None) -> IndexStrategy:
    for strategy in STRATEGIES:
        if (value or "first-index") == strategy:
            return strategy
    raise UsageError(f"index strategy {value!r}: give one of {', '.join(STRATEGIES)}")


def _unique(*urls: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(url for url in urls if url))


def index_lines(routing: Routing) -> tuple[IndexLine, ...]:
    """The header's record of where a major's pins come from, in the order they are asked (`serves` is
    filled in by the merge); nothing when that is PyPI alone, as without any index configured."""
    if routing == Routing():
        return ()
    routed = tuple(dict.fromkeys(source for source in routing.routes.values() if source not in routing.indexes))
    lines = [IndexLine("explicit", source.display) for source in routed]
    for source in routing.indexes:
        kind: IndexKind = "explicit" if source.explicit else "default" if source == routing.default else "extra"
        lines.append(IndexLine(kind, source.display))
    lines += [IndexLine("find-links", source.display) for source in routing.find_links]
    return tuple(lines)



def index_block_problems(document: ConstraintsDocument, routing: Routing, default_given: bool = False) -> list[str]:
    """Where a file's `indexes` block differs from what `routing` gives (the block compile would write, but
    for the find-links locations that served no pin, which it leaves out); `default_given`: the default
    index is given anew (install's --index-url), so the recorded one is not compared."""
    expected = index_lines(routing)
    main = [_entry(line) for line in expected if line.kind != "find-links" and not (default_given and line.kind == "default")]
    links = {_entry(line) for line in expected if line.kind == "find-links"}
    recorded = [_entry(line) for line in document.indexes if line.kind != "find-links" and not (default_given and line.kind == "default")]
    recorded_links = [_entry(line) for line in document.indexes if line.kind == "find-links"]
    if not document.indexes:  # none recorded: PyPI alone, as compile writes it
        pypi_alone = main in ([], ["default " + DEFAULT_INDEX_URL]) and routing.strategy == "first-index"
        return [] if pypi_alone or default_given else [f"it records no indexes; its configuration gives {', '.join(main + sorted(links))}"]
    problems = [f"its indexes block names {entry}, which its configuration does not give" for entry in recorded if entry not in main]
    problems += [f"its indexes block names {entry}, which its configuration does not give" for entry in recorded_links
                 if entry not in links]
    problems += [f"its configuration gives {entry}, which its indexes block does not name" for entry in main if entry not in recorded]
    if not problems and recorded != main:
        problems.append(f"its indexes block asks {', '.join(recorded)} in another order than its configuration ({', '.join(main)})")
    if document.index_strategy != routing.strategy:
        problems.append(f"its index strategy is {document.index_strategy}; its configuration gives {routing.strategy}")
    return problems


def _entry(line: IndexLine) -> str:
    return f"{line.kind} {line.url}"


def describe_sources(routing: Routing, environment_only: bool = False) -> list[str]:
    """The sources a major asks, in order, each with where it came from when the environment named it
    (`find-links /opt/wheels (from PIP_FIND_LINKS)`); only those with `environment_only`."""
    routed = tuple(dict.fromkeys(source for source in routing.routes.values() if source not in routing.indexes))
    kinds = [("explicit", source) for source in routed]
    kinds += [("explicit" if s.explicit else "default" if s == routing.default else "extra", s) for s in routing.indexes]
    kinds += [("find-links", source) for source in routing.find_links]
    return [f"{kind} {source.display}" + (f" (from {source.origin})" if source.origin else "")
            for kind, source in kinds if source.origin or not environment_only]
