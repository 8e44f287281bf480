"""What each command does at the command line: read the configuration, call the command, print.

The commands other than `compile` are imported when they run: a compile, the command CI runs most, does
not pay for them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from ..commands.compile import compile_constraints
from ..commands.major_plan import read_input
from ..commands.options import (
    Flags,
    compile_request,
    environments,
    with_index_url,
)
from ..commands.routing import IndexChoice, routing_for
from ..errors import (
    ConstraintsOutOfDate,
    NewerReleasesAllowed,
    UsageError,
)
from ..errors.display import redact_url
from ..files.config import Config, load_config
from ..files.output_dir import note_if_interrupted
from ..files.sets import constraints_files, display_path, read_at_head, read_directory, read_paths
from ..model.targets import environment_grid
from .indexes import file_choice, flag_choice, open_index
from .output import safe_text
from .progress import LiveReporter, NetworkTicker
from .summary import network_line, summarize

if TYPE_CHECKING:
    from ..commands.check import CheckReport

PROG = "cuda-constraints"


# -- compile ------------------------------------------------------------------------------------------------


def run_compile(args: argparse.Namespace) -> int:
    config = project_config()
    for given in args.requirement_files:
        if "://" in given:
            raise UsageError(f"{redact_url(given)}: requirements files are paths; for an index, use --index-url")
    flags = Flags.from_args(vars(args))
    flags = replace(flags, requirements=(*flags.requirements, *(Path(given) for given in args.requirement_files)))
    request = compile_request(flags, config)
    progress = args.progress
    requirements_input = read_input(request)
    request = with_index_url(request, flags.index_url, requirements_input)
    with open_index(flags, config, *IndexChoice.of(request, requirements_input).urls, progress=progress) as index:
        stats = index.client.stats
        with NetworkTicker(progress, lambda: network_line(stats)):
            result = compile_constraints(
                request,
                requirements_input,
                index,
                progress,
                reporter_for=lambda target: LiveReporter(progress, f"CUDA {target.cuda_major} {target.environment}"),
            )
    progress.done()
    for line in summarize(result, request):
        print(line)
    progress(network_line(stats, result.seconds))
    if flags.stats_json:
        write_stats(flags.stats_json, {"seconds": round(result.seconds, 3), **stats.to_json()})
    for major, failure in sorted(result.failures.items()):  # --keep-going: the majors not written
        message = failure.message()
        print(f"error: {safe_text(message if message.startswith('CUDA ') else f'CUDA {major}: {message}')}", file=sys.stderr)
    if result.failures:
        failed = ", ".join(str(major) for major in sorted(result.failures))
        left = "their files were left as they were" if len(result.failures) > 1 else "its file was left as it was"
        print(f"error: CUDA {failed} failed; {left} (--keep-going wrote the others)", file=sys.stderr)
        return 4
    return 0


def write_stats(path: Path, figures: dict[str, object]) -> None:
    try:
        path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        raise UsageError(f"--stats-json {path}: cannot write ({error.strerror or error})") from None


# -- inspect ------------------------------------------------------------------------------------------------


def run_inspect(args: argparse.Namespace) -> int:
    from ..commands.inspect import inspect_release, render_text

    config = load_config()
    try:
        requirement = Requirement(args.spec)
    except InvalidRequirement:
        raise UsageError(f"{args.spec!r}: give NAME or NAME==VERSION") from None
    specifiers = list(requirement.specifier)
    if len(specifiers) > 1 or (specifiers and specifiers[0].operator != "=="):
        raise UsageError(f"{args.spec!r}: give NAME or NAME==VERSION")
    version = Version(specifiers[0].version) if specifiers else None
    flags = Flags.from_args(vars(args))
    pythons, platforms = environments(flags, config)
    targets = environment_grid(pythons, platforms)
    choice = flag_choice(flags, config.default_index_url)
    with open_index(flags, config, *choice.urls) as index:
        source = index.routed(routing_for(config, choice, 0))
        report = inspect_release(source, canonicalize_name(requirement.name), version, targets, config.family_table())
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(render_text(report))
    return 0


# -- check --------------------------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    from ..commands.check import check_constraints

    if args.strict and not args.online:
        raise UsageError("--strict applies to --online; give both")
    config = load_config()
    directory = args.output_dir or config.resolve_path(config.output_dir)
    if not config.configured and not constraints_files(directory):
        raise UsageError(f"no project here to check: {config.looked_for()}, and {display_path(directory)}/ holds no cuNN.txt "
                         f"file. check looked for the defaults ({config.defaults()}); run it in the project's directory, "
                         "or give -o DIR")
    config = project_config()
    report = check_constraints(config, args.output_dir)
    for checked in report.files:
        if not checked.findings and checked.document is not None:
            pins = len({pin.name for pin in checked.document.pins})
            print(f"{checked.shown}: up to date (CUDA {checked.major}, {pins} packages, {checked.document.targets})")
            if checked.lock is not None:
                print(f"{checked.lock}: up to date (the same pins, with the files an installer may take)")
    if report.findings:
        raise ConstraintsOutOfDate(report.findings)
    if not report.files:
        print(f"{report.directory}: no constraints files to check")
    if args.online:
        return _check_online(args, report, config)
    return 0


def _check_online(args: argparse.Namespace, report: CheckReport, config: Config) -> int:
    """What `compile --upgrade` would change, per file (a dry run: nothing is written)."""
    from ..commands.check_online import upgrade_findings, would_upgrade

    checked_files = [c for c in report.files if c.request is not None and c.requirements_input is not None]
    flags = Flags.from_args(vars(args))
    index_flags = compile_request(flags.only("index"), config)  # the indexes given to check replace the files' own
    with open_index(flags, config, *(url for c in checked_files for url in file_choice(flags, c).urls)) as index:
        upgrades = would_upgrade(checked_files, index, index_flags)
    if not upgrades:
        print("no pin would change with --upgrade")
        return 0
    for upgrade in upgrades:
        print(f"{upgrade.shown}: `{upgrade.command} --upgrade` would change {len(upgrade.changes)} pin(s):")
        for change in upgrade.changes:
            print(f"  {change.describe()}")
    if args.strict:
        raise NewerReleasesAllowed(upgrade_findings(upgrades))
    return 0


# -- diff ---------------------------------------------------------------------------------------------------


def run_diff(args: argparse.Namespace) -> int:
    from ..commands.diff import diff_sets, render_markdown
    from ..commands.diff import render_text as render_diff_text

    config = load_config()
    if args.paths and len(args.paths) != 2:
        raise UsageError("give OLD and NEW (two directories or two files), or nothing to compare git HEAD with the working tree")
    if args.paths and args.output_dir:
        raise UsageError("-o names the directory compared with git HEAD; with OLD and NEW, leave it out")
    if args.paths:
        old, new = read_paths(*args.paths)
    else:
        directory = args.output_dir or config.resolve_path(config.output_dir)
        note_if_interrupted(directory)
        old, new = read_at_head(directory), read_directory(directory)
    diff = diff_sets(old, new, config.family_table())
    print(render_markdown(diff) if args.format == "markdown" else render_diff_text(diff), end="")
    return 0


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def project_config() -> Config:
    """`[tool.cuda-constraints]` of the project here; a note when there is none (the defaults apply)."""
    config = load_config()
    note = config.missing_note()
    if note is not None:
        warn(note)
    return config
