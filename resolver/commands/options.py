"""The settings of a `compile` run: its flags, the request they make with `[tool.cuda-constraints]`, and
the command line a constraints file's header gives to regenerate it.

Commands take typed values, never the command line's parsed arguments: `Flags` holds what the option
table's flags were given (`from_args` reads them from the parser's values, `to_argv` gives them back as
words, both by the table), and `compile_request` makes a `CompileRequest` of them with the configuration.
`check` reads the command in a file's header with the same flag definitions (`Flags.from_argv`), so a
file is checked against exactly what regenerating it would do. Paths in a header command are relative
to the project root (where pyproject.toml is), as `compile` writes them.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import UsageError
from ..errors.display import redact_url
from ..files.config import Config
from ..files.config_reader import parse_date
from ..files.options import OPTIONS, Option, Scope, options
from ..files.requirements import RequirementsInput, relative_to_root
from ..model.distributions import DEFAULT_INDEX_URL
from ..model.targets import Platform, PythonVersion, parse_majors
from ..resolve.selection import SelectionOptions

PROG = "cuda-constraints"
COMPILE = f"{PROG} compile"
# The scopes of the options `Flags` holds: every command's but install's and verify's own.
FLAG_SCOPES: tuple[Scope, ...] = ("input", "majors", "target", "resolution", "index", "network", "compile")


@dataclass(frozen=True)
class Flags:
    """The values the option table's flags were given on a command line: a switch is False, a repeatable
    option empty and any other None where it was not given (retries, timeout and max-page-size: their
    defaults). One field per row of the table with flags (of `FLAG_SCOPES`), named by its `dest`."""

    requirements: tuple[Path, ...] = ()
    constraint: tuple[Path, ...] = ()
    cuda: str | None = None
    python_version: tuple[str, ...] = ()
    platform: tuple[str, ...] = ()
    output_dir: Path | None = None
    index_url: str | None = None
    extra_index_url: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    index_strategy: str | None = None
    pre: bool = False
    allow_sdist: bool = False
    allow_sdist_package: tuple[str, ...] = ()
    exclude_newer: str | None = None
    exclude_dependency: tuple[str, ...] = ()
    allow_torch_build_mismatch: tuple[str, ...] = ()
    generate_hashes: bool = False
    pylock: bool = False
    upgrade: bool = False
    keep_going: bool = False
    upgrade_package: tuple[str, ...] = ()
    dry_run: bool = False
    quiet: bool = False
    stats_json: Path | None = None
    cache_dir: Path | None = None
    no_cache: bool = False
    offline: bool = False
    refresh: bool = False
    retries: int = 4
    timeout: float = 30.0
    deadline: float | None = None
    max_page_size: float = 64.0

    @classmethod
    def from_args(cls, values: Mapping[str, object]) -> Flags:
        """The flags among a parser's values (`vars(namespace)`: other keys are not the table's)."""
        given: dict[str, Any] = {}
        for option in _flag_options():
            value = values.get(option.dest)
            if value is None:
                continue
            if option.kind == "switch":
                given[option.dest] = bool(value)
            elif option.kind in ("values", "paths"):
                given[option.dest] = tuple(value) if isinstance(value, list | tuple) else (value,)
            else:
                given[option.dest] = value
        return cls(**given)

    @classmethod
    def from_argv(cls, words: Sequence[str]) -> Flags:
        """The flags `compile` would read from these words; UsageError for words it cannot read."""
        return cls.from_args(vars(compile_parser().parse_args(list(words))))

    def to_argv(self) -> list[str]:
        """The words that give these flags again (in the table's order; the defaults left out)."""
        words: list[str] = []
        for option in _flag_options():
            value = getattr(self, option.dest)
            if value == getattr(_DEFAULT_FLAGS, option.dest):
                continue
            if option.kind == "switch":
                words.append(option.flag)
            elif option.kind in ("values", "paths"):
                words += [word for item in value for word in (option.flag, str(item))]
            else:
                words += [option.flag, str(value)]
        return words

    def only(self, *scopes: Scope) -> Flags:
        """These flags, with only those of the options of these scopes kept (`check --online`: the index's)."""
        return replace(Flags(), **{option.dest: getattr(self, option.dest) for option in _flag_options() if option.scope in scopes})


def _flag_options() -> Iterator[Option]:
    return (option for option in options(*FLAG_SCOPES) if option.flags)


_DEFAULT_FLAGS = Flags()


@dataclass(frozen=True)
class CompileRequest:
    config: Config
    requirement_files: tuple[Path, ...]  # the shared ones (a major's table may replace them)
    majors: tuple[int, ...] | str
    python_versions: tuple[PythonVersion, ...]
    platforms: tuple[Platform, ...]
    output_dir: Path
    selection: SelectionOptions
    index_url: str
    command: str
    generate_hashes: bool = False
    pylock: bool = False  # write pylock.cuNN.toml beside each cuNN.txt
    upgrade: bool = False
    upgrade_packages: Mapping[NormalizedName, Version | None] = field(default_factory=dict)
    dry_run: bool = False
    # The flags' and the configuration's (routing.py adds the requirements files', the environment's and
    # each major's own).
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    index_strategy: str | None = None
    keep_going: bool = False
    constraint_files: tuple[Path, ...] = ()
    requirements_given: bool = False  # -r on the command line: a major's own `requirements` do not apply
    index_url_flag: str | None = None  # --index-url, which wins over a requirements file's line


def input_files(request: CompileRequest, major: int = 0) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """The requirements and constraints files of one major (0: the shared ones)."""
    return request.config.input_files(major, request.requirement_files, request.constraint_files, request.requirements_given)


# -- flag definitions ---------------------------------------------------------------------------------------


def add_flags(parser: argparse.ArgumentParser, *scopes: Scope, project: Mapping[str, str] | None = None) -> None:
    """The flags of the table's options of these scopes, as the table defines them; `project`: the values
    the project's configuration sets, by key, which the help then shows."""
    for option in options(*scopes):
        if not option.flags:
            continue
        arguments: dict[str, object] = {"help": with_project_value(option.help, option.key, project), "dest": option.dest}
        if option.kind == "switch":
            arguments.update(action="store_true", default=None)
        else:
            arguments.update(metavar=option.metavar, default=option.default)
            if option.kind in ("values", "paths"):
                arguments["action"] = "append"
            if option.kind in ("path", "paths"):
                arguments["type"] = Path
            elif option.number is not None:
                arguments["type"] = option.number
        parser.add_argument(*option.flags, **arguments)  # type: ignore[arg-type]


def with_project_value(text: str, key: str | None, project: Mapping[str, str] | None) -> str:
    """A flag's help, with the value the project's configuration gives it (argparse's `%` escaped)."""
    value = (project or {}).get(key or "")
    return text if value is None else f"{text} [this project: {value.replace('%', '%%')}]"


def add_compile_flags(parser: argparse.ArgumentParser, project: Mapping[str, str] | None = None) -> None:
    """Every flag of `compile`."""
    add_flags(parser, "input", "majors", "target", "resolution", "index", "network", "compile", project=project)


# -- flags and configuration -> request ---------------------------------------------------------------------


def environments(flags: Flags, config: Config) -> tuple[tuple[PythonVersion, ...], tuple[Platform, ...]]:
    pythons = tuple(PythonVersion.parse(v) for v in flags.python_version) if flags.python_version else config.python_versions
    platforms = tuple(Platform.parse(p) for p in flags.platform) if flags.platform else config.platforms
    return tuple(dict.fromkeys(pythons)), tuple(dict.fromkeys(platforms))


def parse_cuda(text: str) -> tuple[int, ...] | str:
    """`--cuda`: `12,13` or `auto`."""
    return "auto" if text.strip() == "auto" else parse_majors(text, "--cuda")


def parse_upgrade_packages(values: Sequence[str]) -> dict[NormalizedName, Version | None]:
    found: dict[NormalizedName, Version | None] = {}
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


def compile_request(flags: Flags, config: Config) -> CompileRequest:
    """The request the flags make with the configuration, and the command that makes it again."""
    return replace(_request(flags, config), command=regenerate_command(flags, config))


def _request(args: Flags, config: Config) -> CompileRequest:
    requirement_files = tuple(args.requirements) if args.requirements else tuple(config.resolve_path(p) for p in config.requirements)
    majors = parse_cuda(args.cuda) if args.cuda else config.cuda
    pythons, platforms = environments(args, config)
    output_dir = args.output_dir if args.output_dir else config.resolve_path(config.output_dir)
    if output_dir.is_file() or output_dir.suffix == ".txt":
        raise UsageError(f"-o {output_dir}: give a directory; the files are written as cuNN.txt inside it "
                         f"(-o {output_dir.with_suffix('') if output_dir.suffix == '.txt' else output_dir.parent})")
    exclude_newer = parse_date(args.exclude_newer) if args.exclude_newer else config.exclude_newer
    selection = SelectionOptions(
        pre=bool(args.pre) or config.pre,
        allow_sdist=bool(args.allow_sdist) or config.allow_sdist,
        allow_sdist_packages=frozenset(canonicalize_name(n) for n in (*config.allow_sdist_packages, *(args.allow_sdist_package or ()))),
        exclude_newer=exclude_newer,
        exclude_dependencies=frozenset(canonicalize_name(n) for n in (*config.exclude_dependencies, *(args.exclude_dependency or ()))),
        allow_torch_build_mismatch=frozenset(
            canonicalize_name(n) for n in (*config.allow_torch_build_mismatch, *(args.allow_torch_build_mismatch or ()))
        ),
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
        pylock=bool(args.pylock) or config.pylock,
        upgrade=bool(args.upgrade),
        upgrade_packages=parse_upgrade_packages(args.upgrade_package),
        dry_run=bool(args.dry_run),
        extra_index_urls=tuple(dict.fromkeys((*(args.extra_index_url or ()), *config.indexes.extra_index_urls))),
        find_links=tuple(dict.fromkeys((*(args.find_links or ()), *config.indexes.find_links))),
        no_index=bool(args.no_index) or config.no_index,
        index_strategy=args.index_strategy or config.indexes.strategy,
        keep_going=bool(args.keep_going),
        constraint_files=tuple(dict.fromkeys((*(config.resolve_path(p) for p in config.constraints), *(args.constraint or ())))),
        requirements_given=bool(args.requirements),
        index_url_flag=args.index_url,
    )
    return request


def regenerate_command(flags: Flags, config: Config) -> str:
    """The command a header gives: `cuda-constraints compile` plus each option given on the command line
    that makes the request differ from the configuration's (quoted for a shell, secrets masked)."""
    request, baseline = _request(flags, config), _request(Flags(), config)
    words = [PROG, "compile"]
    for option in OPTIONS:
        given = getattr(flags, option.dest, None) if option.regenerate and option.field else None
        if given and _value(request, option) != _value(baseline, option):
            words += _words(option, given, _value(request, option), _value(baseline, option), config)
    return shlex.join(words)


def _value(request: CompileRequest, option: Option) -> Any:
    value: Any = request
    for part in (option.field or "").split("."):
        value = getattr(value, part)
    return value


def _words(option: Option, given: Any, value: Any, configured: Any, config: Config) -> list[str]:
    flag = option.flags[0]
    if option.kind == "switch":
        return [flag]
    if option.kind in ("path", "paths"):
        paths = given if isinstance(given, tuple) else (given,)
        return [word for path in paths for word in (flag, relative_to_root(path, config.root))]
    if option.extends:  # only what the configuration does not already give
        same = canonicalize_name if option.project_names else str
        new = [item for item in given if same(item) not in {same(c) for c in configured}]
        return [word for item in new for word in (flag, redact_url(item) if option.secret else item)]
    if option.kind == "values":
        return [word for item in value for word in (flag, str(item))]
    if isinstance(value, tuple):  # CUDA majors, sorted and once each
        return [flag, ",".join(map(str, value))]
    return [flag, redact_url(given) if option.secret else given]


def describe_options(request: CompileRequest) -> str:
    """The options that shaped the result, as flags: a header's `options:` line."""
    baseline = CompileRequest(request.config, (), (), (), (), Path(), SelectionOptions(), DEFAULT_INDEX_URL, "")
    words: list[str] = []
    for option in OPTIONS:
        if not option.shapes:
            continue
        value = _value(request, option)
        if value == _value(baseline, option) or (option.secret and str(value).rstrip("/") == DEFAULT_INDEX_URL):
            continue
        if option.kind == "switch":
            words.append(option.flag)
        elif isinstance(value, (set, frozenset, tuple)):  # a set in order; a tuple's order is its priority
            items = sorted(value) if isinstance(value, (set, frozenset)) else value
            words += [word for item in items for word in (option.flag, redact_url(str(item)) if option.secret else str(item))]
        elif isinstance(value, datetime):
            words += [option.flag, value.isoformat().replace("+00:00", "Z")]
        else:
            words += [option.flag, redact_url(str(value)) if option.secret else str(value)]
    return shlex.join(words)


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


def request_from_command(command: str, config: Config) -> tuple[CompileRequest, Flags]:
    """The request that running a header's `cuda-constraints compile ...` command makes with `config`, and
    the flags it gives.

    Raises UsageError when the command is not a `compile` command these flags can read.
    """
    try:
        words = shlex.split(command)
    except ValueError as error:
        raise UsageError(f"cannot split {command!r} into words ({error})") from None
    if words[:2] != [PROG, "compile"]:
        raise UsageError(f"{command!r} is not a `{COMPILE}` command")
    flags = Flags.from_argv(words[2:])
    # The header writes paths relative to the project root, not to wherever `check` runs.
    flags = replace(
        flags,
        requirements=tuple(config.resolve_path(p) for p in flags.requirements),
        constraint=tuple(config.resolve_path(p) for p in flags.constraint),
        output_dir=config.resolve_path(flags.output_dir) if flags.output_dir else None,
    )
    return compile_request(flags, config), flags
