"""Indexes this machine cannot reach, imitated from what PyPI serves (tests/data/frozen/index/sources).

vLLM's CUDA 12 inputs need two: the PyTorch index of CUDA 12.9 (`torch-backend = "cu129"`: torch
2.14.0+cu129 and its family) and LMCache's GitHub release page of CUDA 12.9 wheels (kv_connectors_cu12.txt's
`--find-links`). Neither download.pytorch.org nor github.com answers here, so each is imitated by the
recipe below from PyPI's own release of the same version: its wheels for the targets, renamed to the local
version the source serves, and its METADATA with the CUDA 13 requirements rewritten to what the CUDA 12.9
build requires. `python -m tests.imitated` (needs PyPI) writes them; `index/sources/PROVENANCE.md` says
where every rewrite comes from. `served()` puts them on local HTTP servers, as a mirror would.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from resolver.model.distributions import wheel_tags
from resolver.model.indexes import Routing, torch_backend_index
from resolver.model.targets import Platform, PythonVersion, environment_grid

from .frozen import FROZEN, Snapshot, imitated_sources
from .index_server import PyTorchIndex
from .synthetic import SyntheticIndex

PYTORCH_CU129 = torch_backend_index("cu129").url  # https://download.pytorch.org/whl/cu129
LMCACHE_CU129 = "https://github.com/LMCache/LMCache/releases/expanded_assets/v0.5.6-cu129"
SOURCES = FROZEN / "index" / "sources"


@dataclass(frozen=True)
class Imitation:
    """A release an imitated source serves: PyPI's `pypi_version` of `name`, its wheels for CPython 3.12 on
    `machines` renamed to `version`, each `rewrites` pair (PyPI's text -> the CUDA 12.9 build's) applied
    to the one requirement that contains it."""

    name: str
    pypi_version: str
    version: str
    rewrites: tuple[tuple[str, str], ...] = ()
    machines: tuple[str, ...] = ("x86_64", "aarch64")


# torch 2.14.0 on PyPI is the CUDA 13.0 build. PyTorch's CUDA 12 builds from 2.11 on require the same
# shape (cuda-toolkit with extras, cuda-bindings, cuDNN, cuSPARSELt, NCCL, NVSHMEM) with the CUDA 12
# names, and cuda-toolkit at the CUDA version of the build (12.9.1 for cu129).
TORCH_CU129 = (
    ("]==13.0.3;", "]==12.9.1;"),
    ("cuda-bindings<14,>=13.0.3", "cuda-bindings<13,>=12.9.4"),
    ("nvidia-cudnn-cu13", "nvidia-cudnn-cu12"),
    ("nvidia-cusparselt-cu13", "nvidia-cusparselt-cu12"),
    ("nvidia-nccl-cu13", "nvidia-nccl-cu12"),
    ("nvidia-nvshmem-cu13", "nvidia-nvshmem-cu12"),
)
# lmcache 0.5.6 on PyPI is the CUDA 13 build; its CUDA 12.9 build (LMCACHE_CUDA_MAJOR=12) takes CuPy and
# cuda-python of CUDA 12, as vLLM's kv_connectors_cu12.txt does.
LMCACHE_CU12 = (
    ("cupy-cuda13x", "cupy-cuda12x"),
    ("cuda-python<14,>=13", "cuda-python<13,>=12"),
)

RECIPE: dict[str, tuple[str, tuple[Imitation, ...]]] = {
    "pytorch-cu129": (PYTORCH_CU129, (
        Imitation("torch", "2.14.0", "2.14.0+cu129", TORCH_CU129),
        Imitation("torchvision", "0.29.0", "0.29.0+cu129"),
        Imitation("torchaudio", "2.11.0", "2.11.0+cu129"),
        Imitation("torchcodec", "0.17.0", "0.17.0+cu129"),
        Imitation("triton", "3.8.0", "3.8.0"),  # served by the PyTorch index as PyPI has it
    )),
    # LMCache's CUDA 12.9 wheel has no local version, and is built for x86_64 only.
    "lmcache-v0.5.6-cu129": (LMCACHE_CU129, (Imitation("lmcache", "0.5.6", "0.5.6", LMCACHE_CU12, ("x86_64",)),)),
}


def rewritten(requirements: Sequence[str], rewrites: Sequence[tuple[str, str]], what: str) -> list[str]:
    """The requirements with each rewrite applied; one that matches no requirement, or several, is an error
    (PyPI's METADATA changed: the recipe must be looked at again)."""
    result = list(requirements)
    for old, new in rewrites:
        matching = [i for i, line in enumerate(result) if old in line]
        if len(matching) != 1:
            raise SystemExit(f"{what}: {old!r} matches {len(matching)} requirements of {result}")
        result[matching[0]] = result[matching[0]].replace(old, new)
    return result


def imitate() -> None:
    """Write every source of the recipe from PyPI's releases."""
    from resolver.index.blocking import BlockingIndex
    from resolver.index.cache import Cache
    from resolver.index.client import ClientOptions, IndexClient

    with BlockingIndex(lambda: IndexClient(ClientOptions(), Cache(None))) as live:
        pypi = live.routed(Routing())
        for key, (url, imitations) in RECIPE.items():
            root = SOURCES / key
            _write(root / "source.json", {"url": url})
            for imitation in imitations:
                release = pypi.project(canonicalize_name(imitation.name)).release(Version(imitation.pypi_version))
                assert release is not None, imitation
                supported = set().union(*(environment.tag_priority for environment in environment_grid(
                    (PythonVersion(3, 12),), tuple(Platform(f"manylinux_2_34_{machine}") for machine in imitation.machines)
                )))
                rows, metadata = [], {}
                for file in (f for f in release.files if f.is_wheel and wheel_tags(f.filename) & supported):
                    filename = file.filename.replace(f"-{imitation.pypi_version}-", f"-{imitation.version}-", 1)
                    found = pypi.metadata(release, file)
                    metadata[filename] = {
                        "requires_dist": rewritten(found.requires_dist, imitation.rewrites, filename),
                        "requires_python": found.requires_python,
                        "provides_extra": list(found.provides_extra),
                    }
                    uploaded = file.upload_time.isoformat() if file.upload_time else None
                    rows.append([filename, None, file.requires_python, file.yanked, uploaded, file.size])
                name = canonicalize_name(imitation.name)
                _write(root / "projects" / f"{name}.json", {"name": name, "releases": {imitation.version: rows}})
                _write(root / "metadata" / f"{name}.json", metadata)
                print(f"{key}: {name} {imitation.version}, {len(rows)} wheels", file=sys.stderr)


def _write(path: Path, document: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, separators=(",", ":"), sort_keys=True) + "\n")


# -- serving them -------------------------------------------------------------------------------------------


LINKS_PAGE = "/LMCache/LMCache/releases/expanded_assets/v0.5.6-cu129"


def served() -> tuple[PyTorchIndex, SyntheticIndex]:
    """The imitated sources as a mirror would serve them: the PyTorch index of CUDA 12.9 at `/whl/cu129/`
    (HTML, PEP 658 metadata, local versions) and LMCache's release page at LINKS_PAGE; the wheels are
    small stand-ins with the imitated METADATA."""
    sources = imitated_sources(FROZEN / "index")
    pytorch = PyTorchIndex(["cu129"])
    _add(sources[PYTORCH_CU129], lambda name, version, requires, **options: pytorch.add("cu129", name, version, requires, **options))
    assets = SyntheticIndex()
    _add(sources[LMCACHE_CU129], assets.add)
    assets.links_page = LINKS_PAGE
    return pytorch, assets


def _add(snapshot: Snapshot, add: Callable[..., object]) -> None:
    for path in sorted((snapshot.root / "projects").glob("*.json")):
        project = snapshot.project(canonicalize_name(path.stem))
        for release in project.releases:
            # One METADATA for all of a release's wheels (as PyPI's are, for these releases).
            metadata = snapshot.metadata(release, release.files[0])
            tags = tuple(file.filename[:-len(".whl")].split("-", 2)[2] for file in release.files)
            add(project.name, str(release.version), metadata.requires_dist, tags=tags,
                requires_python=metadata.requires_python, provides=metadata.provides_extra)


if __name__ == "__main__":
    imitate()
