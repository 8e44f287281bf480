"""`install`: install the requirements with the constraints file of one CUDA major (DESIGN §5), never
asking the index for a variant of another major, then verify the result in the target interpreter.

- The file must be current: its input digest equals the requirements' (else `StaleConstraints`).
- Swaps: top-level requirements naming another major's member are passed as the file's replacement.
- Exclusions (edges of meta packages to other majors' members): uv drops them with `--excludes`. pip
  cannot drop an edge, so the packages whose edges are excluded (the `nixl` meta package, and anything
  that depends on one) are installed with `--no-deps`, after their matching members and everything
  else are installed with `-c` (the file is closed, so nothing they need is left out).
- Hashes: when the file carries `--hash` lines, every download is checked. uv takes the file itself as
  the requirements (`--require-hashes -r`): in hash-checking mode it needs every requirement pinned
  with `==`. pip gets the pins as hashed requirements files too: pip 24 rejects requirements that are
  not pinned and hashed themselves when only a `-c` file carries hashes (pypa/pip#9243, #12956); pip
  26 accepts them, but CI images carry older pips.

Planning is pure (`plan_install` returns files and commands); `install_with_constraints` is the edge:
it detects, writes the planned files to a temporary directory, runs the commands and verifies.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..errors import (
    ConstraintsFileError,
    ConstraintsMissing,
    InstallFailed,
    StaleConstraints,
    UsageError,
)
from ..files.constraints import ConstraintsDocument, PinLine
from ..files.output_dir import OutputDirectory
from ..files.requirements import RequirementsInput, digest_of, load_requirements
from ..files.sets import display_path, read_file
from ..index.auth import CredentialStore, IndexUrl
from ..machine.detect import Detection, probe_machine, require_installable
from ..machine.interpreter import environment_report, import_canary
from ..machine.system import Machine
from ..model.families import FamilyTable
from .verify import Verification, applicable_pins, find_leftovers, verify

Installer = Literal["uv", "pip"]
Say = Callable[[str], None]


@dataclass(frozen=True)
class InstallRequest:
    requirement_files: tuple[Path, ...]
    root: Path  # the project root: requirement paths in the digest are relative to it, as compile writes them
    families: FamilyTable
    families_text: str
    constraints_dir: Path
    python: str  # the target interpreter, as a path
    cuda: int | None = None  # None: detect
    installer: Installer | Literal["auto"] = "auto"
    system: bool = False
    index_url: str | None = None  # --index-url
    # [tool.cuda-constraints] index-url, else the environment's, when not the default
    config_index_url: str | None = None
    credentials: CredentialStore | None = None
    canaries: tuple[str, ...] = ()
    rocm_requirements: Path | None = None
    dry_run: bool = False
    fix: bool = False


@dataclass(frozen=True)
class Tool:
    """An installer, bound to the target interpreter and index.

    An index without credentials goes on the command line; one with credentials goes in the installer's
    environment (`UV_DEFAULT_INDEX`, `PIP_INDEX_URL`), so the secret is in no argument list and no printed
    command: those show it as `user:****@`.
    """

    kind: Installer
    prefix: tuple[str, ...]  # ("/usr/bin/uv", "pip") or ("/venv/bin/python", "-m", "pip"[, "--python", T])
    python: str
    system: bool = False
    index: IndexUrl | None = None

    def install(self, *arguments: str) -> tuple[str, ...]:
        flag = "--default-index" if self.kind == "uv" else "--index-url"
        index = (flag, self.index.url) if self.index is not None and self.index.credentials is None else ()
        if self.kind == "uv":
            target: tuple[str, ...] = ("--python", self.python, *(("--system",) if self.system else ()))
        else:
            # The skipped edges are deliberate; the verification afterwards checks what matters.
            target = ("--no-warn-conflicts",)
        return (*self.prefix, "install", *target, *index, *arguments)

    @property
    def environment(self) -> dict[str, IndexUrl]:
        """Variables the installer runs with: the index, when it carries credentials."""
        if self.index is None or self.index.credentials is None:
            return {}
        return {"UV_DEFAULT_INDEX" if self.kind == "uv" else "PIP_INDEX_URL": self.index}

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
    environment: Mapping[str, IndexUrl] = field(default_factory=dict)

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
    index: IndexUrl | None
    detection: Detection | None = None


@dataclass(frozen=True)
class InstallOutcome:
    prepared: Prepared | None
    plan: InstallPlan
    verification: Verification | None = None


# -- pure: reading and checking the constraints file ----------------------------------------------------------


def read_constraints(path: Path, major: int) -> ConstraintsDocument:
    """The major's constraints file; a missing one is ConstraintsMissing, one for another major an error."""
    try:
        named = read_file(path)
    except FileNotFoundError:
        raise ConstraintsMissing(Path(display_path(path)), major) from None
    if named.document.cuda_major != major:
        problem = f"is the file for CUDA {named.document.cuda_major}, not {major}"
        raise ConstraintsFileError(named.shown, 1, "", problem)
    return named.document


def check_fresh(document: ConstraintsDocument, path: Path, requirements_input: RequirementsInput, families_text: str) -> None:
    current = digest_of(requirements_input, families_text)
    if document.digest != current:
        raise StaleConstraints(path, document.digest, current, requirements_input.top_level_files)


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


# -- pure: planning the commands ------------------------------------------------------------------------------


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
    plan = _uv_plan(prepared, tool, work_dir, reinstall) if tool.kind == "uv" else _pip_plan(prepared, tool, families, work_dir, reinstall)
    commands = (tool.uninstall(removals), *plan.commands) if removals else plan.commands
    return InstallPlan(plan.files, commands, tool.environment)


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


# -- the edge: detect, read, run, verify ----------------------------------------------------------------------


def choose_major(request: InstallRequest, machine: Machine, warn: Say = lambda line: None) -> tuple[int | None, Detection | None]:
    """The major to install for (`--cuda`, else detected in the target interpreter); None for a ROCm
    machine with `rocm-requirements` configured. Raises NoCudaDetected when there is nothing to install for."""
    if request.cuda is not None:
        return request.cuda, None
    detection = probe_machine(machine, request.python)
    for warning in detection.warnings:
        warn(warning)
    require_installable(detection, rocm_configured=request.rocm_requirements is not None)
    return detection.major, detection


def prepare(request: InstallRequest, major: int, detection: Detection | None = None) -> Prepared:
    """Read the major's constraints file and check it against the requirements."""
    path = request.constraints_dir / f"cu{major}.txt"
    OutputDirectory(request.constraints_dir).recover_if_idle()
    shown = _shown(path)
    document = read_constraints(path, major)
    requirements_input = load_requirements(list(request.requirement_files), root=request.root)
    check_fresh(document, shown, requirements_input, request.families_text)
    index = _index(request, request.index_url or requirements_input.index_url or request.config_index_url)
    return Prepared(major, path, document, swapped_requirements(requirements_input, document), index, detection)


def _index(request: InstallRequest, url: str | None) -> IndexUrl | None:
    """The index with the credentials known for it (from a URL given anywhere, `~/.netrc` or keyring)."""
    if url is None:
        return None
    return (request.credentials or CredentialStore(read_netrc=False, use_keyring=False)).index(url)


def _shown(path: Path) -> Path:
    return Path(display_path(path))


def find_tool(request: InstallRequest, machine: Machine, index: IndexUrl | None) -> Tool:
    """uv from PATH (or next to this interpreter, where the `uv` extra puts it); pip from this interpreter
    (`--python` points it at the target), else the target's own pip."""
    uv = machine.which("uv") or _sibling("uv")
    if request.installer == "uv" and uv is None:
        raise UsageError("--installer uv: uv is not on PATH; install it (pip install uv) or pass --installer pip")
    if request.installer in ("uv", "auto") and uv is not None:
        return Tool("uv", (uv, "pip"), request.python, request.system, index)
    if importlib.util.find_spec("pip") is not None:
        same = os.path.abspath(request.python) == os.path.abspath(sys.executable)
        prefix = (sys.executable, "-m", "pip", *(() if same else ("--python", request.python)))
    else:
        prefix = (request.python, "-m", "pip")
    return Tool("pip", prefix, request.python, request.system, index)


def _sibling(program: str) -> str | None:
    candidate = Path(sys.executable).parent / program
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


def install_with_constraints(request: InstallRequest, machine: Machine, say: Say, warn: Say = lambda line: None) -> InstallOutcome:
    """Install (or, for a dry run, print how), then verify; `say` gets the progress lines, `warn` warnings."""
    major, detection = choose_major(request, machine, warn)
    if major is None:
        assert detection is not None
        return _install_rocm(request, machine, say, detection)
    prepared = prepare(request, major, detection)
    say(("# " if request.dry_run else "") + _headline(prepared))
    tool = find_tool(request, machine, prepared.index)
    removals: tuple[str, ...] = ()
    reinstall: tuple[PinLine, ...] = ()
    if request.fix:
        before = environment_report(machine, request.python)
        removals = tuple(left.name for left in find_leftovers(before.installed, prepared.major, request.families))
        reinstall = reinstall_pins(applicable_pins(prepared.document, before.markers), removals, request.families)
    with _work_dir(request.dry_run) as work_dir:
        plan = plan_install(prepared, tool, request.families, work_dir, removals, reinstall)
        if request.dry_run:
            for line in plan.script():
                say(line)
            return InstallOutcome(prepared, plan)
        _execute(plan, machine, say)
    after = environment_report(machine, request.python)
    canaries = {module: import_canary(machine, request.python, module) for module in request.canaries}
    verification = verify(prepared.document, after.markers, after.installed, request.families, canaries)
    return InstallOutcome(prepared, plan, verification)


def _headline(prepared: Prepared) -> str:
    source = f"detected by {prepared.detection.describe()}" if prepared.detection else "--cuda"
    return f"CUDA {prepared.major} ({source}); constraints {_shown(prepared.path)}"


def _install_rocm(request: InstallRequest, machine: Machine, say: Say, detection: Detection) -> InstallOutcome:
    """ROCm with `rocm-requirements` configured: that file, as it is; CUDA verification does not apply."""
    assert request.rocm_requirements is not None
    headline = f"ROCm (detected by {detection.describe()}); installing {request.rocm_requirements} without CUDA constraints"
    say(("# " if request.dry_run else "") + headline)
    tool = find_tool(request, machine, _index(request, request.index_url or request.config_index_url))
    plan = InstallPlan((), (tool.install("-r", str(request.rocm_requirements)),), tool.environment)
    if request.dry_run:
        for line in plan.script():
            say(line)
    else:
        _execute(plan, machine, say)
    return InstallOutcome(None, plan)


def _execute(plan: InstallPlan, machine: Machine, say: Say) -> None:
    for planned in plan.files:
        planned.path.write_text(planned.text, encoding="utf-8")
    environment = {name: value.with_secret() for name, value in plan.environment.items()}
    for line in plan.exports():
        say("$ " + line)
    for command in plan.commands:
        say("$ " + shlex.join(command))
        returncode = machine.run_visible(command, environment)
        if returncode != 0:
            raise InstallFailed(shlex.join(command), returncode)


@contextmanager
def _work_dir(dry_run: bool) -> Iterator[Path]:
    """A temporary directory for the planned files; for a dry run, a path that is shown but not created."""
    if dry_run:
        yield Path(tempfile.gettempdir()) / "cuda-constraints-install"
        return
    with tempfile.TemporaryDirectory(prefix="cuda-constraints-") as directory:
        yield Path(directory)
