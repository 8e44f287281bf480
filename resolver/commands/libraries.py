"""The shared-library check of an installed environment, without a GPU: every shared object the installed
distributions ship (extension modules and bundled libraries) is read (machine/elf.py), and each library
it needs is looked for as the dynamic loader would. A library of another CUDA major (by its soname, or
by the wheel that ships it) is a problem even where it is found; a library nothing provides is one too,
unless the driver provides it (`libcuda.so.1`, `libnvidia-ml.so.1` come from the host).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from ..machine.elf import Loader, ldconfig_cache
from ..machine.interpreter import EnvironmentReport
from ..machine.system import Machine
from ..model.cuda_libraries import is_driver_library, library_major
from ..model.families import FamilyTable


@dataclass(frozen=True, order=True)
class LibraryProblem:
    distribution: str
    file: str  # as the distribution's RECORD names it
    library: str
    problem: str

    def describe(self) -> str:
        return f"{self.distribution}: {self.file} needs {self.library}: {self.problem}"


@dataclass(frozen=True)
class LibraryCheck:
    shared_objects: int
    problems: tuple[LibraryProblem, ...]


def environment_loader(machine: Machine, report: EnvironmentReport) -> Loader:
    """The loader of this machine, for the target environment: its LD_LIBRARY_PATH, its ldconfig cache,
    and the directories where the installed wheels keep shared libraries."""
    directories = sorted({os.path.dirname(path) for files in report.libraries.values() for _, path in files})
    return Loader(machine.environ.get("LD_LIBRARY_PATH", "").split(":"), ldconfig_cache(machine), directories)


def check_libraries(report: EnvironmentReport, major: int, families: FamilyTable, loader: Loader) -> LibraryCheck:
    owners = {os.path.realpath(path): name for name, files in report.libraries.items() for _, path in files}
    problems: set[LibraryProblem] = set()
    objects = 0
    for distribution, files in sorted(report.libraries.items()):
        for shown, path in files:
            found_object = loader.object(path)
            if found_object is None:
                continue
            objects += 1
            for library in found_object.needed:
                if is_driver_library(library):
                    continue
                found = loader.find(library, found_object)
                provider = owners.get(os.path.realpath(found)) if found else None
                other = _major(library, provider, report.installed, families)
                if other is not None and other != major:
                    source = f", from {provider}" if provider else (" (and nothing here provides it)" if found is None else "")
                    problem = f"a CUDA {other} library{source}, in a CUDA {major} environment"
                elif found is None:
                    problem = "nothing here provides it (no installed wheel, LD_LIBRARY_PATH, RUNPATH or the loader's cache)"
                else:
                    continue
                problems.add(LibraryProblem(distribution, shown, library, problem))
    return LibraryCheck(objects, tuple(sorted(problems)))


def _major(library: str, provider: str | None, installed: Mapping[str, str], families: FamilyTable) -> int | None:
    """The CUDA major of a library: its soname's, else that of the installed wheel that ships it."""
    major = library_major(library)
    if major is not None or provider is None:
        return major
    try:
        version = Version(installed[provider]) if provider in installed else None
    except InvalidVersion:
        version = None
    return families.major_of(provider, version)
