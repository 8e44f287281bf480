"""The variant-family model: which packages belong to one CUDA major, as data.

A *family* is a set of projects that are builds of one thing for different CUDA majors. How a project's
CUDA major shows is its *scheme*:

- a name pattern with `{major}`: `nixl-cu{major}`, `cupy-cuda{major}x`, `mooncake-transfer-engine-cuda{major}`;
  generic patterns apply to every project, explicit ones to one family;
- a declared default: the unsuffixed `mooncake-transfer-engine` is the CUDA 12 build;
- the release's version major: `cuda-toolkit 13.2.2` is CUDA 13;
- a fixed major: the unsuffixed `nvidia-cufft` exists only for CUDA 13 (its own versions are 12.x);
- a meta package: `nixl` depends on its members and belongs to no major.

The built-in table below is extended by `[tool.cuda-constraints.families]` (see `family_from_config`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from packaging.utils import canonicalize_name
from packaging.version import Version

from .indexes import local_cuda

Role = Literal["member", "meta"]
# How a project's (or release's) CUDA major shows.
Scheme = Literal["name", "declared default", "version major", "exists only for this major", "meta package", "local version"]
MAJOR_PATTERN = r"(?P<major>1\d|[2-9]\d)"


@dataclass(frozen=True)
class Family:
    """One family. `pattern` names the member for a major (`nixl-cu{major}`), when members are named."""

    name: str
    pattern: str | None = None
    meta: str | None = None
    meta_extra: str = "cu{major}"
    default_major: int | None = None
    version_major: tuple[str, ...] = ()
    fixed_major: Mapping[str, int] | None = None
    # Where a member's wheel keeps its builds per torch version: `nixl_ep_cu{major}/nixl_ep_cpp_torch{torch}`
    # (`torch212` is torch 2.12). The torch versions a wheel ships builds for bound torch wherever it is.
    torch_builds: str | None = None

    def member_name(self, major: int) -> str | None:
        """The project that is this family's build for `major`, if the family names its members."""
        if self.default_major == major:
            return self.name
        return canonicalize_name(self.pattern.format(major=major)) if self.pattern else None

    @cached_property
    def _regex(self) -> re.Pattern[str] | None:
        if not self.pattern:
            return None
        escaped = re.escape(canonicalize_name(self.pattern))
        return re.compile("^" + escaped.replace(re.escape("{major}"), MAJOR_PATTERN) + "$")

    def member_major(self, name: str) -> int | None:
        """The major of `name` when it is one of this family's named members."""
        if self.default_major is not None and name == self.name:
            return self.default_major
        match = self._regex.match(name) if self._regex else None
        return int(match.group("major")) if match else None


@dataclass(frozen=True)
class Variant:
    """What the family model says about one project (and release)."""

    family: Family
    role: Role
    # None for a meta package, and for a version-major project whose version names no CUDA major.
    major: int | None
    scheme: Scheme

    def describe(self) -> str:
        if self.role == "meta":
            return f"meta package of family {self.family.name}"
        major = f"CUDA {self.major}" if self.major is not None else "no CUDA major"
        return f"{major} ({self.scheme}) of family {self.family.name}"


# Generic naming schemes: any project whose name matches is a member of the family the pattern names.
GENERIC_PATTERNS = (
    "{base}-cu{major}",
    "{base}-cuda{major}x",
    "{base}-cuda{major}",
    "{base}-cuda{major}-{rest}",
)

_CUDA_13_ONLY_LIBRARIES = (
    "nvidia-cufft",
    "nvidia-cufile",
    "nvidia-curand",
    "nvidia-cusolver",
    "nvidia-cusparse",
)

BUILTIN_FAMILIES: tuple[Family, ...] = (
    Family("nixl", pattern="nixl-cu{major}", meta="nixl", torch_builds="nixl_ep_cu{major}/nixl_ep_cpp_torch{torch}"),
    Family("mooncake-transfer-engine", pattern="mooncake-transfer-engine-cuda{major}", default_major=12),
    Family(
        "cuda-toolkit",
        version_major=(
            "cuda-toolkit",
            "cuda-bindings",
            "cuda-python",
            "nvidia-cublas",
            "nvidia-cuda-cccl",
            "nvidia-cuda-crt",
            "nvidia-cuda-culibos",
            "nvidia-cuda-cupti",
            "nvidia-cuda-nvcc",
            "nvidia-cuda-nvrtc",
            "nvidia-cuda-opencl",
            "nvidia-cuda-runtime",
            "nvidia-cuda-sanitizer-api",
            "nvidia-npp",
            "nvidia-nvfatbin",
            "nvidia-nvjitlink",
            "nvidia-nvjpeg",
            "nvidia-nvml-dev",
            "nvidia-nvtx",
            "nvidia-nvvm",
        ),
        fixed_major=dict.fromkeys(_CUDA_13_ONLY_LIBRARIES, 13),
    ),
)


class FamilyTable:
    """Classifies projects; answers which project is a family's build for a major."""

    def __init__(self, families: Iterable[Family] = BUILTIN_FAMILIES, generic_patterns: Iterable[str] = GENERIC_PATTERNS) -> None:
        self.families = tuple(families)
        self._by_name: dict[str, tuple[Family, Role | None]] = {}
        for family in self.families:
            if family.meta:
                self._by_name[canonicalize_name(family.meta)] = (family, "meta")
            if family.default_major is not None:
                self._by_name[family.name] = (family, "member")
            for name in family.version_major:
                self._by_name[canonicalize_name(name)] = (family, None)
            for name in family.fixed_major or {}:
                self._by_name[canonicalize_name(name)] = (family, None)
        self._generic = tuple(_generic_regex(p) for p in generic_patterns)
        self._cache: dict[str, Variant | None] = {}

    def names(self, majors: Iterable[int] = (12, 13)) -> set[str]:
        """Every project the table names (meta packages, members for these majors, listed projects)."""
        members = {member for family in self.families for major in majors if (member := family.member_name(major))}
        return {*self._by_name, *members}

    def classify(self, name: str, version: Version | None = None) -> Variant | None:
        """The family, role and CUDA major of a project (and release, for version-major families)."""
        name = canonicalize_name(name)
        entry = self._by_name.get(name)
        if entry is not None:
            family, role = entry
            if role == "meta":
                return Variant(family, "meta", None, "meta package")
            if family.fixed_major and name in family.fixed_major:
                return Variant(family, "member", family.fixed_major[name], "exists only for this major")
            if name in family.version_major:
                major = version.major if version is not None and version.major >= 10 else None
                return Variant(family, "member", major, "version major")
        if name not in self._cache:
            self._cache[name] = self._classify_by_name(name)
        if self._cache[name] is None and version is not None and version.local is not None:
            return _by_local_version(name, version)
        return self._cache[name]

    def _classify_by_name(self, name: str) -> Variant | None:
        for family in self.families:
            major = family.member_major(name)
            if major is not None:
                scheme: Scheme = "declared default" if name == family.name else "name"
                return Variant(family, "member", major, scheme)
        for regex, pattern in self._generic:
            match = regex.match(name)
            if match:
                groups = match.groupdict()
                family_pattern = pattern.format(base=groups["base"], rest=groups.get("rest", ""), major="{major}")
                family = Family(groups["base"], pattern=family_pattern)
                return Variant(family, "member", int(groups["major"]), "name")
        return None

    def major_of(self, name: str, version: Version | None = None) -> int | None:
        """The CUDA major a release belongs to, or None when it belongs to every major."""
        variant = self.classify(name, version)
        return variant.major if variant is not None and variant.role == "member" else None

    def fits(self, name: str, version: Version, major: int) -> bool:
        """Whether a release may be installed for CUDA `major`."""
        variant = self.classify(name, version)
        if variant is None or variant.role == "meta":
            return True
        if variant.major is None:
            # A version-major project whose version names no CUDA major (placeholders such as 0.0.0a0).
            return False
        return variant.major == major

    def swap_target(self, name: str, major: int) -> str | None:
        """For a name-scheme member of another major: the family's member for `major` (for swaps)."""
        variant = self.classify(name)
        if variant is None or variant.role != "member" or variant.scheme not in ("name", "declared default"):
            return None
        if variant.major == major:
            return None
        return variant.family.member_name(major)

    def torch_builds(self, name: str) -> tuple[str, int] | None:
        """For a member of a family that keeps builds per torch version: the layout, and the member's major."""
        variant = self.classify(name)
        if variant is None or variant.role != "member" or variant.major is None or not variant.family.torch_builds:
            return None
        return variant.family.torch_builds, variant.major

    def meta_family(self, name: str) -> Family | None:
        variant = self.classify(name)
        return variant.family if variant is not None and variant.role == "meta" else None

    def families_named_by(self, names: Iterable[str]) -> list[Family]:
        """The name-scheme families these projects belong to (for discovering majors on the index)."""
        found: dict[str, Family] = {}
        for name in names:
            variant = self.classify(name)
            if variant is not None and (variant.family.pattern or variant.family.default_major):
                found.setdefault(variant.family.name, variant.family)
        return list(found.values())


# An extra named for a CUDA major selects that major's build: `cu13`, `cuda13`, `cuda13x`, `cu129`.
_SELECTOR_EXTRA = re.compile(r"^(cu|cuda)(1\d|[2-9]\d)(\d?)(x?)$")


def extra_major(extra: str) -> int | None:
    """The CUDA major an extra selects (`cu13` -> 13), or None for any other extra."""
    match = _SELECTOR_EXTRA.match(canonicalize_name(extra))
    return int(match.group(2)) if match else None


def extra_for_major(extra: str, major: int) -> str | None:
    """The same selector spelled for another major (`cuda13x` -> `cuda12x`); None when the spelling names a
    CUDA minor too (`cu130`), which another major cannot be guessed from."""
    match = _SELECTOR_EXTRA.match(canonicalize_name(extra))
    if match is None or match.group(3):
        return None
    return f"{match.group(1)}{major}{match.group(4)}"


def extras_for_major(extras: Iterable[str], major: int) -> frozenset[str]:
    """Extras with every selector of another major spelled for this one (dropped when it cannot be):
    `[cu13]` asked on CUDA 12 is `[cu12]`, whether a requirements file or a release's metadata asks it."""
    found = set()
    for extra in extras:
        selected = extra_major(extra)
        if selected is None or selected == major:
            found.add(extra)
        elif (spelled := extra_for_major(extra, major)) is not None:
            found.add(spelled)
    return frozenset(found)


def _by_local_version(name: str, version: Version) -> Variant | None:
    """A release whose local label names its build (`torch 2.14.0+cu129`) is a member of that major; one
    labelled for no CUDA (`+cpu`, `+rocm6.3`) belongs to none."""
    cuda = local_cuda(version)
    if cuda is None:
        return None
    return Variant(Family(name), "member", None if cuda == "none" else cuda[0], "local version")


def _generic_regex(pattern: str) -> tuple[re.Pattern[str], str]:
    escaped = re.escape(pattern)
    for placeholder, group in (
        ("\\{base\\}", "(?P<base>[a-z0-9][a-z0-9.-]*?)"),
        ("\\{rest\\}", "(?P<rest>[a-z0-9][a-z0-9.-]*)"),
        ("\\{major\\}", MAJOR_PATTERN),
    ):
        escaped = escaped.replace(placeholder, group)
    return re.compile("^" + escaped + "$"), pattern


def family_from_config(name: str, entry: Mapping[str, object]) -> Family:
    """A family from a `[tool.cuda-constraints.families.<name>]` table (validated by the config reader).

    Keys: `members` (a name pattern with `{major}`), `meta` (true: `<name>` is a meta package of the members),
    `meta-extra` (the extra a meta declares per major, default `cu{major}`), `default-major` (the unsuffixed
    `<name>` is the build for that major), `version-major` (projects whose version major is the CUDA major),
    `fixed-major` (project -> the only CUDA major it exists for), `torch-builds` (where a member's wheel
    keeps its builds per torch version).
    """
    canonical = canonicalize_name(name)
    members, meta_extra, default_major = entry.get("members"), entry.get("meta-extra", "cu{major}"), entry.get("default-major")
    version_major, fixed_major = entry.get("version-major", []), entry.get("fixed-major", {})
    assert isinstance(members, (str, type(None))) and isinstance(meta_extra, str) and isinstance(default_major, (int, type(None)))
    assert isinstance(version_major, list) and isinstance(fixed_major, dict)
    return Family(
        name=canonical,
        pattern=members,
        meta=canonical if entry.get("meta") else None,
        meta_extra=meta_extra,
        default_major=default_major,
        version_major=tuple(canonicalize_name(str(n)) for n in version_major),
        fixed_major={canonicalize_name(str(k)): int(v) for k, v in fixed_major.items()},
        torch_builds=str(entry["torch-builds"]) if entry.get("torch-builds") else None,
    )
