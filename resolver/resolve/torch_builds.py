"""Builds per torch version, read from a wheel's file list.

`nixl-cu13 1.5.1` requires `torch` with no bound, yet ships `nixl_ep_cu13/nixl_ep_cpp_torch212…so`,
`…torch213…` and `…torch214…`: `import nixl_ep` works with torch 2.12 to 2.14 only. A family that keeps
builds that way declares where (`torch-builds`, built in for nixl); the torch versions a member's wheel
ships become a requirement on torch for the target that installs that wheel.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet

# `_torch212` -> torch 2.12 (one digit of major, one or two of minor), in any member name.
TORCH_TAG = re.compile(r"_torch(\d)(\d{1,2})(?=[._/-])")


@dataclass(frozen=True)
class TorchBuilds:
    """What a wheel ships for the torch versions it supports."""

    minors: tuple[tuple[int, int], ...] = ()  # (2, 12), …; empty when the builds carry no torch tag
    untagged: str = ""  # the module an untagged build is of (`nixl_ep_cu12/nixl_ep_cpp`), if there is one
    # Members that look like per-torch builds but not as the family declares (a changed layout).
    unrecognised: tuple[str, ...] = ()

    @property
    def specifier(self) -> SpecifierSet | None:
        """The torch versions these builds serve: `>=2.12,<2.15` (with `!=2.13.*` for a gap); None when
        the builds name none."""
        if not self.minors:
            return None
        low, high = self.minors[0], self.minors[-1]
        parts = [f">={low[0]}.{low[1]}", f"<{high[0]}.{high[1] + 1}"]
        if low[0] == high[0]:
            parts += [f"!={high[0]}.{minor}.*" for minor in range(low[1] + 1, high[1]) if (high[0], minor) not in self.minors]
        return SpecifierSet(",".join(parts))

    def describe(self) -> str:
        if self.minors:
            return "builds for torch " + ", ".join(f"{major}.{minor}" for major, minor in self.minors)
        return f"an untagged {self.untagged} build: the torch it needs is not in the wheel"


def builds_module(layout: str) -> str:
    """The module a layout's builds are of, as one imports it: `nixl_ep_cu{major}/…` -> `nixl_ep`."""
    return re.sub(r"_?cu\{major\}", "", layout.split("/", 1)[0])


def read_torch_builds(layout: str, major: int, names: Iterable[str]) -> TorchBuilds | None:
    """The builds a wheel's members show for a declared layout (`nixl_ep_cu{major}/nixl_ep_cpp_torch{torch}`);
    None when the wheel ships none at all."""
    prefix, _, suffix = layout.replace("{major}", str(major)).partition("{torch}")
    tagged = re.compile(re.escape(prefix) + r"(\d)(\d{1,2})" + re.escape(suffix) + r"[./]")
    base = prefix.removesuffix("_torch") if prefix.endswith("_torch") else ""
    minors: set[tuple[int, int]] = set()
    untagged, unrecognised = "", []
    for name in names:
        match = tagged.match(name)
        if match:
            minors.add((int(match.group(1)), int(match.group(2))))
        elif base and name.startswith(base + "."):
            untagged = base
        elif TORCH_TAG.search(name):
            unrecognised.append(name)
    if not minors and not untagged and not unrecognised:
        return None
    return TorchBuilds(tuple(sorted(minors)), untagged if not minors else "", tuple(unrecognised))
