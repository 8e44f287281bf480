"""Every option once: its flags, its `[tool.cuda-constraints]` key, its help, and how a header shows it.

The command line is built from this table (commands/options.py), the configuration reader knows its keys
from it (files/config.py), and a constraints file's header writes its regenerate command (the options
given on the command line that the configuration does not already say) and its `options:` line (the
options that shaped the result) from it. Adding an option is adding a row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Kind = Literal["switch", "value", "values", "path", "paths"]
# Which commands take the option: compile takes all but install, verify and config; inspect target, index,
# network; install and verify take verify.
Scope = Literal["input", "majors", "target", "resolution", "index", "network", "compile", "install", "verify", "config"]


@dataclass(frozen=True)
class Option:
    dest: str  # the attribute on the parsed arguments and, with `key`, on Config
    flags: tuple[str, ...]  # empty for a configuration-only key
    help: str
    kind: Kind
    scope: Scope
    metavar: str | None = None
    key: str | None = None  # its [tool.cuda-constraints] key
    # Repeated in a header's regenerate command when given on the command line and not configured.
    regenerate: bool = False
    # A flag adds to the configured values (allow-sdist-package) instead of replacing them (platforms).
    extends: bool = False
    # Listed in a header's `options:` line: it shaped the result (as opposed to inputs and targets).
    shapes: bool = False
    secret: bool = False  # holds a URL: shown with its credentials masked
    default: object = None
    number: type[int] | type[float] | None = None  # a numeric value: its type
    project_names: bool = False  # its values are project names (compared canonicalised)
    # Where the effective value is on a compile request ("selection.pre"): what decides whether a given
    # option differs from the configuration, and what the options line shows.
    field: str | None = None

    @property
    def flag(self) -> str:
        """The long spelling, as headers and messages write it."""
        return self.flags[-1]


OPTIONS: tuple[Option, ...] = (
    # -- input and targets ------------------------------------------------------------------------------
    Option("requirements", ("-r", "--requirements"), "requirements file; repeatable (default: from [tool.cuda-constraints], "
           "requirements/kv_connectors.txt)", "paths", "input", "FILE", key="requirements", regenerate=True, field="requirement_files"),
    Option("constraint", ("-c", "--constraint"), "a constraints file for every major (as pip's -c: it narrows versions, "
           "adds no requirement); repeatable", "paths", "input", "FILE", key="constraints", regenerate=True, extends=True,
           field="constraint_files"),
    Option("cuda", ("--cuda",), "CUDA majors to resolve (default: 12,13)", "value", "majors", "12,13|auto", key="cuda",
           regenerate=True, field="majors"),
    Option("python_version", ("--python-version",), "target Python; repeatable (default: 3.12)", "values", "target",
           "3.12", key="python-versions", regenerate=True, field="python_versions"),
    Option("platform", ("--platform",), "target wheel platform; repeatable (default: manylinux_2_28_x86_64 and "
           "manylinux_2_28_aarch64)", "values", "target", "TAG", key="platforms", regenerate=True, field="platforms"),
    Option("output_dir", ("-o", "--output-dir"), "where cuNN.txt files go (default: constraints)", "path", "compile", "DIR",
           key="output-dir", regenerate=True, field="output_dir"),
    # -- the index --------------------------------------------------------------------------------------
    Option("index_url", ("--index-url",), "the default index: a Simple API URL, JSON or HTML (default: "
           "https://pypi.org/simple, or the environment's: UV_DEFAULT_INDEX, UV_INDEX_URL, PIP_INDEX_URL)",
           "value", "index", "URL", key="index-url",
           regenerate=True, shapes=True, secret=True, field="index_url"),
    Option("extra_index_url", ("--extra-index-url",), "another index, asked before --index-url (as uv does); repeatable",
           "values", "index", "URL", key="extra-index-url", regenerate=True, extends=True, shapes=True, secret=True,
           field="extra_index_urls"),
    Option("find_links", ("-f", "--find-links"), "a directory of files, or an HTML page of links to them, added to every "
           "index's; repeatable", "values", "index", "PATH|URL", key="find-links", regenerate=True, extends=True, shapes=True, secret=True,
           field="find_links"),
    Option("no_index", ("--no-index",), "ask no index: only --find-links locations", "switch", "index", key="no-index",
           regenerate=True, shapes=True, field="no_index"),
    Option("index_strategy", ("--index-strategy",), "first-index (default: a name found on one index is never looked up "
           "on a later one) or unsafe-best-match", "value", "index", "STRATEGY", key="index-strategy", regenerate=True,
           shapes=True, field="index_strategy"),
    # -- what may be resolved ---------------------------------------------------------------------------
    Option("pre", ("--pre",), "allow pre-releases", "switch", "resolution", key="pre", regenerate=True, shapes=True, field="selection.pre"),
    Option("allow_sdist", ("--allow-sdist",), "accept an sdist where a platform has no wheel", "switch", "resolution",
           key="allow-sdist", regenerate=True, shapes=True, field="selection.allow_sdist"),
    Option("allow_sdist_package", ("--allow-sdist-package",), "accept an sdist for this project only; repeatable",
           "values", "resolution", "NAME", regenerate=True, extends=True, shapes=True, project_names=True,
           field="selection.allow_sdist_packages"),
    Option("exclude_newer", ("--exclude-newer",), "ignore files uploaded after DATE (YYYY-MM-DD or RFC 3339)", "value",
           "resolution", "DATE", key="exclude-newer", regenerate=True, shapes=True, field="selection.exclude_newer"),
    Option("exclude_dependency", ("--exclude-dependency",), "drop every edge to this project, for every major (uv's "
           "exclude-dependencies); repeatable", "values", "resolution", "NAME", key="exclude-dependencies", regenerate=True,
           extends=True, shapes=True, project_names=True, field="selection.exclude_dependencies"),
    Option("allow_torch_build_mismatch", ("--allow-torch-build-mismatch",), "write the file even where this project's "
           "builds per torch version (nixl's nixl_ep) have none for the pinned torch: the mismatch is recorded and warned "
           "about, and that module will not load; repeatable", "values", "resolution", "NAME", key="allow-torch-build-mismatch",
           regenerate=True, extends=True, shapes=True, project_names=True, field="selection.allow_torch_build_mismatch"),
    Option("generate_hashes", ("--generate-hashes",), "add --hash lines for every usable file", "switch", "resolution",
           key="generate-hashes", regenerate=True, shapes=True, field="generate_hashes"),
    Option("pylock", ("--pylock",), "also write pylock.cuNN.toml (PEP 751) beside each cuNN.txt: every pin with the "
           "files an installer may take, which uv and pip >= 26.3 install exactly, without resolving", "switch", "compile",
           key="pylock", regenerate=True, field="pylock"),
    # -- one run of compile -----------------------------------------------------------------------------
    Option("upgrade", ("-U", "--upgrade"), "ignore the pins of existing files", "switch", "compile"),
    Option("keep_going", ("--keep-going",), "write the majors that resolved, report the others (exit 4)", "switch", "compile"),
    Option("upgrade_package", ("-P", "--upgrade-package"), "upgrade one project (to V when given), keeping the other "
           "pins; repeatable", "values", "compile", "NAME[==V]"),
    Option("dry_run", ("--dry-run",), "resolve and report, write nothing", "switch", "compile"),
    Option("quiet", ("-q", "--quiet"), "no progress on stderr", "switch", "compile"),
    Option("stats_json", ("--stats-json",), "write the network figures (requests, bytes, metadata reads) as JSON", "path",
           "compile", "FILE"),
    # -- the network and the cache ----------------------------------------------------------------------
    Option("cache_dir", ("--cache-dir",), "cache directory (default: the platform's user cache)", "path", "network", "DIR"),
    Option("no_cache", ("--no-cache",), "neither read nor write the cache", "switch", "network"),
    Option("offline", ("--offline",), "use only the cache; fail on anything not in it", "switch", "network"),
    Option("refresh", ("--refresh",), "revalidate every cached project page", "switch", "network"),
    Option("retries", ("--retries",), "retries of a failed request (default: 4)", "value", "network", "N", default=4, number=int),
    Option("timeout", ("--timeout",), "network timeout of one read (default: 30)", "value", "network", "SECONDS",
           default=30.0, number=float),
    Option("deadline", ("--deadline",), "the most one request may take, start to last byte, whatever each read does "
           "(default: 10 x --timeout)", "value", "network", "SECONDS", number=float),
    Option("max_page_size", ("--max-page-size",), "the largest project page read (default: 64 MiB)", "value", "network",
           "MiB", default=64.0, number=float),
    # -- configuration of other commands --------------------------------------------------------------
    Option("allow_replace", ("--allow-replace",), "let install replace packages the environment holds at another version "
           "that the requirements do not name (the image's own torch)", "switch", "install"),
    Option("canary", ("--canary",), "a module that must import afterwards; repeatable (default: from config, nixl)",
           "values", "install", "MODULE", key="canaries"),
    Option("strict", ("--strict",), "fail (exit 1) on a library nothing here provides that is not a CUDA library "
           "(default: a warning; [tool.cuda-constraints.verify] strict)", "switch", "verify"),
    Option("ignore_library", ("--ignore-library",), "do not report this library when nothing here provides it (a glob "
           "such as 'libibverbs.so.*'); repeatable, added to [tool.cuda-constraints.verify] ignore-libraries",
           "values", "verify", "GLOB", extends=True),
    Option("verify", (), "how install and verify report libraries nothing here provides: strict, ignore-libraries",
           "value", "config", key="verify"),
    Option("rocm_requirements", (), "the requirements `install` installs on ROCm machines", "path", "config",
           key="rocm-requirements"),
    Option("families", (), "variant families beyond the built-in table", "value", "config", key="families"),
    Option("index", (), "named indexes ([[tool.cuda-constraints.index]])", "value", "config", key="index"),
    Option("sources", (), "projects routed to a named index", "value", "config", key="sources"),
    Option("pytorch_index", (), "where torch-backend finds the PyTorch indexes", "value", "config", key="pytorch-index"),
)


def options(*scopes: Scope) -> Iterator[Option]:
    return (option for option in OPTIONS if option.scope in scopes)



CONFIG_KEYS = frozenset(option.key for option in OPTIONS if option.key)
