"""`install`: install the requirements with the constraints file of one CUDA major, never asking the
index for a variant of another major, then verify the result in the target interpreter.

The file must be current: its input digest equals the requirements' (else `StaleConstraints`). What to
run is planned purely in install_plan.py; this is the edge: it detects the major, reads and checks the
file, writes the planned files to a temporary directory, runs the commands and verifies.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import (
    ConstraintsFileError,
    ConstraintsMissing,
    IndexesDisagree,
    InstallFailed,
    LockDisagrees,
    StaleConstraints,
    UsageError,
    WouldReplace,
)
from ..files.config import Config
from ..files.constraints import ConstraintsDocument, PinLine
from ..files.output_dir import note_if_interrupted
from ..files.pylock import LockDocument, disagreements
from ..files.requirements import RequirementsInput, digest_of, load_requirements
from ..files.sets import constraints_files, display_path, lock_path, read_file, read_lock
from ..index.auth import CredentialStore
from ..machine.detect import Detection, probe_machine, require_installable
from ..machine.interpreter import environment_report
from ..machine.system import Machine
from ..model.distributions import DEFAULT_INDEX_URL
from ..model.families import FamilyTable
from ..model.targets import parse_targets
from .environment import remember_install, verify_environment
from .install_plan import (
    PIP_READS_PYLOCK,
    UV_READS_PYLOCK,
    Installer,
    InstallPlan,
    InstallSources,
    Prepared,
    Tool,
    excluded_names,
    plan_install,
    reinstall_pins,
    swapped_requirements,
)
from .libraries import WARN_ONLY, LibraryRules
from .routing import IndexChoice, index_block_problems, routing_for
from .verify import Verification, applicable_pins, find_leftovers, satisfies

Say = Callable[[str], None]


@dataclass(frozen=True)
class InstallRequest:
    requirement_files: tuple[Path, ...]
    root: Path  # the project root: requirement paths in the digest are relative to it, as compile writes them
    families: FamilyTable
    digest_text: Callable[[int], str]  # the configuration a major's input digest covers
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
    libraries: LibraryRules = WARN_ONLY  # how verification tells libraries nothing here provides
    rocm_requirements: Path | None = None
    dry_run: bool = False
    fix: bool = False
    allow_replace: bool = False
    # The requirements and constraints files of a major (a major's table may name its own).
    input_files: Callable[[int], tuple[tuple[Path, ...], tuple[Path, ...]]] | None = None
    # The configuration the indexes come from (a file's `indexes` block must agree with it); None: not compared.
    config: Config | None = None


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


def check_fresh(document: ConstraintsDocument, path: Path, requirements_input: RequirementsInput, digest_text: str) -> None:
    current = digest_of(requirements_input, digest_text)
    if document.digest != current:
        raise StaleConstraints(path, document.digest, current, requirements_input.top_level_files)


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


def prepare(
    request: InstallRequest, major: int, detection: Detection | None = None, warn: Say | None = None, installing: bool = False
) -> Prepared:
    """Read the major's constraints file and check it against the requirements (a stale file is refused,
    or, given `warn`, warned about); `installing`: its indexes block against the configuration too, and the
    lock file beside it, when there is one, against the file."""
    path = request.constraints_dir / f"cu{major}.txt"
    note_if_interrupted(request.constraints_dir)
    shown = _shown(path)
    document = read_constraints(path, major)
    requirements, constraints = request.input_files(major) if request.input_files else (request.requirement_files, ())
    requirements_input = load_requirements(list(requirements), root=request.root, constraints=constraints)
    try:
        check_fresh(document, shown, requirements_input, request.digest_text(major))
    except StaleConstraints as stale:
        if warn is None:
            raise
        warn(stale.message().splitlines()[0])
    if installing and request.config is not None:
        _refuse_other_indexes(request, request.config, document, shown, requirements_input)
    sources = _sources(request, document, requirements_input.index_url)
    lock = read_matching_lock(path, document) if installing else None
    return Prepared(major, path, document, swapped_requirements(requirements_input, document), sources, detection,
                    lock_path(path) if lock else None, lock)


def read_matching_lock(path: Path, document: ConstraintsDocument) -> LockDocument | None:
    """The lock file beside a constraints file, when there is one; LockDisagrees when it was edited by hand or
    does not say what the constraints file says (a stale lock is never installed)."""
    try:
        named = read_lock(lock_path(path))
    except FileNotFoundError:
        return None
    problems = disagreements(named.document, document, str(_shown(path)))
    if named.document.hand_edited:
        problems.insert(0, "was edited by hand: its content no longer matches the content-sha256 it records")
    if problems:
        raise LockDisagrees(Path(named.shown), problems)
    return named.document


def _refuse_other_indexes(
    request: InstallRequest, config: Config, document: ConstraintsDocument, shown: Path, requirements_input: RequirementsInput
) -> None:
    """The file's `indexes` block must be what the configuration, the requirements files and the environment
    give (with install's --index-url in place of the default index): a block edited by hand names nothing."""
    choice = IndexChoice(
        requirements_input.index_url or config.default_index_url,
        requirements_input.extra_index_urls,
        requirements_input.find_links,
        requirements_input.no_index,
    )
    problems = index_block_problems(document, routing_for(config, choice, document.cuda_major), default_given=request.index_url is not None)
    if problems:
        raise IndexesDisagree(shown, problems)


def _sources(request: InstallRequest, document: ConstraintsDocument | None, file_index_url: str | None = None) -> InstallSources:
    """The indexes the file records, each with the credentials known for it (from a URL given anywhere,
    `~/.netrc` or keyring); `--index-url` replaces the default one. A file that records none was compiled
    from one index: `--index-url`, else the requirements' or the configuration's (the installer's own
    default when none is given)."""
    store = request.credentials or CredentialStore(read_netrc=False, use_keyring=False)
    if document is None or not document.indexes:
        url = request.index_url or file_index_url or request.config_index_url
        return InstallSources(store.index(url) if url else None)
    lines = document.indexes
    recorded = next((line.url for line in lines if line.kind == "default"), None)
    default = request.index_url or (recorded if recorded != DEFAULT_INDEX_URL else None)
    return InstallSources(
        default=store.index(default) if default else None,
        extras=tuple(store.index(line.url) for line in lines if line.kind in ("extra", "explicit")),
        find_links=tuple(_place(line.url, request.root) for line in lines if line.kind == "find-links"),
        best_match=document.index_strategy == "unsafe-best-match" or any(line.kind == "explicit" for line in lines),
        no_index=all(line.kind == "find-links" for line in lines) and not request.index_url,
    )


def _place(shown: str, root: Path) -> str:
    """A find-links location as the header shows it: a URL, or a directory relative to the project."""
    return shown if "://" in shown else str(root / shown)


def _shown(path: Path) -> Path:
    return Path(display_path(path))


def find_tool(request: InstallRequest, machine: Machine, sources: InstallSources) -> Tool:
    """uv from PATH (or next to this interpreter, where the `uv` extra puts it); pip from this interpreter
    (`--python` points it at the target), else the target's own pip."""
    uv = machine.which("uv") or _sibling("uv")
    if request.installer == "uv" and uv is None:
        raise UsageError("--installer uv: uv is not on PATH; install it (pip install uv) or pass --installer pip")
    if request.installer in ("uv", "auto") and uv is not None:
        version = installer_version(machine, (uv,), "uv")
        reads_pylock = version is not None and version >= UV_READS_PYLOCK
        return Tool("uv", (uv, "pip"), request.python, request.system, sources, reads_pylock=reads_pylock)
    if importlib.util.find_spec("pip") is not None:
        same = os.path.abspath(request.python) == os.path.abspath(sys.executable)
        prefix = (sys.executable, "-m", "pip", *(() if same else ("--python", request.python)))
    else:
        prefix = (request.python, "-m", "pip")
    version = installer_version(machine, (prefix[0], "-m", "pip"), "pip")
    return Tool("pip", prefix, request.python, request.system, sources, reads_pylock=version is not None and version >= PIP_READS_PYLOCK)


def installer_version(machine: Machine, program: tuple[str, ...], name: str) -> Version | None:
    """The version an installer says it is (`pip 26.3 from …`, `uv 0.13.9 (…)`); None when it does not say."""
    answer = machine.run([*program, "--version"])
    match = re.match(rf"{name} (\S+)", answer.stdout) if answer is not None and answer.returncode == 0 else None
    try:
        return Version(match.group(1)) if match else None
    except InvalidVersion:
        return None


def _sibling(program: str) -> str | None:
    candidate = Path(sys.executable).parent / program
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


def install_with_constraints(request: InstallRequest, machine: Machine, say: Say, warn: Say = lambda line: None) -> InstallOutcome:
    """Install (or, for a dry run, print how), then verify; `say` gets the progress lines, `warn` warnings."""
    major, detection = choose_major(request, machine, warn)
    if major is None:
        assert detection is not None
        return _install_rocm(request, machine, say, detection)
    prepared = prepare(request, major, detection, installing=True)
    tool = find_tool(request, machine, prepared.sources)
    if prepared.lock_path is not None and not tool.reads_pylock:
        warn(f"{_shown(prepared.lock_path)} is not used: this {tool.kind} cannot install a lock file (pip 26.3 or later, "
             f"uv 0.9 or later can); installing with {_shown(prepared.path)}, the same pins")
    say(("# " if request.dry_run else "") + _headline(prepared, tool))
    removals: tuple[str, ...] = ()
    reinstall: tuple[PinLine, ...] = ()
    before = environment_report(machine, request.python)
    refuse_other_targets(prepared, before.markers, request.python)
    if not request.allow_replace:
        refuse_replacing(prepared, before.installed, before.markers)
    if request.fix:
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
    remember_install(machine, request.python, after, prepared.major)
    verification = verify_environment(
        machine, request.python, after, prepared.document, prepared.requirements, request.families, request.canaries,
        request.libraries,
    )
    return InstallOutcome(prepared, plan, verification)


def refuse_other_targets(prepared: Prepared, markers: Mapping[str, str], python: str) -> None:
    """UsageError (exit 2) when the interpreter is not among the file's targets: its pins were resolved for
    other Pythons or machines, and an installer would fail on them, or install what was never checked."""
    pythons, machines = parse_targets(prepared.document.targets)
    version, machine = markers.get("python_version", ""), markers.get("platform_machine", "")
    shown = _shown(prepared.path)
    if pythons and version not in pythons:
        raise UsageError(
            f"{python} is Python {version}, but {shown} was compiled for {prepared.document.targets}. Add \"{version}\" "
            "to python-versions in [tool.cuda-constraints] (or pass --python-version) and compile, or install into "
            f"an interpreter of {', '.join(sorted(pythons))}"
        )
    if machines and machine not in machines:
        raise UsageError(
            f"{python} runs on {machine}, but {shown} was compiled for {prepared.document.targets}. Add the "
            f"platform to platforms in [tool.cuda-constraints] and compile"
        )


def excludes_for(request: InstallRequest, machine: Machine, warn: Say = lambda line: None) -> tuple[str, ...]:
    """`--print-excludes`: the names uv's `--excludes` needs for the major, the file checked as for an install."""
    major, detection = choose_major(request, machine, warn)
    if major is None:
        return ()
    prepared = prepare(request, major, detection)
    refuse_other_targets(prepared, environment_report(machine, request.python).markers, request.python)
    return excluded_names(prepared.document)


def verify_installed(request: InstallRequest, machine: Machine, warn: Say = lambda line: None) -> Verification:
    """`verify`: the checks `install` runs afterwards, of the environment as it is. Where there are no
    constraints files at all (an image someone else built), the pins are not checked, and a canary is
    imported where it is installed: nothing says what the environment should hold."""
    major, detection = choose_major(request, machine, warn)
    if major is None:
        raise UsageError("verify checks a CUDA environment, and this one is ROCm; pass --cuda N to check it against a CUDA major")
    if not constraints_files(request.constraints_dir):
        warn(f"{display_path(request.constraints_dir)}/ holds no constraints files: the pins are not checked, the shared "
             "libraries and the canaries are (each canary where it is installed)")
        canaries = tuple(module if module.endswith("?") else f"{module}?" for module in request.canaries)
        report = environment_report(machine, request.python)
        return verify_environment(machine, request.python, report, major, (), request.families, canaries, request.libraries)
    prepared = prepare(request, major, detection, warn)
    report = environment_report(machine, request.python)
    refuse_other_targets(prepared, report.markers, request.python)
    return verify_environment(
        machine, request.python, report, prepared.document, prepared.requirements, request.families, request.canaries,
        request.libraries,
    )


def refuse_replacing(prepared: Prepared, installed: Mapping[str, str], markers: Mapping[str, str]) -> None:
    """WouldReplace when the file pins, to another release, a package the environment holds and the
    requirements do not name (an image's own torch)."""
    named = {canonicalize_name(requirement.name) for requirement in prepared.requirements}
    replaced = [
        (pin.name, installed[pin.name], str(pin.version))
        for pin in applicable_pins(prepared.document, markers)
        if pin.name in installed and pin.name not in named and not satisfies(installed[pin.name], pin.version)
    ]
    if replaced:
        raise WouldReplace(str(_shown(prepared.path)), prepared.major, replaced)


def _headline(prepared: Prepared, tool: Tool) -> str:
    source = f"detected by {prepared.detection.describe()}" if prepared.detection else "--cuda"
    lock = f"; lock {_shown(prepared.lock_path)}" if prepared.lock_path is not None and tool.reads_pylock else ""
    return f"CUDA {prepared.major} ({source}); constraints {_shown(prepared.path)}{lock}"


def _install_rocm(request: InstallRequest, machine: Machine, say: Say, detection: Detection) -> InstallOutcome:
    """ROCm with `rocm-requirements` configured: that file, as it is; CUDA verification does not apply."""
    assert request.rocm_requirements is not None
    headline = f"ROCm (detected by {detection.describe()}); installing {request.rocm_requirements} without CUDA constraints"
    say(("# " if request.dry_run else "") + headline)
    tool = find_tool(request, machine, _sources(request, None))
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
