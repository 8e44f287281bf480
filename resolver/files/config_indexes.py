"""The index part of `[tool.cuda-constraints]`, and the tables of each CUDA major.

    index-url = "https://mirror.example/simple"        # the default index (else the environment's, else PyPI)
    extra-index-url = ["https://private.example/simple"]
    find-links = ["wheels/", "https://github.com/org/project/releases/expanded_assets/v1"]
    index-strategy = "first-index"                      # or "unsafe-best-match"
    pytorch-index = "https://download.pytorch.org/whl"  # where torch-backend points

    [[tool.cuda-constraints.index]]                     # a named index, as uv's [[tool.uv.index]]
    name = "internal"
    url = "https://internal.example/simple"
    explicit = true                                     # only for the projects routed to it
    [tool.cuda-constraints.sources]
    our-kernels = "internal"                            # project -> index name

    [tool.cuda-constraints.cuda.12]                     # these keys give the majors (instead of cuda = [...])
    torch-backend = "cu129"                             # the PyTorch family from <pytorch-index>/cu129
    index-url = "..."                                   # and any of the index keys above, for this major
    requirements = ["requirements/cu12.txt"]            # replaces the shared requirements for this major
    extra-requirements = ["requirements/extra-cu12.txt"]  # added to them
    constraints = ["requirements/image-cu12.txt"]        # -c files for this major
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from packaging.utils import NormalizedName, canonicalize_name

from ..errors import UsageError
from ..model.indexes import PYTORCH_INDEX_BASE, STRATEGIES, IndexStrategy, backend_major
from ..model.targets import parse_major
from .config_reader import TableReader

INDEX_KEYS = ("index-url", "extra-index-url", "find-links", "sources")
MAJOR_KEYS = (*INDEX_KEYS, "torch-backend", "requirements", "extra-requirements", "constraints")
_NAMED_KEYS = {"name", "url", "explicit", "default"}


@dataclass(frozen=True)
class NamedIndex:
    name: str
    url: str
    explicit: bool = False
    default: bool = False  # replaces the default index (PyPI)


@dataclass(frozen=True)
class IndexSettings:
    """The index keys of a table (the top-level one, or one major's)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    sources: Mapping[NormalizedName, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class MajorSettings:
    """`[tool.cuda-constraints.cuda.N]`: what one CUDA major does differently."""

    indexes: IndexSettings = field(default_factory=IndexSettings)
    torch_backend: str | None = None
    requirements: tuple[Path, ...] | None = None  # None: the shared ones
    extra_requirements: tuple[Path, ...] = ()
    constraints: tuple[Path, ...] = ()


@dataclass(frozen=True)
class IndexConfig:
    """Everything `[tool.cuda-constraints]` says about indexes (the default index-url is on Config)."""

    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    strategy: IndexStrategy | None = None
    named: tuple[NamedIndex, ...] = ()
    sources: Mapping[NormalizedName, str] = field(default_factory=dict, hash=False)
    pytorch_index: str = PYTORCH_INDEX_BASE


def read_index_config(reader: TableReader) -> IndexConfig:
    strategy = reader.optional_string("index-strategy")
    if strategy is not None and strategy not in STRATEGIES:
        raise reader.fail("index-strategy", f"must be one of {', '.join(STRATEGIES)}")
    named = _named(reader)
    settings = read_index_settings(reader, {index.name for index in named})
    return IndexConfig(
        extra_index_urls=settings.extra_index_urls,
        find_links=settings.find_links,
        strategy=cast(IndexStrategy, strategy),
        named=named,
        sources=settings.sources,
        pytorch_index=reader.optional_string("pytorch-index") or PYTORCH_INDEX_BASE,
    )


def read_index_settings(reader: TableReader, names: set[str]) -> IndexSettings:
    sources = reader.nested("sources")
    routed = {}
    for project, index in sources.table.items():
        if not isinstance(index, str) or index not in names:
            known = ", ".join(sorted(names)) or "none is defined"
            raise sources.fail(project, f"must name an index of [[tool.cuda-constraints.index]] ({known})")
        routed[canonicalize_name(project)] = index
    return IndexSettings(
        index_url=reader.optional_string("index-url"),
        extra_index_urls=tuple(reader.strings("extra-index-url")),
        find_links=tuple(reader.strings("find-links")),
        sources=routed,
    )


def read_majors(reader: TableReader, index_names: set[str]) -> dict[int, MajorSettings] | None:
    """The `cuda` key as a table of majors (`[tool.cuda-constraints.cuda.12]`), or None when it is not one."""
    if not isinstance(reader.table.get("cuda"), dict):
        return None
    table = reader.nested("cuda")
    if not table.table:
        raise reader.fail("cuda", "names no CUDA major")
    majors = {}
    for key in table.table:
        try:
            major = parse_major(key, "cuda.")
        except UsageError:
            raise table.fail(key, "is not a CUDA major such as 12 or 13") from None
        majors[major] = _major(table.nested(key), major, index_names)
    return dict(sorted(majors.items()))


def _major(reader: TableReader, major: int, index_names: set[str]) -> MajorSettings:
    reader.known(MAJOR_KEYS)
    backend = reader.optional_string("torch-backend")
    if backend is not None and backend_major(backend) != major:
        raise reader.fail("torch-backend", f"must be a CUDA {major} backend such as 'cu{major}9' (the PyTorch index's name)")
    requirements = reader.strings("requirements") if "requirements" in reader.table else None
    return MajorSettings(
        indexes=read_index_settings(reader, index_names | ({f"pytorch-{backend}"} if backend else set())),
        torch_backend=backend,
        requirements=tuple(Path(p) for p in requirements) if requirements is not None else None,
        extra_requirements=tuple(Path(p) for p in reader.strings("extra-requirements")),
        constraints=tuple(Path(p) for p in reader.strings("constraints")),
    )


def _named(reader: TableReader) -> tuple[NamedIndex, ...]:
    entries = reader.table.get("index", [])
    if not isinstance(entries, list):
        raise reader.fail("index", "must be an array of tables ([[tool.cuda-constraints.index]])")
    named = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise reader.fail("index", "must be an array of tables ([[tool.cuda-constraints.index]])")
        table = TableReader(entry, reader.path, f"index[{number}].")
        table.known(_NAMED_KEYS)
        named.append(NamedIndex(table.string("name", ""), table.string("url", ""), table.boolean("explicit"), table.boolean("default")))
    if len({index.name for index in named}) != len(named):
        raise reader.fail("index", "two indexes have the same name")
    return tuple(named)
