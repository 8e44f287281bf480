"""A refreeze never overwrites a recorded expectation silently (tests/expectations.py): it says what
changed, per major, and keeps what was recorded unless the change is accepted."""

from __future__ import annotations

import copy

from .expectations import differences, merged

RECORDED = {
    "12": {
        "pins": ["cupy-cuda12x==14.2.0", "numpy==2.2.6", "torch==2.10.0 ; platform_machine == \"x86_64\"",
                 "torch==2.10.0+cpu ; platform_machine == \"aarch64\""],
        "excluded": ["nixl-cu13 (required by nixl==1.3.0)"],
        "swapped": [],
    },
    "13": {"pins": ["cupy-cuda13x==14.2.0"], "excluded": [], "swapped": ["cupy-cuda12x -> cupy-cuda13x"]},
}
DOCUMENT = {"about": "a recorded case", "requirements": ["../inputs/x.txt"], "config": {}, "expected": RECORDED}


def refrozen() -> dict:
    new = copy.deepcopy(RECORDED)
    new["12"]["pins"] = ["cuda-pathfinder==1.9.1", "cupy-cuda12x==14.2.0", "numpy==2.3.5",
                         "torch==2.10.0 ; platform_machine == \"x86_64\""]
    new["12"]["excluded"] = []
    new["13"]["swapped"] = []
    new["14"] = {"pins": ["cupy-cuda14x==15.0.0"], "excluded": [], "swapped": []}
    return new


def test_a_changed_expectation_is_kept_and_every_change_is_named_per_major():
    document, changes = merged(DOCUMENT, refrozen(), accept=False)
    assert document == DOCUMENT
    assert changes == [
        "CUDA 12: + cuda-pathfinder==1.9.1",
        "CUDA 12: ~ numpy==2.2.6 -> numpy==2.3.5",
        "CUDA 12: ~ torch==2.10.0 ; platform_machine == \"x86_64\", torch==2.10.0+cpu ; platform_machine == \"aarch64\" "
        "-> torch==2.10.0 ; platform_machine == \"x86_64\"",
        "CUDA 12: - excluded: nixl-cu13 (required by nixl==1.3.0)",
        "CUDA 13: - swapped: cupy-cuda12x -> cupy-cuda13x",
        "CUDA 14: new (1 pins)",
    ]


def test_an_accepted_change_is_written():
    document, changes = merged(DOCUMENT, refrozen(), accept=True)
    assert document == {**DOCUMENT, "expected": refrozen()} and changes


def test_a_case_without_an_expectation_gets_one_and_an_unchanged_one_stays():
    fresh = {key: value for key, value in DOCUMENT.items() if key != "expected"}
    assert merged(fresh, RECORDED, accept=False) == ({**fresh, "expected": RECORDED}, [])
    assert merged(DOCUMENT, copy.deepcopy(RECORDED), accept=False) == (DOCUMENT, [])


def test_removed_pins_and_majors_are_named():
    assert differences(RECORDED, {"12": {**RECORDED["12"], "pins": ["cupy-cuda12x==14.2.0", "numpy==2.2.6"]}}) == [
        "CUDA 12: - torch==2.10.0 ; platform_machine == \"x86_64\", torch==2.10.0+cpu ; platform_machine == \"aarch64\"",
        "CUDA 13: gone",
    ]
