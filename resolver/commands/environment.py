"""Verifying an installed environment (what `install` runs after installing, and `verify` on its own):
the pins (when there is a constraints file), no member of another CUDA major, the shared libraries every
shared object needs (commands/libraries.py), and the canaries; and the record `install` leaves in the
environment, so that `detect` knows which torch it put there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from packaging.requirements import Requirement

from ..files.constraints import ConstraintsDocument
from ..machine.detect import host_has_driver
from ..machine.interpreter import EnvironmentReport, import_canary, record_install
from ..machine.system import Machine
from ..model.families import FamilyTable
from .libraries import WARN_ONLY, LibraryRules, check_libraries, environment_loader
from .verify import Verification, needed_names, verify


def verify_environment(
    machine: Machine,
    python: str,
    report: EnvironmentReport,
    document: ConstraintsDocument | int,
    requirements: Iterable[Requirement],
    families: FamilyTable,
    canaries: Sequence[str],
    rules: LibraryRules = WARN_ONLY,
) -> Verification:
    """The checks of the interpreter's environment, as `report` (read after any install) describes it;
    `document` is the major's constraints file, or the major alone when there is none."""
    major = document if isinstance(document, int) else document.cuda_major
    loader = environment_loader(machine, report)
    libraries = check_libraries(report, major, families, loader, rules)
    results = [import_canary(machine, python, module) for module in canaries]
    needed = needed_names(report.markers, report.requires, requirements)
    driver = host_has_driver(machine, loader.cache)
    return verify(document, report.markers, report.installed, families, results, needed, libraries, driver)


def remember_install(machine: Machine, python: str, report: EnvironmentReport, major: int) -> None:
    """Record in the environment that `install` put its packages there for `major` (torch included)."""
    record_install(machine, python, json.dumps({"cuda_major": major, "torch": report.installed.get("torch")}))
