"""Where projects come from: indexes, find-links locations, and the routing of one CUDA major.

An index is asked for a project by name; a find-links location (a directory, or an HTML page of links)
offers files of any project, and its files are always added to those of the index a project comes from,
as pip and uv do. A CUDA major's `Routing` says, for every project, which sources are asked:

- a project routed to a named index (`[tool.cuda-constraints.sources]`, or the PyTorch family under
  `torch-backend`) comes from that index only;
- otherwise, with the default strategy (uv's `first-index`), from the first index in order that has the
  project at all: a later index is never asked for it, so a public index cannot shadow a private name
  (dependency confusion); with `unsafe-best-match`, from every index, merged.

A local version label names a CUDA build: `2.14.0+cu129` is CUDA 12.9, `+cu130` 13.0; `+cpu` and `+rocm…`
name no CUDA major.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from ..errors.display import redact_url
from .distributions import DEFAULT_INDEX_URL

IndexStrategy = Literal["first-index", "unsafe-best-match"]
STRATEGIES: tuple[IndexStrategy, ...] = ("first-index", "unsafe-best-match")
PYTORCH_INDEX_BASE = "https://download.pytorch.org/whl"
# The projects the PyTorch index builds per CUDA version: `torch-backend` routes them to it.
PYTORCH_PROJECTS: tuple[NormalizedName, ...] = tuple(
    canonicalize_name(name)
    for name in (
        "torch", "torchvision", "torchaudio", "torchao", "torchcodec", "torchdata", "torchrec", "torchtext",
        "fbgemm-gpu", "triton", "pytorch-triton",
    )
)
# The PyTorch index's build of each CUDA major that `torch-backend` defaults to where a hint names it (the
# newest CUDA minor the index builds for); a major not listed, its x.0 build.
TORCH_BACKENDS: dict[int, str] = {12: "cu129", 13: "cu130"}
_BACKEND = re.compile(r"^cu(\d{2})(\d)$")
_LOCAL_CUDA = re.compile(r"^cu(\d{2})(\d+)$")


@dataclass(frozen=True)
class IndexSource:
    """An index (or a find-links location) as the user gave it: the URL may carry credentials."""

    url: str
    name: str = ""  # for routing projects to it ("" when unnamed)
    explicit: bool = False  # asked only for the projects routed to it
    find_links: bool = False
    # How headers and messages show it, when not the URL with its credentials masked (a find-links
    # directory is shown relative to the project, whatever machine compiles it; one the environment
    # names, as it names it).
    shown: str = field(default="", compare=False)
    origin: str = field(default="", compare=False)  # the environment variable that named it, if one did

    @property
    def display(self) -> str:
        """As headers and messages show it."""
        return self.shown or redact_url(self.url)


@dataclass(frozen=True)
class Routing:
    """Which sources one CUDA major asks for each project."""

    indexes: tuple[IndexSource, ...] = (IndexSource(DEFAULT_INDEX_URL),)
    find_links: tuple[IndexSource, ...] = ()
    routes: Mapping[NormalizedName, IndexSource] = field(default_factory=dict, hash=False)
    strategy: IndexStrategy = "first-index"

    def searched(self, name: NormalizedName) -> tuple[IndexSource, ...]:
        """The indexes asked for a project, in order (explicit ones only for what is routed to them)."""
        routed = self.routes.get(name)
        if routed is not None:
            return (routed,)
        return tuple(index for index in self.indexes if not index.explicit)

    @property
    def default(self) -> IndexSource | None:
        """The default index: asked last, after the extra ones (None with --no-index)."""
        return next((index for index in reversed(self.indexes) if not index.explicit), None)


def torch_backend_index(backend: str, base: str = PYTORCH_INDEX_BASE) -> IndexSource:
    """`cu129` -> the PyTorch index of CUDA 12.9 (`<base>/cu129`), named for routing."""
    if not _BACKEND.match(backend):
        raise ValueError(f"{backend!r} is not a CUDA backend such as 'cu129' or 'cu130'")
    return IndexSource(f"{base.rstrip('/')}/{backend}", name=f"pytorch-{backend}", explicit=True)


def default_torch_backend(major: int) -> str:
    """The PyTorch index's name for a CUDA major's build (`cu129` for 12)."""
    return TORCH_BACKENDS.get(major, f"cu{major}0")


def backend_major(backend: str) -> int | None:
    match = _BACKEND.match(backend)
    return int(match.group(1)) if match else None


def local_cuda(version: Version) -> tuple[int, int] | Literal["none"] | None:
    """The CUDA (major, minor) a local version label names (`+cu129` -> (12, 9)); "none" for another
    accelerator or none (`+cpu`, `+rocm6.3`, `+xpu`); None without a local label."""
    if version.local is None:
        return None
    first = version.local.split(".")[0].lower()
    match = _LOCAL_CUDA.match(first)
    if match:
        return int(match.group(1)), int(match.group(2))
    return "none" if first in ("cpu", "xpu") or first.startswith(("rocm", "cpu")) else None
