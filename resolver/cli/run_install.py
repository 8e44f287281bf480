"""`detect`, `install` and `verify` at the command line; imported only when one of them runs (reading ELF
files and planning installers costs `compile` nothing)."""

from __future__ import annotations

import argparse
import json
import sys

from ..commands.install import (
    InstallRequest,
    excludes_for,
    install_with_constraints,
    verify_installed,
)
from ..commands.libraries import LibraryRules
from ..commands.verify import Verification, render_table
from ..files.config import Config, load_config
from ..machine.detect import probe_machine, require_installable, system_machine
from ..machine.system import Machine, find_interpreter
from ..model.distributions import DEFAULT_INDEX_URL
from ..model.targets import parse_major
from .indexes import credential_store
from .output import safe_text
from .run import project_config, warn


def run_detect(args: argparse.Namespace) -> int:
    config = load_config()
    machine = system_machine()
    detection = probe_machine(machine, find_interpreter(machine, args.python or sys.executable))
    if args.json:
        print(json.dumps(detection.to_json(), indent=2))
    for warning in detection.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if detection.kind == "rocm" and not args.json:
        print("rocm")
    require_installable(detection, rocm_configured=config.rocm_requirements is not None)
    if detection.kind == "cuda" and not args.json:
        print(detection.major)
    return 0


def run_install(args: argparse.Namespace) -> int:
    config = project_config()
    machine = system_machine()
    request = install_request(args, config, machine)

    if args.print_excludes:
        for name in excludes_for(request, machine, warn):
            print(name)
        return 0
    outcome = install_with_constraints(request, machine, lambda line: print(line, flush=True), warn)
    if outcome.verification is None:
        return 0
    return report_verification(outcome.verification, verbose=args.verbose)


def run_verify(args: argparse.Namespace) -> int:
    config = project_config()
    machine = system_machine()
    verification = verify_installed(install_request(args, config, machine), machine, warn)
    return report_verification(verification, verbose=args.verbose)


def report_verification(verification: Verification, verbose: bool) -> int:
    """The warnings and problems (on stderr), then one count line; with -v, the whole table (every pin,
    every canary) and the files each library line is about."""
    if verbose:
        for line in render_table(verification):
            print(line)
    sys.stdout.flush()
    for warning in verification.warnings(verbose):
        print(f"warning: {safe_text(warning)}", file=sys.stderr, flush=True)
    for problem in verification.problems(verbose):
        print(f"error: {safe_text(problem)}", file=sys.stderr, flush=True)
    print(verification.summary())
    return 0 if verification.ok else 1


def install_request(args: argparse.Namespace, config: Config, machine: Machine) -> InstallRequest:
    """What `install` and `verify` were asked, with the configuration."""
    requirement_files = tuple(args.requirements) if args.requirements else tuple(config.resolve_path(p) for p in config.requirements)
    constraint_files = tuple(dict.fromkeys((*(config.resolve_path(p) for p in config.constraints), *(args.constraint or ()))))
    return InstallRequest(
        requirement_files=requirement_files,
        root=config.root,
        families=config.family_table(),
        digest_text=config.digest_text,
        constraints_dir=args.constraints_dir or config.resolve_path(config.output_dir),
        python=find_interpreter(machine, args.python or sys.executable),
        cuda=_install_major(args.cuda),
        installer=args.installer,
        system=bool(args.system),
        index_url=args.index_url,
        config_index_url=None if config.default_index_url == DEFAULT_INDEX_URL else config.default_index_url,
        credentials=credential_store(config, args.index_url),
        canaries=tuple(args.canary) if args.canary else config.canaries,
        libraries=LibraryRules(bool(args.strict) or config.verify_strict, (*config.ignore_libraries, *(args.ignore_library or ()))),
        rocm_requirements=config.resolve_path(config.rocm_requirements) if config.rocm_requirements else None,
        dry_run=bool(args.dry_run),
        fix=bool(args.fix),
        allow_replace=bool(args.allow_replace),
        input_files=lambda major: config.input_files(major, requirement_files, constraint_files, bool(args.requirements)),
        config=config,
    )


def _install_major(text: str) -> int | None:
    return None if text.strip() == "auto" else parse_major(text, "--cuda")
