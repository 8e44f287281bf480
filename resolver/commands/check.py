"""`check`: do the constraints files still match their inputs, their configuration and the family model?

Offline: every answer comes from the files, the requirements they were compiled from and
`[tool.cuda-constraints]`. A file's header command is read with `compile`'s own flags (`settings`), so a
file is compared with exactly what running that command would produce: the input digest, the inputs, the
targets, the options line, the indexes block (rebuilt from the configuration, never taken from the file),
the majors, the swaps; then every pin against the top-level requirements
(after swaps) and `-c` constraints of every target, and every pin against the family model. Each finding
names the file and the command that fixes it.

The online part (`check --online`) is in check_online.py: for the top-level requirements only, the
releases newer than the pins that the requirements, the family model and the selection options allow
(project pages only; no resolution, so a newer release may still turn out unusable because of its
dependencies).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from ..errors import Finding, UsageError
from ..files.changes import input_changes, option_changes, recorded_parts
from ..files.config import Config
from ..files.constraints import ConstraintsDocument, SwapLine
from ..files.output_dir import note_if_interrupted
from ..files.pylock import disagreements
from ..files.requirements import (
    RequirementsInput,
    SourcedRequirement,
    digest_of,
    digest_parts,
    load_requirements,
)
from ..files.sets import NamedDocument, constraints_files, display_path, lock_files, lock_path, read_file, read_lock
from ..model.families import FamilyTable
from ..model.targets import Environment, describe_environments, environment_grid
from ..resolve.swaps import MajorInput, settle_swaps, swap_for_major
from .options import (
    CompileRequest,
    Flags,
    compile_request,
    describe_options,
    input_files,
    request_from_command,
    with_index_url,
)
from .routing import IndexChoice, index_block_problems, routing_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckedFile:
    """One constraints file (or a configured major's missing file) and what is wrong with it."""

    major: int
    shown: str
    findings: tuple[Finding, ...]
    document: ConstraintsDocument | None = None
    # What regenerating the file would use; None when the file is missing or its header cannot be read.
    request: CompileRequest | None = None
    requirements_input: RequirementsInput | None = None
    major_input: MajorInput | None = None
    lock: str | None = None  # the lock file beside it, as shown, when there is one


@dataclass(frozen=True)
class CheckReport:
    directory: str
    files: tuple[CheckedFile, ...]

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for checked in self.files for f in checked.findings)


def check_constraints(config: Config, output_dir: Path | None = None) -> CheckReport:
    """Check every `cuNN.txt` of the output directory, and that every configured major has one.

    Raises ConstraintsFileError (a damaged file) and RequirementsFileError (a damaged input).
    """
    directory = output_dir or config.resolve_path(config.output_dir)
    note_if_interrupted(directory)
    fix_all = regenerate_command(config, directory)
    present = constraints_files(directory)
    checked = [_check_file(path, major, config, fix_all) for major, path in present.items()]
    for major, lock in lock_files(directory).items():
        if major not in present:
            shown = display_path(lock)
            problem = f"has no cu{major}.txt beside it: a lock file is written with its constraints file"
            checked.append(CheckedFile(major, shown, (Finding(shown, problem, f"delete {shown}, or {fix_all}"),)))
    configured = config.cuda if isinstance(config.cuda, tuple) else ()
    for major in configured:
        if major not in present:
            shown = display_path(directory / f"cu{major}.txt")
            why = "configured in [tool.cuda-constraints] cuda" if config.configured else "a default major (no configuration found)"
            problem = f"is missing: CUDA {major} is {why}"
            checked.append(CheckedFile(major, shown, (Finding(shown, problem, fix_all),)))
    return CheckReport(display_path(directory), tuple(sorted(checked, key=lambda c: c.major)))


def regenerate_command(config: Config, directory: Path) -> str:
    """`cuda-constraints compile`, with `-o` when the directory is not the configured one."""
    same = directory.resolve() == config.resolve_path(config.output_dir).resolve()
    return compile_request(Flags() if same else Flags(output_dir=directory), config).command


def _check_file(path: Path, major: int, config: Config, fix_all: str) -> CheckedFile:
    named = read_file(path)
    shown, document = named.shown, named.document
    try:
        request, requirements_input = _inputs_of(document, config)
    except _Unreadable as unreadable:
        return CheckedFile(major, shown, (Finding(shown, unreadable.problem, fix_all),), document)
    families = config.family_table()
    major_input = swap_for_major(requirements_input, families, document.cuda_major)
    environments = environment_grid(request.python_versions, request.platforms)
    problems = [
        *(["was edited by hand: its content no longer matches the sha256 in its header"] if document.hand_edited else []),
        *header_problems(document, major, request, requirements_input, environments),
        *index_block_problems(document, routing_for(request.config, IndexChoice.of(request, requirements_input), document.cuda_major)),
        *requirement_problems(document, major_input, environments),
        *variant_problems(document, families),
    ]
    if not problems:  # a changed input explains changed swaps; otherwise the family model changed
        problems = list(swap_problems(document, major_input))
    findings = [Finding(shown, problem, document.command) for problem in problems]
    findings += lock_findings(path, named, request, requirements_input, environments)
    for line in document.torch_builds:
        if line.will_not_load:
            logger.warning("%s: %s: %s (allow-torch-build-mismatch)", shown, line.pin, line.builds)
    if isinstance(request.majors, tuple) and document.cuda_major not in request.majors:
        configured = ", ".join(map(str, request.majors))
        problem = f"CUDA {document.cuda_major} is not among the majors its command resolves ({configured})"
        findings.append(Finding(shown, problem, f"delete {shown}, or add {document.cuda_major} to `cuda` in [tool.cuda-constraints]"))
    lock = lock_path(path)
    lock_shown = display_path(lock) if lock.is_file() else None
    return CheckedFile(major, shown, tuple(findings), document, request, requirements_input, major_input, lock_shown)


def lock_findings(
    path: Path, named: NamedDocument, request: CompileRequest, requirements_input: RequirementsInput, environments: tuple[Environment, ...]
) -> list[Finding]:
    """What is wrong with the lock file beside a constraints file: missing where its command writes one, there
    where it writes none, edited by hand, stale, or not saying what the constraints file says."""
    lock = lock_path(path)
    shown, document = display_path(lock), named.document
    try:
        read = read_lock(lock)
    except FileNotFoundError:
        if request.pylock:
            return [Finding(shown, f"is missing: the command of {named.shown} writes it (pylock)", document.command)]
        return []
    if not request.pylock:
        problem = f"is not written by the command of {named.shown} (pylock is not set), so nothing keeps it current"
        return [Finding(shown, problem, f"delete {shown}, or set `pylock = true` in [tool.cuda-constraints] and compile")]
    problems = [
        *(["was edited by hand: its content no longer matches the content-sha256 it records"] if read.document.hand_edited else []),
        *header_problems(read.document.header, document.cuda_major, request, requirements_input, environments),
        *disagreements(read.document, document, named.shown),
    ]
    return [Finding(shown, problem, document.command) for problem in dict.fromkeys(problems)]


class _Unreadable(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _inputs_of(document: ConstraintsDocument, config: Config) -> tuple[CompileRequest, RequirementsInput]:
    """What running the header's command would use today: the request and the requirements it reads."""
    try:
        request, flags = request_from_command(document.command, config)
    except UsageError as error:
        raise _Unreadable(f"its header command {document.command!r} cannot be read ({error.problem})") from None
    requirements, constraints = input_files(request, document.cuda_major)
    absent = [p for p in (*requirements, *constraints) if not p.is_file()]
    if absent:
        raise _Unreadable(f"its command reads {display_path(absent[0])}, which does not exist")
    requirements_input = load_requirements(list(requirements), root=config.root, constraints=constraints)
    return with_index_url(request, flags.index_url, requirements_input), requirements_input


def header_problems(
    document: ConstraintsDocument,
    major: int,
    request: CompileRequest,
    requirements_input: RequirementsInput,
    environments: tuple[Environment, ...],
) -> Iterator[str]:
    """Where the header no longer matches what its command would write today."""
    if document.cuda_major != major:
        yield f"its header is for CUDA {document.cuda_major}, but the file name says CUDA {major}"
    if document.inputs != requirements_input.top_level_files:
        yield f"its inputs were {', '.join(document.inputs)}; its command now reads {', '.join(requirements_input.top_level_files)}"
    else:
        configured = request.config.digest_text(document.cuda_major)
        if document.digest != digest_of(requirements_input, configured):
            yield _inputs_changed(document, digest_parts(requirements_input, configured))
    targets = describe_environments(environments)
    if document.targets != targets:
        yield f"its targets are {document.targets!r}; the configuration now gives {targets!r}"
    options = describe_options(request)
    if document.options != options:
        yield f"its options changed: {'; '.join(option_changes(document.options, options))}"
    if document.outdated_header:
        yield "its header was written by an earlier release of cuda-constraints (the `content:` line's old wording)"


def _inputs_changed(document: ConstraintsDocument, now: tuple[tuple[str, str], ...]) -> str:
    """Which input changed since the file was generated: each file by name, or the configuration."""
    before = recorded_parts(document)
    changed = input_changes(before, now) if before is not None else []
    if changed:
        return f"the inputs changed since it was generated: {'; '.join(changed)}"
    read = ", ".join(name for name, _ in now)
    return f"the inputs changed since it was generated (one of {read}; its header does not say which)"


def requirement_problems(document: ConstraintsDocument, major_input: MajorInput, environments: tuple[Environment, ...]) -> Iterator[str]:
    """Pins that violate a top-level requirement (after swaps) or a `-c` constraint, per target."""
    failing: dict[str, list[Environment]] = defaultdict(list)
    for environment in environments:
        pins = document.pins_for(environment.markers)
        for problem in _violations(pins, major_input.requirements, environment, required=True):
            failing[problem].append(environment)
        for problem in _violations(pins, major_input.constraints, environment, required=False):
            failing[problem].append(environment)
    for problem, where in failing.items():
        yield f"{problem} {_on(where, environments)}"


def _violations(
    pins: Mapping[NormalizedName, Version], requirements: Iterable[SourcedRequirement], environment: Environment, required: bool
) -> Iterator[str]:
    for sourced in requirements:
        requirement = sourced.requirement
        if not environment.evaluate(requirement.marker):
            continue
        name = canonicalize_name(requirement.name)
        version = pins.get(name)
        if version is None:
            if required:
                yield f"{requirement} ({sourced.origin}) is required but {name} is not pinned"
        elif not requirement.specifier.contains(version, prereleases=True):
            kind = "requirement" if required else "constraint"
            yield f"{name}=={version} violates the {kind} {requirement} ({sourced.origin})"


def variant_problems(document: ConstraintsDocument, families: FamilyTable) -> Iterator[str]:
    """Pins of another CUDA major (by name, declared default, or the pinned version's major)."""
    for pin in document.pins:
        if not families.fits(pin.name, pin.version, document.cuda_major):
            major = families.major_of(pin.name, pin.version)
            what = f"a CUDA {major} package" if major is not None else "a release that names no CUDA major"
            yield f"{pin.name}=={pin.version} is {what}, in the CUDA {document.cuda_major} file"


def swap_problems(document: ConstraintsDocument, major_input: MajorInput) -> Iterator[str]:
    """Swaps the family model would record today but the file does not (or the reverse)."""
    # Compared without line numbers: a comment added above a requirement moves it, and changes nothing.
    recorded = {_unnumbered(swap): swap for swap in document.swapped}
    expected = {}
    for swap in major_input.swaps:
        plain, settled = _unnumbered(swap), _unnumbered(_without_selector_extras(swap))
        # A swapped selector extra the pinned release does not declare is recorded without it (settle_swaps).
        expected[settled if plain not in recorded and settled in recorded else plain] = swap
    for key in sorted(expected.keys() - recorded.keys()):
        swap = expected[key]
        yield f"the requirement {swap.original} ({swap.origin}) is now swapped for {key.replacement}, which the file does not record"
    for key in sorted(recorded.keys() - expected.keys()):
        yield f"the file records the swap {key.original} -> {key.replacement}, which no longer applies"


def _without_selector_extras(swap: SwapLine) -> SwapLine:
    extras = {(canonicalize_name(swap.replacement_name), canonicalize_name(e)) for e in Requirement(swap.replacement).extras}
    return settle_swaps([swap], extras)[0]


def _unnumbered(swap: SwapLine) -> SwapLine:
    return SwapLine(swap.original, swap.replacement, swap.origin.rsplit(":", 1)[0])


def _on(where: list[Environment], environments: tuple[Environment, ...]) -> str:
    if set(where) == set(environments):
        return "on every target" if len(environments) > 1 else f"on {environments[0]}"
    return "on " + ", ".join(str(e) for e in sorted(where))
