"""Watching resolvelib resolve: how wide the resolution grows, and what drives its backtracking.

resolvelib tells its reporter every requirement it adds, every conflict it backtracks from and every
candidate it rejects. `Watch` passes all of it on to the given reporter, and keeps what a failure needs
to name its cause: which projects conflicted most, who asked what of them, and which releases were
rejected most. It stops a resolution that can only end badly:

- wider than a bound (resolvelib keeps a copy of its state for every project it pins, each naming every
  project known by then: memory grows with the square of the breadth), `TooBroad`;
- backtracking over and over for the same cause, with nothing new to try (`Stuck`): the last
  `STUCK_WINDOW` conflicts all over the same projects, after at least `STUCK_AFTER` conflicts.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Collection
from dataclasses import dataclass, field

from resolvelib import BaseReporter
from resolvelib.resolvers import Criterion
from resolvelib.structs import RequirementInformation, State

from .candidates import Candidate, Req

Reporter = BaseReporter[Req, Candidate, str]
STUCK_AFTER = 3000
STUCK_WINDOW = 2000
SHOWN = 3  # projects, requirers and rejected releases a summary names


class TooBroad(Exception):
    """resolvelib was given more projects than the breadth allows."""


class Stuck(Exception):
    """resolvelib keeps backtracking over the same projects."""


@dataclass
class Backtracking:
    """What drove a resolution's backtracking."""

    conflicts: Counter[str] = field(default_factory=Counter)  # project -> conflicts over it
    requirers: dict[str, Counter[str]] = field(default_factory=dict)  # project -> "who wants what" -> count
    rejected: Counter[str] = field(default_factory=Counter)  # project -> releases rejected
    recent: deque[frozenset[str]] = field(default_factory=lambda: deque(maxlen=STUCK_WINDOW))

    def summary(self) -> list[str]:
        """The projects that conflicted most, each with who wanted what of it most, and the releases
        rejected most: the requirements a pin or a bound would settle."""
        lines = []
        for name, count in self.conflicts.most_common(SHOWN):
            wanted = "; ".join(who for who, _ in self.requirers[name].most_common(SHOWN))
            lines.append(f"{name}: {count} conflicts, between {wanted}")
        rejected = ", ".join(f"{name} ({count})" for name, count in self.rejected.most_common(SHOWN))
        if rejected:
            lines.append(f"releases rejected most: {rejected}")
        return lines


class Watch(BaseReporter[Req, Candidate, str]):
    """The given reporter, told everything; what drives backtracking recorded; TooBroad past `breadth`
    projects, Stuck when backtracking keeps meeting the same projects."""

    def __init__(self, reporter: Reporter, breadth: int) -> None:
        self.reporter, self.breadth = reporter, breadth
        self.identifiers: set[str] = set()
        self.backtracking = Backtracking()

    def adding_requirement(self, requirement: Req, parent: Candidate | None) -> None:
        self.identifiers.add(requirement.identifier)
        if len(self.identifiers) > self.breadth:
            raise TooBroad()
        self.reporter.adding_requirement(requirement, parent)

    def resolving_conflicts(self, causes: Collection[RequirementInformation[Req, Candidate]]) -> None:
        record = self.backtracking
        names = frozenset(cause.requirement.name for cause in causes)
        for cause in causes:
            name = cause.requirement.name
            asker = cause.parent.name if cause.parent is not None else "the input"  # releases of one project together
            record.requirers.setdefault(name, Counter())[f"{asker} wants {cause.requirement}"] += 1
        record.conflicts.update(names)
        record.recent.append(names)
        seen = sum(record.conflicts.values())
        if seen >= STUCK_AFTER and len(record.recent) == STUCK_WINDOW and len(set(record.recent)) == 1:
            raise Stuck()
        self.reporter.resolving_conflicts(causes)

    def rejecting_candidate(self, criterion: Criterion[Req, Candidate], candidate: Candidate) -> None:
        self.backtracking.rejected[candidate.name] += 1
        self.reporter.rejecting_candidate(criterion, candidate)

    def starting(self) -> None:
        self.reporter.starting()

    def starting_round(self, index: int) -> None:
        self.reporter.starting_round(index)

    def ending_round(self, index: int, state: State[Req, Candidate, str]) -> None:
        self.reporter.ending_round(index, state)

    def ending(self, state: State[Req, Candidate, str]) -> None:
        self.reporter.ending(state)

    def pinning(self, candidate: Candidate) -> None:
        self.reporter.pinning(candidate)
