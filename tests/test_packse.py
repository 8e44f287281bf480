"""packse's 150 resolution scenarios (the suite uv's resolver is tested with), each compiled against its own
index served on 127.0.0.1 and compared with the scenario's expectation (tests/packse.py says how a
scenario becomes an index and a compile).

Where this tool's documented policy (README, "How it works") differs from packse's expectation, the
scenario is in `DISAGREEMENTS` with the reason: a listed scenario that starts to match fails, as does an
unlisted one that does not. uv 0.13.9 meets 138 of the 150 expectations; here 138 match.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .index_server import IndexServer
from .packse import Outcome, Scenario, ScenarioIndexes, load_scenarios, run_scenario
from .synthetic import SyntheticIndex

PRERELEASES = ("pre-releases: one a specifier names, or the newest when no final release matches, is taken without "
               "--pre (PEP 440, as pip); packse wants an opt-in")
YANKED = "a yanked release pinned with `==` is taken, below the top level too (PEP 592, as pip)"
PYTHON_UPPER_BOUND = "requires-python is honoured whole, its upper bound too (as pip; uv ignores upper bounds)"
NO_BINARY = "no --no-binary: this tool never builds, and takes the wheel"
PER_TARGET = ("universal: each target is resolved on its own, so the sibling requirements pin c per platform; "
              "uv's one universal resolution does not fork there, and fails")
DISAGREEMENTS = {
    "package-only-prereleases-in-range": PRERELEASES,
    "transitive-package-only-prereleases-in-range": PRERELEASES,
    "transitive-prerelease-and-stable-dependency": PRERELEASES,
    "transitive-prerelease-and-stable-dependency-many-versions": PRERELEASES,
    "transitive-prerelease-and-stable-dependency-many-versions-holes": PRERELEASES,
    "transitive-yanked-and-unyanked-dependency": YANKED,
    "python-less-than-current": PYTHON_UPPER_BOUND,
    "only-wheels-no-binary": NO_BINARY,
    "conflict-in-fork": "universal: the conflict is on sys_platform 'os1' and 'os2', which no target is: nothing requires a here",
    "fork-non-local-fork-marker-direct": PER_TARGET,
    "fork-non-local-fork-marker-transitive": PER_TARGET,
    "preferences-dependent-forking-conflicting": PER_TARGET.replace("pin c", "pin foo and bar"),
}
SCENARIOS = {scenario.name: scenario for scenario in load_scenarios()}


@pytest.fixture(scope="module")
def served():
    """One server for every scenario's index (`/<scenario>/simple/`)."""
    indexes = ScenarioIndexes()
    with IndexServer(indexes) as server:
        yield server.url, indexes


@pytest.fixture
def compile_scenario(served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def run(scenario: Scenario, change: Callable[[SyntheticIndex], None] | None = None) -> Outcome:
        monkeypatch.chdir(tmp_path)
        return run_scenario(scenario, *served, tmp_path, change)

    return run


def test_the_vendored_scenarios_are_all_here():
    assert len(SCENARIOS) == 150
    assert set(DISAGREEMENTS) <= set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name, compile_scenario):
    scenario = SCENARIOS[name]
    outcome = compile_scenario(scenario)
    assert "Traceback" not in outcome.stderr
    expected = f"satisfiable: {scenario.expected_pins or 'yes'}" if scenario.satisfiable else "unsatisfiable"
    if name in DISAGREEMENTS:
        assert not outcome.matches(scenario), f"{name} now meets packse's expectation; drop it from DISAGREEMENTS"
    else:
        assert outcome.matches(scenario), f"{name}: expected {expected}; got {outcome.summary()}"


# -- the scenarios that showed three bugs, and what their messages say ---------------------------------------------


def test_a_project_no_index_has_below_the_requirements_is_backtracked_past(compile_scenario):
    """b 3.0.0 requires c, which does not exist: b 2.0.0 is taken, as pip and uv take it."""
    assert compile_scenario(SCENARIOS["example"]).pins == {"a": {"1.0.0"}, "b": {"2.0.0"}}


def test_a_missing_project_below_the_requirements_is_explained_with_the_chain_that_asked_for_it(compile_scenario):
    outcome = compile_scenario(SCENARIOS["transitive-requires-package-does-not-exist"])
    assert outcome.exit_code == 4, outcome.stderr
    assert "a 1.0.0, wanted as a by requirements.txt:1, requires b\n" in outcome.stderr
    assert "  b: no project named 'b' on http://127.0.0.1:" in outcome.stderr
    assert "Check the spelling" not in outcome.stderr


def test_a_missing_project_the_user_names_is_still_an_input_error(compile_scenario):
    outcome = compile_scenario(SCENARIOS["requires-package-does-not-exist"])
    assert outcome.exit_code == 2, outcome.stderr
    assert "requirements.txt:1: a: no project named 'a' on " in outcome.stderr and "Check the spelling" in outcome.stderr


def test_a_small_sdist_an_html_page_lists_without_a_size_is_read(compile_scenario):
    """The sdist is 476 bytes with static metadata; a PEP 503 page lists no size: it is downloaded (under the
    same 1 MiB cap) and its PKG-INFO read."""
    outcome = compile_scenario(SCENARIOS["no-wheels"])
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.pins == {"a": {"1.0.0"}}


def test_an_sdist_over_the_cap_that_an_html_page_lists_without_a_size_is_unusable_not_fatal(compile_scenario):
    def padded(index: SyntheticIndex) -> None:
        for release in index.releases["a"]:
            release.sdist_padding = 2 * 1024 * 1024

    outcome = compile_scenario(SCENARIOS["no-wheels"], padded)
    assert outcome.exit_code == 4, outcome.stderr
    assert "warning: skipping a 1.0.0: cannot read the dependencies of a-1.0.0.tar.gz" in outcome.stderr
    assert "the file is over 1024 KiB" in outcome.stderr


def test_a_dependency_needed_on_one_platform_needs_a_wheel_there_only(compile_scenario, tmp_path):
    """`win-only; sys_platform == 'win32'` has a Windows wheel only: Linux does not need it, so it is pinned
    for Windows, and Linux resolves without it."""
    outcome = compile_scenario(SCENARIOS["requires-python-subset"])
    assert outcome.exit_code == 0, outcome.stderr
    assert 'win-only==1.0.0 ; sys_platform == "win32" and platform_machine == "AMD64"\n' in (tmp_path / "constraints" / "cu12.txt").read_text()


def test_a_dependency_a_platform_marker_leads_to_needs_a_wheel_on_that_platform_only(compile_scenario, tmp_path):
    """a requires b on x86_64 only, c on aarch64 only; neither has a wheel for macOS or Windows, and each
    release serves the platforms that need it (at Python 3.13, which their wheels are for)."""
    outcome = compile_scenario(SCENARIOS["specific-architecture"])
    assert outcome.exit_code == 0, outcome.stderr
    text = (tmp_path / "constraints" / "cu12.txt").read_text()
    assert 'b==1.0.0 ; sys_platform == "linux" and platform_machine == "x86_64"\n' in text, text
    assert 'c==1.0.0 ; sys_platform == "linux" and platform_machine == "aarch64"\n' in text, text
