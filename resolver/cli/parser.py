"""The command line's parser: every command and its flags (the shared ones from the option table)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from .. import __version__
from ..commands.options import (
    add_compile_flags,
    add_flags,
    with_project_value,
)
from .output import safe_text
from .run import (
    run_check,
    run_compile,
    run_diff,
    run_inspect,
)

PROG = "cuda-constraints"
Run = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"error: {safe_text(message)}", file=sys.stderr)
        raise SystemExit(2)


def _installing(name: str) -> Run:
    """A command of `run_install.py`, imported when it runs: the installers and the ELF reader it needs cost
    every other command 50 ms of imports."""

    def run(args: argparse.Namespace) -> int:
        from . import run_install

        code: int = getattr(run_install, name)(args)
        return code

    return run


def build_parser(project: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """Every command; `project`: the values the project's `[tool.cuda-constraints]` sets, by key, shown in
    each flag's help beside the built-in default (read only when help is asked for)."""

    def shown(text: str, key: str) -> str:
        return with_project_value(text, key, project)

    parser = _Parser(prog=PROG, description="Pinned, CUDA-consistent constraints files, one per CUDA major.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, summary: str, run: Run, on_interrupt: str = "") -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, help=summary, description=summary)
        sub.add_argument("-v", "--verbose", action="store_true", help="explain: metadata sources, retries, releases passed over")
        sub.set_defaults(run=run, on_interrupt=on_interrupt, parser=sub)
        return sub

    compile_ = command("compile", "resolve every CUDA major and write constraints/cuNN.txt", run_compile, "nothing was written")
    add_compile_flags(compile_, project)
    compile_.add_argument("requirement_files", nargs="*", metavar="REQUIREMENTS",
                          help="requirements files, as with -r (as uv and pip-compile take them)")

    inspect = command("inspect", "show what the resolver sees of one release", run_inspect)
    inspect.add_argument("spec", metavar="NAME[==VERSION]")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    add_flags(inspect, "target", "index", "network", project=project)

    check = command("check", "fail when the constraints files no longer match their inputs", run_check)
    check.add_argument("-o", "--output-dir", type=Path, metavar="DIR",
                       help=shown("the directory to check (default: constraints)", "output-dir"))
    check.add_argument("--online", action="store_true", help="also list newer releases the requirements allow")
    check.add_argument("--strict", action="store_true", help="with --online: fail (exit 1) when there are newer releases")
    add_flags(check, "index", "network", project=project)

    diff = command("diff", "what changed between two constraint sets (default: git HEAD vs working tree)", run_diff)
    diff.add_argument("paths", nargs="*", type=Path, metavar="OLD NEW", help="two directories or two files")
    diff.add_argument("--format", choices=("text", "markdown"), default="text", help="markdown: a PR body (default: text)")
    diff.add_argument("-o", "--output-dir", type=Path, metavar="DIR",
                      help=shown("the directory compared with HEAD (default: constraints)", "output-dir"))

    detect = command("detect", "print the CUDA major of this machine", _installing("run_detect"))
    detect.add_argument("--python", metavar="PATH", help="the interpreter whose torch is asked (default: this one)")
    detect.add_argument("--json", action="store_true", help="every probe, its answer, and which one decided")

    install = command(
        "install", "install the requirements with the constraints file of this machine's CUDA major", _installing("run_install"),
        "the environment may be partly installed; run the same command again",
    )
    add_install_flags(install, project)

    verify = command("verify", "check an installed environment: pins, no other major, shared libraries, canaries",
                     _installing("run_verify"))
    verify.add_argument("--cuda", default="auto", metavar="N|auto", help="the CUDA major to check against (default: auto, as `detect`)")
    add_flags(verify, "input", project=project)
    verify.add_argument("--constraints-dir", type=Path, metavar="DIR",
                        help=shown("where cuNN.txt files are (default: output-dir, constraints)", "output-dir"))
    verify.add_argument("--python", metavar="PATH", help="the interpreter whose environment is checked (default: this one)")
    verify.add_argument("--canary", action="append", metavar="MODULE",
                        help=shown("a module that must import; repeatable (default: from config, nixl)", "canaries"))
    add_flags(verify, "verify", project=project)
    # `verify` reads the environment as it is: none of install's installer settings apply.
    verify.set_defaults(installer="auto", system=False, index_url=None, dry_run=False, fix=False, allow_replace=False)
    return parser


def add_install_flags(parser: argparse.ArgumentParser, project: Mapping[str, str] | None = None) -> None:
    parser.add_argument("--cuda", default="auto", metavar="N|auto", help="the CUDA major to install for (default: auto, as `detect`)")
    add_flags(parser, "input", project=project)
    parser.add_argument("--constraints-dir", type=Path, metavar="DIR",
                        help=with_project_value("where cuNN.txt files are (default: output-dir, constraints)", "output-dir", project))
    parser.add_argument("--installer", choices=("uv", "pip", "auto"), default="auto", help="auto: uv when it is on PATH, else pip")
    parser.add_argument("--python", metavar="PATH", help="the interpreter to install into (default: this one)")
    parser.add_argument("--system", action="store_true", help="uv: allow installing into a Python outside a virtual environment")
    parser.add_argument(
        "--index-url", metavar="URL",
        help="the index to install from (default: the requirements file's, the configured one, or the installer's own)",
    )
    add_flags(parser, "install", "verify", project=project)
    parser.add_argument("--dry-run", action="store_true", help="print the exact commands and stop")
    parser.add_argument("--fix", action="store_true", help="remove installed builds for another CUDA major; reinstall the matching ones")
    parser.add_argument("--print-excludes", action="store_true", help="print the names uv's --excludes needs for the major, and stop")


