"""What a shared object needs, and where the dynamic loader would find it, without loading anything.

The dynamic section (read with pyelftools) gives `DT_NEEDED`, `DT_RUNPATH` and `DT_RPATH`. A library is
looked for as glibc's loader looks: the object's `DT_RPATH` (only when it has no `DT_RUNPATH`),
`LD_LIBRARY_PATH`, its `DT_RUNPATH`, then the ldconfig cache and the default directories; `$ORIGIN`
is the object's own directory. One step is added: the directories of the shared libraries installed
wheels ship (`nvidia/cuda_runtime/lib`, `torch/lib`), because a Python process has usually loaded them
already (importing torch does), and the loader then takes a library of that name from memory; those of
the object's own distribution come first (nixl loads its plugins after its own `libnixl_common.so`, so a
plugin gets that one, not another build's of the same name). A library of another architecture is
passed over, as the loader passes it over.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from .system import Machine

ELF_MAGIC = b"\x7fELF"
# The loader's built-in directories, with Debian's multiarch ones (where glibc itself is).
DEFAULT_DIRECTORIES = (
    "/lib64", "/usr/lib64", "/lib", "/usr/lib",
    "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
)
_LDCONFIG_LINE = re.compile(r"^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$")


@dataclass(frozen=True)
class SharedObject:
    """The dynamic section of one ELF file."""

    path: str
    architecture: tuple[str, int]  # (e_machine, ELF class)
    needed: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()


def read_shared_object(path: str) -> SharedObject | None:
    """The dynamic section of an ELF file; None for anything else (or an ELF file that cannot be read)."""
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != ELF_MAGIC:
                return None
            handle.seek(0)
            elf = ELFFile(handle)
            architecture = (str(elf["e_machine"]), int(elf.elfclass))
            needed: list[str] = []
            runpath: list[str] = []
            rpath: list[str] = []
            for section in elf.iter_sections():
                if not isinstance(section, DynamicSection):
                    continue
                for tag in section.iter_tags():
                    kind = tag.entry.d_tag  # pyelftools sets the decoded string as an attribute of the tag
                    if kind == "DT_NEEDED":
                        needed.append(str(vars(tag)["needed"]))
                    elif kind == "DT_RUNPATH":
                        runpath += str(vars(tag)["runpath"]).split(":")
                    elif kind == "DT_RPATH":
                        rpath += str(vars(tag)["rpath"]).split(":")
            return SharedObject(path, architecture, tuple(needed), tuple(runpath), tuple(rpath))
    except (OSError, ELFError, ValueError, KeyError):
        return None


class Loader:
    """Finds libraries for objects as the dynamic loader would (see the module's documentation)."""

    def __init__(
        self,
        ld_library_path: Sequence[str] = (),
        cache: Mapping[str, Sequence[str]] | None = None,
        wheel_directories: Sequence[str] = (),
        default_directories: Sequence[str] = DEFAULT_DIRECTORIES,
    ) -> None:
        self.ld_library_path = tuple(d for d in ld_library_path if d)
        self.cache = cache or {}
        self.wheel_directories = tuple(wheel_directories)
        self.default_directories = tuple(default_directories)
        self._objects: dict[str, SharedObject | None] = {}

    def object(self, path: str) -> SharedObject | None:
        if path not in self._objects:
            self._objects[path] = read_shared_object(path)
        return self._objects[path]

    def find(self, library: str, needed_by: SharedObject, own_directories: Sequence[str] = ()) -> str | None:
        """Where the loader would find `library` for `needed_by`; None when nothing provides it.
        `own_directories`: where the distribution that ships `needed_by` keeps its shared libraries."""
        if "/" in library:
            return library if self._fits(library, needed_by) else None
        origin = os.path.dirname(needed_by.path)
        directories: list[str] = []
        if needed_by.rpath and not needed_by.runpath:
            directories += _expanded(needed_by.rpath, origin)
        directories += self.ld_library_path
        directories += _expanded(needed_by.runpath, origin)
        directories += own_directories
        directories += self.wheel_directories
        for directory in directories:
            candidate = os.path.join(directory, library)
            if self._fits(candidate, needed_by):
                return os.path.normpath(candidate)
        for candidate in self.cache.get(library, ()):
            if self._fits(candidate, needed_by):
                return candidate
        for directory in self.default_directories:
            candidate = os.path.join(directory, library)
            if self._fits(candidate, needed_by):
                return candidate
        return None

    def _fits(self, path: str, needed_by: SharedObject) -> bool:
        if not os.path.isfile(path):
            return False
        found = self.object(os.path.realpath(path))
        return found is not None and found.architecture == needed_by.architecture


def _expanded(entries: Iterable[str], origin: str) -> list[str]:
    return [entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin) for entry in entries if entry]


def ldconfig_cache(machine: Machine) -> dict[str, tuple[str, ...]]:
    """The loader's cache (`ldconfig -p`): library name -> paths, in the cache's order."""
    ldconfig = machine.which("ldconfig") or next(
        (path for path in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if os.path.isfile(path)), None
    )
    result = machine.run([ldconfig, "-p"]) if ldconfig else None
    return parse_ldconfig(result.stdout) if result is not None and result.returncode == 0 else {}


def parse_ldconfig(listing: str) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for line in listing.splitlines():
        match = _LDCONFIG_LINE.match(line)
        if match:
            found.setdefault(match.group(1), []).append(match.group(3))
    return {name: tuple(paths) for name, paths in found.items()}
