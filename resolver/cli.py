"""The command line: parse flags, call the orchestration, print, exit. The only module that does so."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from . import __version__
from .background import BlockingIndex
from .cache import Cache, default_cache_dir
from .candidates import SelectionOptions
from .client import ClientOptions, IndexClient
from .compile import CompileRequest, compile_constraints, read_input
from .config import Config, load_config, parse_date
from .errors import CudaConstraintsError, UsageError
from .inspection import inspect_release, render_text
from .progress import LiveReporter, Progress
from .summary import summarize
from .targets import Environment, Platform, PythonVersion

PROG = "cuda-constraints"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except CudaConstraintsError as error:
        print(f"error: {error.message()}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Pinned, CUDA-consistent constraints files, one per CUDA major.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)

    compile_parser = commands.add_parser("compile", help="resolve every CUDA major and write constraints/cuNN.txt")
    _add_input_flags(compile_parser)
    _add_target_flags(compile_parser)
    _add_resolution_flags(compile_parser)
    _add_index_flags(compile_parser)
    compile_parser.add_argument("-o", "--output-dir", type=Path, help="where cuNN.txt files go (default: constraints)")
    compile_parser.add_argument("-U", "--upgrade", action="store_true", help="ignore the pins of existing files")
    compile_parser.add_argument(
        "-P", "--upgrade-package", action="append", default=[], metavar="NAME[==V]",
        help="upgrade one project (to V when given), keeping the other pins; repeatable",
    )
    compile_parser.add_argument("--dry-run", action="store_true", help="resolve and report, write nothing")
    compile_parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    compile_parser.set_defaults(run=run_compile)

    inspect_parser = commands.add_parser("inspect", help="show what the resolver sees of one release")
    inspect_parser.add_argument("spec", metavar="NAME[==VERSION]")
    inspect_parser.add_argument("--json", action="store_true", help="machine-readable output")
    _add_target_flags(inspect_parser, with_cuda=False)
    _add_index_flags(inspect_parser)
    inspect_parser.set_defaults(run=run_inspect)
    return parser


def _add_input_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-r", "--requirements", action="append", type=Path, metavar="FILE",
        help="requirements file; repeatable (default: from [tool.cuda-constraints], requirements/kv_connectors.txt)",
    )


def _add_target_flags(parser: argparse.ArgumentParser, with_cuda: bool = True) -> None:
    if with_cuda:
        parser.add_argument("--cuda", metavar="12,13|auto", help="CUDA majors to resolve (default: 12,13)")
    parser.add_argument(
        "--python-version", action="append", metavar="3.12", help="target Python; repeatable (default: 3.12)"
    )
    parser.add_argument(
        "--platform", action="append", metavar="TAG",
        help="target wheel platform; repeatable (default: manylinux_2_28_x86_64 and manylinux_2_28_aarch64)",
    )


def _add_resolution_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pre", action="store_true", default=None, help="allow pre-releases")
    parser.add_argument("--allow-sdist", action="store_true", default=None, help="accept an sdist where a platform has no wheel")
    parser.add_argument(
        "--allow-sdist-package", action="append", default=[], metavar="NAME",
        help="accept an sdist for this project only; repeatable",
    )
    parser.add_argument("--exclude-newer", metavar="DATE", help="ignore files uploaded after DATE (YYYY-MM-DD or RFC 3339)")
    parser.add_argument("--generate-hashes", action="store_true", default=None, help="add --hash lines for every usable file")


def _add_index_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index-url", metavar="URL", help="pip-style simple URL; its root serves the JSON API (default: https://pypi.org/simple)")
    parser.add_argument("--cache-dir", type=Path, metavar="DIR", help=f"cache directory (default: {default_cache_dir()})")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument("--offline", action="store_true", help="use only the cache; fail on anything not in it")
    parser.add_argument("--refresh", action="store_true", help="revalidate every cached project page")
    parser.add_argument("--retries", type=int, default=4, metavar="N", help="retries of a failed request (default: 4)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="network timeout (default: 30)")


# -- shared helpers -----------------------------------------------------------------------------------------


def open_index(args: argparse.Namespace, index_url: str, progress: Progress | None = None) -> BlockingIndex:
    if args.no_cache and args.offline:
        raise UsageError("--offline needs the cache; drop --no-cache")
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    warn = progress or (lambda message: print(f"warning: {message}", file=sys.stderr))
    cache = Cache(cache_dir, warn=lambda message: warn(f"warning: {message}"))
    if args.retries < 0 or args.timeout <= 0:
        raise UsageError("--retries must be 0 or more and --timeout more than 0")
    options = ClientOptions(
        index_url=index_url, offline=args.offline, refresh=args.refresh, retries=args.retries, timeout=args.timeout
    )
    return BlockingIndex(lambda: IndexClient(options, cache))


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
        found[canonicalize_name(requirement.name)] = Version(specifiers[0].version) if specifiers else None
    return found


# -- compile ------------------------------------------------------------------------------------------------


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
        index_url=args.index_url or config.index_url,
        command="",
        generate_hashes=bool(args.generate_hashes) or config.generate_hashes,
        upgrade=args.upgrade,
        upgrade_packages=parse_upgrade_packages(args.upgrade_package),
        dry_run=args.dry_run,
    )
    return _with_command(request, args, config)


def _with_command(request: CompileRequest, args: argparse.Namespace, config: Config) -> CompileRequest:
    """The command the header gives: `cuda-constraints compile` plus the flags the configuration lacks."""
    from dataclasses import replace

    def shown(path: Path) -> str:
        try:
            return path.resolve().relative_to(config.root.resolve()).as_posix()
        except ValueError:
            return path.as_posix()

    words = [PROG, "compile"]
    if args.requirements and [p.resolve() for p in args.requirements] != [config.resolve_path(p).resolve() for p in config.requirements]:
        words += [f"-r {shown(p)}" for p in args.requirements]
    if args.cuda and request.majors != config.cuda:
        words.append(f"--cuda {args.cuda.replace(' ', '')}")
    if args.python_version and request.python_versions != config.python_versions:
        words += [f"--python-version {v}" for v in request.python_versions]
    if args.platform and request.platforms != config.platforms:
        words += [f"--platform {p.tag}" for p in request.platforms]
    if args.output_dir and args.output_dir.resolve() != config.resolve_path(config.output_dir).resolve():
        words.append(f"-o {shown(args.output_dir)}")
    if args.index_url and args.index_url != config.index_url:
        words.append(f"--index-url {args.index_url}")
    if args.pre and not config.pre:
        words.append("--pre")
    if args.allow_sdist and not config.allow_sdist:
        words.append("--allow-sdist")
    words += [f"--allow-sdist-package {n}" for n in args.allow_sdist_package if canonicalize_name(n) not in config.allow_sdist_packages]
    if args.exclude_newer and request.selection.exclude_newer != config.exclude_newer:
        words.append(f"--exclude-newer {args.exclude_newer}")
    if args.generate_hashes and not config.generate_hashes:
        words.append("--generate-hashes")
    return replace(request, command=" ".join(words))


def run_compile(args: argparse.Namespace) -> int:
    config = load_config()
    request = compile_request(args, config)
    progress = Progress(quiet=args.quiet)
    requirements_input = read_input(request)
    index_url = args.index_url or requirements_input.index_url or config.index_url
    if requirements_input.extra_index_urls:
        raise UsageError(
            f"--extra-index-url ({requirements_input.extra_index_urls[0]}) is not supported: resolution reads one "
            "index; point --index-url at a mirror that serves every project"
        )
    from dataclasses import replace

    request = replace(request, index_url=index_url)
    with open_index(args, index_url, progress) as index:
        result = compile_constraints(
            request,
            requirements_input,
            index,
            progress,
            reporter_for=lambda target: LiveReporter(progress, f"CUDA {target.cuda_major} {target.environment}"),
        )
        stats = index.client.stats
    progress.done()
    for line in summarize(result, request, stats):
        print(line)
    return 0


# -- inspect ------------------------------------------------------------------------------------------------


def run_inspect(args: argparse.Namespace) -> int:
    config = load_config()
    try:
        requirement = Requirement(args.spec)
    except InvalidRequirement:
        raise UsageError(f"{args.spec!r}: give NAME or NAME==VERSION") from None
    specifiers = list(requirement.specifier)
    if len(specifiers) > 1 or (specifiers and specifiers[0].operator != "=="):
        raise UsageError(f"{args.spec!r}: give NAME or NAME==VERSION")
    version = Version(specifiers[0].version) if specifiers else None
    pythons, platforms = environments(args, config)
    targets = tuple(Environment(p, q) for p in pythons for q in platforms)
    with open_index(args, args.index_url or config.index_url) as index:
        report = inspect_release(index, canonicalize_name(requirement.name), version, targets, config.family_table())
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(render_text(report))
    return 0
