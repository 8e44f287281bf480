"""The settings of a `compile` run: its flags, the request they make with `[tool.cuda-constraints]`, and
the command line a constraints file's header gives to regenerate it.

`compile` builds its request here from its own arguments; `check` reads the command in a file's header
with the same flag definitions, so a file is checked against exactly what regenerating it would do.
Paths in a header command are relative to the project root (where pyproject.toml is), as `compile`
writes them.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import UsageError
from ..errors.display import redact_url
from ..files.config import Config, parse_date
from ..files.requirements import RequirementsInput, relative_to_root
from ..index.cache import default_cache_dir
from ..model.targets import Platform, PythonVersion
from ..resolve.selection import SelectionOptions
from .compile import CompileRequest

PROG = "cuda-constraints"
COMPILE = f"{PROG} compile"


# -- flag definitions ---------------------------------------------------------------------------------------


def add_input_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-r", "--requirements", action="append", type=Path, metavar="FILE",
        help="requirements file; repeatable (default: from [tool.cuda-constraints], requirements/kv_connectors.txt)",
    )


def add_target_flags(parser: argparse.ArgumentParser, with_cuda: bool = True) -> None:
    if with_cuda:
        parser.add_argument("--cuda", metavar="12,13|auto", help="CUDA majors to resolve (default: 12,13)")
    parser.add_argument(
        "--python-version", action="append", metavar="3.12", help="target Python; repeatable (default: 3.12)"
    )
    parser.add_argument(
        "--platform", action="append", metavar="TAG",
        help="target wheel platform; repeatable (default: manylinux_2_28_x86_64 and manylinux_2_28_aarch64)",
    )


def add_resolution_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pre", action="store_true", default=None, help="allow pre-releases")
    parser.add_argument("--allow-sdist", action="store_true", default=None, help="accept an sdist where a platform has no wheel")
    parser.add_argument(
        "--allow-sdist-package", action="append", default=[], metavar="NAME",
        help="accept an sdist for this project only; repeatable",
    )
    parser.add_argument("--exclude-newer", metavar="DATE", help="ignore files uploaded after DATE (YYYY-MM-DD or RFC 3339)")
    parser.add_argument("--generate-hashes", action="store_true", default=None, help="add --hash lines for every usable file")


def add_index_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index-url", metavar="URL", help="pip-style simple URL; its root serves the JSON API (default: https://pypi.org/simple)")
    parser.add_argument("--cache-dir", type=Path, metavar="DIR", help=f"cache directory (default: {default_cache_dir()})")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument("--offline", action="store_true", help="use only the cache; fail on anything not in it")
    parser.add_argument("--refresh", action="store_true", help="revalidate every cached project page")
    parser.add_argument("--retries", type=int, default=4, metavar="N", help="retries of a failed request (default: 4)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="network timeout of one read (default: 30)")
    parser.add_argument(
        "--deadline", type=float, metavar="SECONDS",
        help="the most one request may take, start to last byte, whatever each read does (default: 10 x --timeout)",
    )
    parser.add_argument(
        "--max-page-size", type=float, default=64, metavar="MiB", help="the largest project page read (default: 64 MiB)"
    )


def add_compile_flags(parser: argparse.ArgumentParser) -> None:
    """Every flag of `compile`."""
    add_input_flags(parser)
    add_target_flags(parser)
    add_resolution_flags(parser)
    add_index_flags(parser)
    parser.add_argument("-o", "--output-dir", type=Path, help="where cuNN.txt files go (default: constraints)")
    parser.add_argument("-U", "--upgrade", action="store_true", help="ignore the pins of existing files")
    parser.add_argument(
        "-P", "--upgrade-package", action="append", default=[], metavar="NAME[==V]",
        help="upgrade one project (to V when given), keeping the other pins; repeatable",
    )
    parser.add_argument("--dry-run", action="store_true", help="resolve and report, write nothing")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--stats-json", type=Path, metavar="FILE", help="write the network figures (requests, bytes, metadata reads) as JSON"
    )


# -- flags and configuration -> request ---------------------------------------------------------------------


def environments(args: argparse.Namespace, config: Config) -> tuple[tuple[PythonVersion, ...], tuple[Platform, ...]]:
    pythons = tuple(PythonVersion.parse(v) for v in args.python_version) if args.python_version else config.python_versions
    platforms = tuple(Platform.parse(p) for p in args.platform) if args.platform else config.platforms
    return tuple(dict.fromkeys(pythons)), tuple(dict.fromkeys(platforms))


def parse_majors(text: str) -> tuple[int, ...] | str:
    if text.strip() == "auto":
        return "auto"
    try:
        majors = tuple(sorted({int(part) for part in text.replace(" ", "").split(",") if part}))
    except ValueError:
        raise UsageError(f"--cuda {text!r}: give CUDA majors such as 12,13, or auto") from None
    if not majors or any(not 10 <= m <= 99 for m in majors):
        raise UsageError(f"--cuda {text!r}: give CUDA majors such as 12,13, or auto")
    return majors


def parse_upgrade_packages(values: list[str]) -> dict[str, Version | None]:
    found: dict[str, Version | None] = {}
    for value in values:
        try:
            requirement = Requirement(value)
        except InvalidRequirement:
            raise UsageError(f"--upgrade-package {value!r}: give NAME or NAME==VERSION") from None
        specifiers = list(requirement.specifier)
        if requirement.extras or requirement.marker or len(specifiers) > 1 or (specifiers and specifiers[0].operator != "=="):
            raise UsageError(f"--upgrade-package {value!r}: give NAME or NAME==VERSION")
        try:
            found[canonicalize_name(requirement.name)] = Version(specifiers[0].version) if specifiers else None
        except InvalidVersion:
            raise UsageError(f"--upgrade-package {value!r}: give NAME or NAME==VERSION") from None
    return found


def compile_request(args: argparse.Namespace, config: Config) -> CompileRequest:
    requirement_files = tuple(args.requirements) if args.requirements else tuple(config.resolve_path(p) for p in config.requirements)
    majors = parse_majors(args.cuda) if args.cuda else config.cuda
    pythons, platforms = environments(args, config)
    output_dir = args.output_dir if args.output_dir else config.resolve_path(config.output_dir)
    exclude_newer = parse_date(args.exclude_newer) if args.exclude_newer else config.exclude_newer
    selection = SelectionOptions(
        pre=bool(args.pre) or config.pre,
        allow_sdist=bool(args.allow_sdist) or config.allow_sdist,
        allow_sdist_packages=frozenset(canonicalize_name(n) for n in (*config.allow_sdist_packages, *args.allow_sdist_package)),
        exclude_newer=exclude_newer,
    )
    request = CompileRequest(
        config=config,
        requirement_files=requirement_files,
        majors=majors,
        python_versions=pythons,
        platforms=platforms,
        output_dir=output_dir,
        selection=selection,
        index_url=args.index_url or config.default_index_url,
        command="",
        generate_hashes=bool(args.generate_hashes) or config.generate_hashes,
        upgrade=args.upgrade,
        upgrade_packages=parse_upgrade_packages(args.upgrade_package),
        dry_run=args.dry_run,
    )
    return with_command(request, args, config)


def with_command(request: CompileRequest, args: argparse.Namespace, config: Config) -> CompileRequest:
    """The command the header gives: `cuda-constraints compile` plus the flags the configuration lacks."""

    def shown(path: Path) -> str:
        return relative_to_root(path, config.root)

    words = [PROG, "compile"]
    if args.requirements and [p.resolve() for p in args.requirements] != [config.resolve_path(p).resolve() for p in config.requirements]:
        words += [word for p in args.requirements for word in ("-r", shown(p))]
    if args.cuda and request.majors != config.cuda:
        words += ["--cuda", args.cuda.replace(" ", "")]
    if args.python_version and request.python_versions != config.python_versions:
        words += [word for v in request.python_versions for word in ("--python-version", str(v))]
    if args.platform and request.platforms != config.platforms:
        words += [word for p in request.platforms for word in ("--platform", p.tag)]
    if args.output_dir and args.output_dir.resolve() != config.resolve_path(config.output_dir).resolve():
        words += ["-o", shown(args.output_dir)]
    if args.index_url and args.index_url != config.index_url:
        words += ["--index-url", redact_url(args.index_url)]
    if args.pre and not config.pre:
        words.append("--pre")
    if args.allow_sdist and not config.allow_sdist:
        words.append("--allow-sdist")
    words += [
        word
        for n in args.allow_sdist_package
        if canonicalize_name(n) not in config.allow_sdist_packages
        for word in ("--allow-sdist-package", n)
    ]
    if args.exclude_newer and request.selection.exclude_newer != config.exclude_newer:
        words += ["--exclude-newer", args.exclude_newer]
    if args.generate_hashes and not config.generate_hashes:
        words.append("--generate-hashes")
    return replace(request, command=shlex.join(words))


def with_index_url(request: CompileRequest, explicit: str | None, requirements_input: RequirementsInput) -> CompileRequest:
    """The index a run reads: the `--index-url` flag, else the requirements file's, else the configuration's,
    else the environment's (`UV_DEFAULT_INDEX`, `UV_INDEX_URL`, `PIP_INDEX_URL`), else PyPI."""
    return replace(request, index_url=explicit or requirements_input.index_url or request.config.default_index_url)


# -- a header's command -> request --------------------------------------------------------------------------


class _HeaderParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def compile_parser() -> argparse.ArgumentParser:
    """A parser of `compile`'s arguments that raises UsageError instead of exiting."""
    parser = _HeaderParser(prog=COMPILE, add_help=False, allow_abbrev=False)
    add_compile_flags(parser)
    return parser


def request_from_command(command: str, config: Config) -> tuple[CompileRequest, argparse.Namespace]:
    """The request that running a header's `cuda-constraints compile ...` command makes with `config`.

    Raises UsageError when the command is not a `compile` command these flags can read.
    """
    try:
        words = shlex.split(command)
    except ValueError as error:
        raise UsageError(f"cannot split {command!r} into words ({error})") from None
    if words[:2] != [PROG, "compile"]:
        raise UsageError(f"{command!r} is not a `{COMPILE}` command")
    args = compile_parser().parse_args(words[2:])
    # The header writes paths relative to the project root, not to wherever `check` runs.
    if args.requirements:
        args.requirements = [config.resolve_path(p) for p in args.requirements]
    if args.output_dir:
        args.output_dir = config.resolve_path(args.output_dir)
    return compile_request(args, config), args
