"""Planning an install, purely: which files to write and which installer commands to run for one
constraints file, with uv or with pip. `install.py` runs what this plans.

- Swaps: top-level requirements naming another major's member are passed as the file's replacement.
- Exclusions (edges of meta packages to other majors' members): uv drops them with `--excludes`. pip
  cannot drop an edge, so the packages whose edges are excluded (the `nixl` meta package, and anything
  that depends on one) are installed with `--no-deps`, after their matching members and everything
  else are installed with `-c` (the file is closed, so nothing they need is left out).
- A lock file (`pylock.cuNN.toml` beside the constraints file) is installed as it is, without resolving:
  uv `pip install -r` (not `pip sync`, which would remove what else the environment holds, the project
  itself included), pip ≥ 26.3 `install --no-deps -r` (pip resolves a lock's dependencies again unless
  told not to, and would fetch the excluded member). Every file is checked against the lock's sha256.
- Hashes: when the file carries `--hash` lines, every download is checked. uv takes the file itself as
  the requirements (`--require-hashes -r`): in hash-checking mode it needs every requirement pinned
  with `==`. pip gets the pins as hashed requirements files too: pip 24 rejects requirements that are
  not pinned and hashed themselves when only a `-c` file carries hashes (pypa/pip#9243, #12956); pip
  26 accepts them, but CI images carry older pips.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from ..files.constraints import ConstraintsDocument, PinLine
from ..files.pylock import LockDocument
from ..files.requirements import RequirementsInput
from ..index.auth import IndexUrl, IndexUrls
from ..machine.detect import Detection
from ..model.families import FamilyTable

Installer = Literal["uv", "pip"]
# `pip install -r pylock.toml` (experimental from pip 26.1); 26.3 is the release its install is tested with.
PIP_READS_PYLOCK = Version("26.3")
# `uv pip install -r pylock.toml` (from uv 0.7); 0.9 is the least the `uv` extra installs.
UV_READS_PYLOCK = Version("0.9")


@dataclass(frozen=True)
class InstallSources:
    """The indexes an install asks: those the constraints file records (or, for a file that records none,
    the one given). Extra indexes are asked before the default one, as at compile time. uv gets
    `--index-strategy unsafe-best-match` when the file was compiled with it, or with an index that served
    only the projects routed to it (the PyTorch index): every pin is exact, and a local version such as
    `+cu129` exists on that index alone, so uv finds each pin where the compile found it. pip always
    looks at every index."""

    default: IndexUrl | None = None
    extras: tuple[IndexUrl, ...] = ()
    find_links: tuple[str, ...] = ()
    best_match: bool = False
    no_index: bool = False

    def arguments(self, kind: Installer) -> tuple[str, ...]:
        """Flags for the sources without credentials (those with credentials go in the environment)."""
        found: list[str] = ["--no-index"] if self.no_index else []
        if self.default is not None and self.default.credentials is None:
            found += ["--default-index" if kind == "uv" else "--index-url", self.default.url]
        if not any(extra.credentials for extra in self.extras):
            for extra in self.extras:
                found += ["--extra-index-url", extra.url]
        for place in self.find_links:
            found += ["--find-links", place]
        if self.best_match and kind == "uv":
            found += ["--index-strategy", "unsafe-best-match"]
        return tuple(found)

    def environment(self, kind: Installer) -> dict[str, IndexUrl | IndexUrls]:
        """Variables for the sources with credentials, so no secret is in an argument list or a printed
        command (those show `user:****@`)."""
        found: dict[str, IndexUrl | IndexUrls] = {}
        if self.default is not None and self.default.credentials is not None:
            found["UV_DEFAULT_INDEX" if kind == "uv" else "PIP_INDEX_URL"] = self.default
        if any(extra.credentials for extra in self.extras):
            found["UV_EXTRA_INDEX_URL" if kind == "uv" else "PIP_EXTRA_INDEX_URL"] = IndexUrls(self.extras)
        return found


@dataclass(frozen=True)
class Tool:
    """An installer, bound to the target interpreter and the indexes."""

    kind: Installer
    prefix: tuple[str, ...]  # ("/usr/bin/uv", "pip") or ("/venv/bin/python", "-m", "pip"[, "--python", T])
    python: str
    system: bool = False
    sources: InstallSources = InstallSources()
    reads_pylock: bool = False  # installs a PEP 751 lock file (uv from 0.9, pip from 26.3)

    def install(self, *arguments: str) -> tuple[str, ...]:
        if self.kind == "uv":
            target: tuple[str, ...] = ("--python", self.python, *(("--system",) if self.system else ()))
        else:
            # The skipped edges are deliberate; the verification afterwards checks what matters.
            target = ("--no-warn-conflicts",)
        return (*self.prefix, "install", *target, *self.sources.arguments(self.kind), *arguments)

    @property
    def environment(self) -> dict[str, IndexUrl | IndexUrls]:
        """Variables the installer runs with: the indexes that carry credentials."""
        return self.sources.environment(self.kind)

    def uninstall(self, names: Iterable[str]) -> tuple[str, ...]:
        if self.kind == "uv":
            return (*self.prefix, "uninstall", "--python", self.python, *(("--system",) if self.system else ()), *names)
        return (*self.prefix, "uninstall", "--yes", *names)


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    text: str


@dataclass(frozen=True)
class InstallPlan:
    files: tuple[PlannedFile, ...]
    commands: tuple[tuple[str, ...], ...]
    environment: Mapping[str, IndexUrl | IndexUrls] = field(default_factory=dict)

    def exports(self) -> list[str]:
        """The environment as shell lines, credentials masked (`user:****@`: give the password there)."""
        return [f"export {name}={shlex.quote(str(value))}" for name, value in sorted(self.environment.items())]

    def script(self) -> list[str]:
        """The plan as shell lines a user can run by hand (what `--dry-run` prints)."""
        lines = self.exports()
        if self.files:
            lines.append(shlex.join(("mkdir", "-p", str(self.files[0].path.parent))))
        for planned in self.files:
            lines += [f"cat > {shlex.quote(str(planned.path))} <<'EOF'", *planned.text.splitlines(), "EOF"]
        return lines + [shlex.join(command) for command in self.commands]


@dataclass(frozen=True)
class Prepared:
    """A checked constraints file and what `install` passes next to it."""

    major: int
    path: Path
    document: ConstraintsDocument
    requirements: tuple[Requirement, ...]
    sources: InstallSources
    detection: Detection | None = None
    # The lock file beside the constraints file, checked to say what it says (None: there is none).
    lock_path: Path | None = None
    lock: LockDocument | None = None


def swapped_requirements(requirements_input: RequirementsInput, document: ConstraintsDocument) -> tuple[Requirement, ...]:
    """The top-level requirements with the file's swaps applied (same specifier, extras and markers)."""
    by_origin = {(swap.origin, swap.original): swap for swap in document.swapped}
    by_text = {swap.original: swap for swap in document.swapped}
    found = []
    for sourced in requirements_input.requirements:
        text = str(sourced.requirement)
        swap = by_origin.get((sourced.origin, text)) or by_text.get(text)
        found.append(Requirement(swap.replacement) if swap else sourced.requirement)
    return tuple(found)


def excluded_names(document: ConstraintsDocument) -> tuple[str, ...]:
    return tuple(sorted({canonicalize_name(line.name) for line in document.excluded}))


def no_deps_names(document: ConstraintsDocument, families: FamilyTable) -> frozenset[str]:
    """What pip must install with `--no-deps`: the packages whose edges are excluded (meta packages), and
    every pinned package that depends on one of them (else pip would resolve the excluded edge again)."""
    pinned = {pin.name for pin in document.pins}
    seeds = {_leading_name(line.required_by) for line in document.excluded}
    seeds |= {name for name in pinned if families.meta_family(name) is not None}
    parents: dict[str, set[str]] = {}
    for pin in document.pins:
        parents.setdefault(pin.name, set()).update(canonicalize_name(p) for p in pin.via if not p.startswith("-"))
    found: set[str] = set()
    pending = [name for name in seeds if name in pinned]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending += [parent for parent in parents.get(name, ()) if parent in pinned]
    return frozenset(found)


def _leading_name(text: str) -> str:
    """`nixl==1.5.1` (or `nixl[cu13]==1.5.1`) -> `nixl`."""
    name = text.strip()
    for stop in "[=<>!~; (":
        name = name.split(stop, 1)[0]
    return canonicalize_name(name)


def plan_install(
    prepared: Prepared,
    tool: Tool,
    families: FamilyTable,
    work_dir: Path,
    removals: Sequence[str] = (),
    reinstall: Sequence[PinLine] = (),
) -> InstallPlan:
    """The files and commands that install `prepared` with `tool`, removing `removals` first and
    reinstalling `reinstall` (members whose files a removed variant may have shared)."""
    if prepared.lock is not None and prepared.lock_path is not None and tool.reads_pylock:
        plan = _lock_plan(prepared.lock_path, prepared.lock, tool, work_dir, reinstall)
    elif tool.kind == "uv":
        plan = _uv_plan(prepared, tool, work_dir, reinstall)
    else:
        plan = _pip_plan(prepared, tool, families, work_dir, reinstall)
    commands = (tool.uninstall(removals), *plan.commands) if removals else plan.commands
    return InstallPlan(plan.files, commands, tool.environment)


def _lock_plan(path: Path, lock: LockDocument, tool: Tool, work_dir: Path, reinstall: Sequence[PinLine]) -> InstallPlan:
    """The lock file as it is; members to reinstall (`--fix`) again from its files, hashes checked."""
    if tool.kind == "uv":
        return InstallPlan((), (tool.install("-r", str(path), *(f"--reinstall-package={pin.name}" for pin in reinstall)),))
    commands = [tool.install("--no-deps", "-r", str(path))]
    files = []
    locked = {(pin.name, pin.version): pin for pin in lock.pins}
    again = [locked[(pin.name, pin.version)] for pin in reinstall if (pin.name, pin.version) in locked]
    if again:
        files.append(PlannedFile(work_dir / "reinstall.txt", hashed_requirements(again)))
        commands.append(tool.install("--require-hashes", "--no-deps", "--force-reinstall", "-r", str(files[-1].path)))
    return InstallPlan(tuple(files), tuple(commands))


def _uv_plan(prepared: Prepared, tool: Tool, work_dir: Path, reinstall: Sequence[PinLine]) -> InstallPlan:
    document, constraints = prepared.document, str(prepared.path)
    files = []
    excludes: tuple[str, ...] = ()
    if document.excluded:
        files.append(PlannedFile(work_dir / "excludes.txt", "".join(f"{name}\n" for name in excluded_names(document))))
        excludes = ("--excludes", str(files[-1].path))
    again = tuple(f"--reinstall-package={pin.name}" for pin in reinstall)
    if _hashed(document):
        command = tool.install("--require-hashes", "-r", constraints, *excludes, *again)
    else:
        command = tool.install("-c", constraints, *excludes, *again, *(str(r) for r in prepared.requirements))
    return InstallPlan(tuple(files), (command,))


def _pip_plan(prepared: Prepared, tool: Tool, families: FamilyTable, work_dir: Path, reinstall: Sequence[PinLine]) -> InstallPlan:
    document = prepared.document
    no_deps = no_deps_names(document, families)
    rest = [pin for pin in document.pins if pin.name not in no_deps]
    without_deps = [pin for pin in document.pins if pin.name in no_deps]
    steps = ((rest, ()), (without_deps, ("--no-deps",)), (reinstall, ("--no-deps", "--force-reinstall")))
    if _hashed(document):
        files, commands = [], []
        for (pins, flags), name in zip(steps, ("requirements.txt", "no-deps.txt", "reinstall.txt"), strict=True):
            if pins:
                files.append(PlannedFile(work_dir / name, hashed_requirements(pins)))
                commands.append(tool.install("--require-hashes", *flags, "-r", str(files[-1].path)))
        return InstallPlan(tuple(files), tuple(commands))
    members = [pin.requirement for pin in rest if any(canonicalize_name(p) in no_deps for p in pin.via if not p.startswith("-"))]
    top_level = [str(r) for r in prepared.requirements if canonicalize_name(r.name) not in no_deps]
    commands = [tool.install("-c", str(prepared.path), *top_level, *members)] if top_level or members else []
    commands += [tool.install(*flags, *(pin.requirement for pin in pins)) for pins, flags in steps[1:] if pins]
    return InstallPlan((), tuple(commands))


def _hashed(document: ConstraintsDocument) -> bool:
    return any(pin.hashes for pin in document.pins)


def hashed_requirements(pins: Iterable[PinLine]) -> str:
    """A requirements file of pins with their hashes, for hash-checking mode."""
    lines = []
    for pin in pins:
        lines.append(pin.requirement + "".join(f" \\\n    --hash=sha256:{digest}" for digest in pin.hashes))
    return "".join(line + "\n" for line in lines)


def reinstall_pins(pins: Sequence[PinLine], removals: Sequence[str], families: FamilyTable) -> tuple[PinLine, ...]:
    """The pinned members of the families whose other-major members are being removed."""
    removed_families = {variant.family.name for name in removals if (variant := families.classify(name)) is not None}
    return tuple(
        pin for pin in pins
        if (variant := families.classify(pin.name, pin.version)) is not None
        and variant.role == "member"
        and variant.family.name in removed_families
    )


