"""What `install` checks in the target interpreter afterwards, as pure functions of what it reported:
installed versions equal the pins (markers evaluated for that interpreter; a pin nothing installed needs,
such as PyPI torch's libraries next to an image's own torch build, need not be there), no member of
another CUDA major is installed, and every canary imports. Without a constraints file (`verify` of any
image) the pins are not checked. The result renders as the table `install` prints last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..files.constraints import ConstraintsDocument, PinLine
from ..machine.interpreter import Canary
from ..model.cuda_libraries import DRIVER_LIBRARIES
from ..model.families import FamilyTable
from .libraries import LibraryCheck


@dataclass(frozen=True)
class Leftover:
    """An installed member of another CUDA major (from an earlier install, or installed by hand)."""

    name: str
    version: str
    cuda_major: int


@dataclass(frozen=True)
class Row:
    package: str
    pinned: str
    installed: str
    status: str
    ok: bool
    leftover: bool = False


@dataclass(frozen=True)
class Verification:
    cuda_major: int
    rows: tuple[Row, ...]
    libraries: LibraryCheck | None = None
    pins_checked: bool = True  # False without a constraints file

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows) and not (self.libraries and self.libraries.errors())

    @property
    def leftovers(self) -> tuple[str, ...]:
        return tuple(row.package for row in self.rows if row.leftover)

    def problems(self, verbose: bool = False) -> list[str]:
        """One line each (`verbose`: with the files a library problem is about)."""
        found = [f"{row.package}: {row.status}" for row in self.rows if not row.ok and not row.leftover]
        if self.leftovers:
            found.append(
                f"members of another CUDA major are installed ({', '.join(self.leftovers)}); "
                "`cuda-constraints install --fix` removes them"
            )
        return found + (self.libraries.errors(verbose) if self.libraries else [])

    def warnings(self, verbose: bool = False) -> list[str]:
        """The libraries nothing here provides that only some features need (not errors unless strict)."""
        return self.libraries.warnings(verbose) if self.libraries else []

    def summary(self) -> str:
        """One line: the verdict, and what was checked."""
        pins = sum(1 for row in self.rows if row.pinned and row.pinned != "-")
        canaries = sum(1 for row in self.rows if row.package.startswith("import "))
        checked = [_count(pins, "pin")] if self.pins_checked else []
        if self.libraries is not None:
            checked.append(_count(self.libraries.shared_objects, "shared object"))
        checked.append(_count(canaries, "canary", "canaries"))
        problems = len(self.problems()) if not self.ok else 0
        verdict = "all verified" if not problems else f"{problems} problem{'s' if problems != 1 else ''}"
        warnings = len(self.warnings())
        absent = f"; {_count(warnings, 'library', 'libraries')} not on this host, see the warnings" if warnings else ""
        return f"CUDA {self.cuda_major}: {verdict} ({', '.join(checked)} checked{absent})"


def _count(number: int, one: str, many: str = "") -> str:
    return f"{number} {one if number == 1 else many or one + 's'}"


def applicable_pins(document: ConstraintsDocument, markers: Mapping[str, str]) -> tuple[PinLine, ...]:
    """The pin lines whose markers hold for an interpreter."""
    environment = {**markers, "extra": ""}
    return tuple(pin for pin in document.pins if not pin.marker or Marker(pin.marker).evaluate(environment))


def find_leftovers(installed: Mapping[str, str], cuda_major: int, families: FamilyTable) -> tuple[Leftover, ...]:
    found = []
    for name, text in sorted(installed.items()):
        try:
            version: Version | None = Version(text)
        except InvalidVersion:
            version = None
        major = families.major_of(name, version)
        if major is not None and major != cuda_major:
            found.append(Leftover(name, text, major))
    return tuple(found)


def needed_names(
    markers: Mapping[str, str], requires: Mapping[str, Iterable[str]], top_level: Iterable[Requirement]
) -> frozenset[str]:
    """What the environment needs: the top-level requirements and what every installed distribution
    requires there (with the extras the top-level requirements ask of it)."""
    wanted: dict[str, set[str]] = {canonicalize_name(r.name): {canonicalize_name(e) for e in r.extras} for r in top_level}
    found = set(wanted)
    for name, lines in requires.items():
        for extra in ("", *wanted.get(name, ())):
            for text in lines:
                try:
                    requirement = Requirement(text)
                except InvalidRequirement:
                    continue
                if requirement.marker is None or requirement.marker.evaluate({**markers, "extra": extra}):
                    found.add(canonicalize_name(requirement.name))
    return frozenset(found)


def verify(
    document: ConstraintsDocument | int,
    markers: Mapping[str, str],
    installed: Mapping[str, str],
    families: FamilyTable,
    canaries: Iterable[Canary] = (),
    needed: frozenset[str] | None = None,
    libraries: LibraryCheck | None = None,
    driver: bool = True,
) -> Verification:
    """`document`: the major's constraints file, or only the major when there is none (the pins are not
    checked); `needed`: the projects the environment needs (None: every pin); `driver`: whether the host
    has the NVIDIA driver (without one, a canary that fails only for a driver library needs a GPU, no more)."""
    major = document if isinstance(document, int) else document.cuda_major
    pins = () if isinstance(document, int) else applicable_pins(document, markers)
    rows = [_pin_row(pin, installed.get(pin.name), needed is None or pin.name in needed) for pin in pins]
    for leftover in find_leftovers(installed, major, families):
        rows.append(Row(leftover.name, "-", leftover.version, f"CUDA {leftover.cuda_major} build", False, leftover=True))
    for canary in canaries:
        if canary.absent:
            continue
        if canary.error is None:
            rows.append(Row(f"import {canary.module}", "", "", "imports", True))
        elif not driver and any(library in canary.error for library in DRIVER_LIBRARIES):
            rows.append(Row(f"import {canary.module}", "", "", f"needs a GPU (no driver on this host: {canary.error})", True))
        else:
            rows.append(Row(f"import {canary.module}", "", "", f"import failed: {canary.error}", False))
    return Verification(major, tuple(rows), libraries, pins_checked=not isinstance(document, int))


def _pin_row(pin: PinLine, installed: str | None, needed: bool) -> Row:
    pinned = str(pin.version)
    if installed is None:
        return Row(pin.name, pinned, "-", "not installed", False) if needed else Row(pin.name, pinned, "-", "not needed here", True)
    same = satisfies(installed, pin.version)
    return Row(pin.name, pinned, installed, "ok" if same else "wrong version", same)


def satisfies(installed: str, pinned: Version) -> bool:
    """Whether an installed version meets `==pinned`, as installers read it: a pin without a local label is
    met by any local build of that version (`torch==2.14.0` by `2.14.0+cu130`)."""
    try:
        return SpecifierSet(f"=={pinned}").contains(Version(installed), prereleases=True)
    except InvalidVersion:
        return False


def render_table(verification: Verification) -> list[str]:
    header = Row("package", "pinned", "installed", "status", True)
    rows = (header, *verification.rows)
    widths = [max(len(getattr(row, column)) for row in rows) for column in ("package", "pinned", "installed")]

    def line(row: Row) -> str:
        cells = (row.package.ljust(widths[0]), row.pinned.ljust(widths[1]), row.installed.ljust(widths[2]), row.status)
        return "  ".join(cells).rstrip()

    return [line(header), *(line(row) for row in verification.rows)]
