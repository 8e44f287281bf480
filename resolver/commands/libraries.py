"""The shared-library check of an installed environment, without a GPU: every shared object the installed
distributions ship (extension modules and bundled libraries) is read (machine/elf.py), and each library
it needs is looked for as the dynamic loader would.

- A library of another CUDA major (by its soname, or by the wheel that ships it) is an error even where
  it is found; so is a CUDA toolkit library (model/cuda_libraries.py) that nothing provides.
- Any other library nothing provides (RDMA, MPI, TBB, cuTENSOR: what plugins and optional modules load
  when their transport or feature is used) is a warning, one per library with the distributions that
  need it; `strict` makes it an error. `ignore` globs silence libraries nothing provides.
- The driver's libraries (`libcuda.so.1`, `libnvidia-ml.so.1`) come from the host. A distribution of
  another CUDA major is not read: verify reports it as a leftover, and what its files need follows.

Errors are grouped: one per distribution, library and problem, with the files that need the library.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from ..machine.elf import Loader, ldconfig_cache
from ..machine.interpreter import EnvironmentReport
from ..machine.system import Machine
from ..model.cuda_libraries import is_driver_library, is_toolkit_library, library_major
from ..model.families import FamilyTable

WHERE_LOOKED = "no installed wheel, LD_LIBRARY_PATH, RUNPATH or the loader's cache"


@dataclass(frozen=True)
class LibraryRules:
    """How libraries nothing here provides are told: `strict` makes those that are not CUDA toolkit
    libraries errors; one matching an `ignore` glob is not reported (another major's library always is)."""

    strict: bool = False
    ignore: tuple[str, ...] = ()

    def ignores(self, library: str) -> bool:
        return any(fnmatch.fnmatchcase(library, pattern) for pattern in self.ignore)


WARN_ONLY = LibraryRules()  # the default: warnings, nothing ignored


@dataclass(frozen=True, order=True)
class LibraryProblem:
    """Files of one distribution that need one library, and what is wrong with that library."""

    distribution: str
    library: str
    problem: str
    files: tuple[str, ...]  # as the distribution's RECORD names them

    def describe(self, verbose: bool = False) -> str:
        first, others = self.files[0], len(self.files) - 1
        who = f"{first} needs" if not others else f"{first} and {others} other file{'s' if others > 1 else ''} need"
        listed = "".join(f"\n    {file}" for file in self.files) if verbose and others else ""
        return f"{self.distribution}: {who} {self.library}: {self.problem}{listed}"


@dataclass(frozen=True, order=True)
class AbsentLibrary:
    """A library that is not a CUDA toolkit library and that nothing here provides: only the features
    that load it (a transport, an MPI bootstrap) need it on the host."""

    library: str
    needed_by: tuple[tuple[str, str], ...]  # (distribution, file)

    def describe(self, verbose: bool = False) -> str:
        distributions = ", ".join(sorted({distribution for distribution, _ in self.needed_by}))
        listed = "".join(f"\n    {distribution}: {file}" for distribution, file in self.needed_by) if verbose else ""
        return f"{self.library} ({distributions}): not on this host; needed only by the features that use it{listed}"


@dataclass(frozen=True)
class LibraryCheck:
    shared_objects: int
    problems: tuple[LibraryProblem, ...] = ()
    absent: tuple[AbsentLibrary, ...] = ()
    strict: bool = False

    def errors(self, verbose: bool = False) -> list[str]:
        found = [problem.describe(verbose) for problem in self.problems]
        return found + ([absent.describe(verbose) + " (strict)" for absent in self.absent] if self.strict else [])

    def warnings(self, verbose: bool = False) -> list[str]:
        return [] if self.strict else [absent.describe(verbose) for absent in self.absent]


def environment_loader(machine: Machine, report: EnvironmentReport) -> Loader:
    """The loader of this machine, for the target environment: its LD_LIBRARY_PATH, its ldconfig cache,
    and the directories where the installed wheels keep shared libraries."""
    directories = sorted({os.path.dirname(path) for files in report.libraries.values() for _, path in files})
    return Loader(machine.environ.get("LD_LIBRARY_PATH", "").split(":"), ldconfig_cache(machine), directories)


def check_libraries(
    report: EnvironmentReport, major: int, families: FamilyTable, loader: Loader, rules: LibraryRules = WARN_ONLY
) -> LibraryCheck:
    owners = {os.path.realpath(path): name for name, files in report.libraries.items() for _, path in files}
    problems: dict[tuple[str, str, str], set[str]] = {}
    absent: dict[str, set[tuple[str, str]]] = {}
    objects = 0
    for distribution, files in sorted(report.libraries.items()):
        if _distribution_major(distribution, report.installed, families) not in (None, major):
            continue
        own = sorted({os.path.dirname(path) for _, path in files})
        for shown, path in files:
            found_object = loader.object(path)
            if found_object is None:
                continue
            objects += 1
            for library in found_object.needed:
                if is_driver_library(library):
                    continue
                found = loader.find(library, found_object, own)
                provider = owners.get(os.path.realpath(found)) if found else None
                other = library_major(library) or (_distribution_major(provider, report.installed, families) if provider else None)
                if other is not None and other != major:
                    source = f", from {provider}" if provider else (" (and nothing here provides it)" if found is None else "")
                    problem = f"a CUDA {other} library{source}, in a CUDA {major} environment"
                elif found is not None or rules.ignores(library):
                    continue
                elif is_toolkit_library(library):
                    problem = f"a CUDA library that nothing here provides ({WHERE_LOOKED})"
                else:
                    absent.setdefault(library, set()).add((distribution, shown))
                    continue
                problems.setdefault((distribution, library, problem), set()).add(shown)
    return LibraryCheck(
        objects,
        tuple(LibraryProblem(*key, tuple(sorted(shown))) for key, shown in sorted(problems.items())),
        tuple(AbsentLibrary(library, tuple(sorted(needed_by))) for library, needed_by in sorted(absent.items())),
        rules.strict,
    )


def _distribution_major(name: str, installed: Mapping[str, str], families: FamilyTable) -> int | None:
    """The CUDA major of an installed distribution, as its family tells (None for one in no family)."""
    try:
        version = Version(installed[name]) if name in installed else None
    except InvalidVersion:
        version = None
    return families.major_of(name, version)
