"""Hand-stated resolution cases over the frozen snapshot (tests/data/frozen/cases/hand, format in
tests/frozen.py), as resolvelib's functional tests state theirs: per CUDA major the pins a person reasoned
out (all of them, or the ones that matter), the exclusions and swaps, or the failure and its exit code; and
the projects whose page no part of the run (resolvers, the crawl ahead of them) may ask for."""

from __future__ import annotations

import json
import logging

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from resolver.errors import CudaConstraintsError

from .frozen import FROZEN, FrozenIndex, cases, compile_hand_case, hand_cases, outcome

CASES = hand_cases()


@pytest.fixture(scope="module")
def dependency_names() -> set[str]:
    """Every project the snapshot has or names as a dependency: an `unvisited` name outside it is a typo,
    and would pass whatever the resolver does."""
    names = {path.stem for path in (FROZEN / "index" / "projects").glob("*.json")}
    for path in (FROZEN / "index" / "metadata").glob("*.json"):
        for fields in json.loads(path.read_text()).values():
            names.update(canonicalize_name(Requirement(line).name) for line in fields["requires_dist"])
    return names


def test_there_are_hand_cases_with_complete_pins_and_conflicts():
    expectations = [expected for case in CASES for expected in case.expected.values()]
    assert len(CASES) >= 10
    assert sum("pins" in expected for expected in expectations) >= 5
    assert sum("conflict" in expected for expected in expectations) >= 2
    assert not {case.name for case in CASES} & {case.name for case in cases()}  # a refreeze never sees them


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hand_case(case, dependency_names, tmp_path, caplog):
    for major, expected in case.expected.items():
        index = FrozenIndex()
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            try:
                result = compile_hand_case(case, int(major), index, tmp_path / major)
            except CudaConstraintsError as error:
                assert "conflict" in expected, f"CUDA {major}: {error.message()}"
                message = error.message()
                assert error.exit_code == expected["conflict"]["exit_code"], message
                missing = [part for part in expected["conflict"]["message"] if part not in message]
                assert not missing, f"CUDA {major}: {missing} not in:\n{message}"
            else:
                assert "conflict" not in expected, f"CUDA {major} resolved: {outcome(result)}"
                found = outcome(result)[major]
                if "pins" in expected:
                    assert found["pins"] == expected["pins"], major
                else:
                    assert set(expected["pins_include"]) <= set(found["pins"]), (major, found["pins"])
                assert found["excluded"] == expected.get("excluded", []), major
                assert found["swapped"] == expected.get("swapped", []), major
                pinned = {canonicalize_name(Requirement(line).name) for line in found["pins"]}
                assert pinned <= index.asked, "the index records what it is asked for"
        unread = [record.getMessage() for record in caplog.records if "not in the frozen snapshot" in record.getMessage()]
        assert not unread, f"CUDA {major}: the snapshot lacks what the case needs: {unread}"
        unvisited = {*case.unvisited, *(canonicalize_name(name) for name in expected.get("unvisited", ()))}
        assert unvisited <= dependency_names, unvisited - dependency_names
        assert not unvisited & index.asked, f"CUDA {major}: asked for {sorted(unvisited & index.asked)}"
