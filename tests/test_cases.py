"""Resolution cases over a frozen snapshot of the real index, offline (tests/frozen.py; refreeze with
`python -m tests.frozen`): each case's requirements, per CUDA major, give exactly the recorded pins,
exclusions and swaps, as resolvelib's functional tests run over their frozen indexes."""

from __future__ import annotations

import pytest

from .frozen import FrozenIndex, cases, compile_case, outcome

CASES = cases()


@pytest.fixture(scope="module")
def index() -> FrozenIndex:
    return FrozenIndex()


def test_there_are_cases():
    assert CASES and all(case.expected for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case(case, index, tmp_path):
    result = compile_case(case, index, tmp_path)
    assert outcome(result) == case.expected


def test_every_cuda_file_holds_only_its_own_major(index, tmp_path):
    from resolver.model.families import FamilyTable

    families = FamilyTable()
    for case in CASES:
        for o in compile_case(case, index, tmp_path).outcomes:
            majors = {families.major_of(pin.name, pin.version) for pin in o.new.pins} - {None}
            assert majors == {o.major}, (case.name, o.major, majors)
