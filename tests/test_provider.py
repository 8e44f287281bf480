"""The rules of a target (Policy) and the resolvelib adapter (CudaProvider), unit by unit, as pip tests its
provider: preference order, narrowing to the Python check and to backtrack causes, candidates, and the
meta-package rules."""

from __future__ import annotations

import json
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version
from resolvelib.structs import RequirementInformation

from resolver.model.distributions import CoreMetadata, parse_requirement
from resolver.model.families import FamilyTable, extras_for_major
from resolver.model.targets import Environment, PythonVersion
from resolver.resolve.candidates import PYTHON, Asker, Candidate, Req
from resolver.resolve.policy import Policy
from resolver.resolve.provider import CudaProvider
from resolver.resolve.selection import SelectionOptions, Selector, Unavailable

from .conftest import ARM, X86, packaging_rank
from .synthetic import BOTH_ARCHES, SyntheticIndex, kv_connectors_index

ENVIRONMENTS = (Environment(PythonVersion(3, 12), X86), Environment(PythonVersion(3, 12), ARM))


def policy(major: int = 13, preferred: dict[str, str] | None = None, pre: bool = False) -> Policy:
    selector = Selector(major, ENVIRONMENTS[0], ENVIRONMENTS, FamilyTable(), SelectionOptions())
    return Policy(selector, {}, {canonicalize_name(k): Version(v) for k, v in (preferred or {}).items()}, pre)


INPUT_LINE = Asker("r.txt", 1)


def req(text: str, origin: Asker = INPUT_LINE) -> Req:
    name, _, specifier = text.partition(" ")
    return Req(canonicalize_name(name), SpecifierSet(specifier), asked_by=origin)


def info(requirement: Req, parent: Candidate | None = None) -> RequirementInformation[Req, Candidate]:
    return RequirementInformation(requirement, parent)


def test_narrowing_decides_the_python_check_first_then_the_causes_of_a_backtrack():
    provider = CudaProvider(policy(), kv_connectors_index())
    everything = ["numpy", PYTHON, "torch"]
    assert list(provider.narrow_requirement_selection(everything, {}, {}, {}, [])) == [PYTHON]
    torch = Candidate(canonicalize_name("torch"), Version("2.11.0"), frozenset(), None)
    causes = [info(req("numpy <2"), parent=torch)]
    assert list(provider.narrow_requirement_selection(["lmcache", "numpy", "torch"], {}, {}, {}, causes)) == ["numpy", "torch"]
    assert list(provider.narrow_requirement_selection(["lmcache"], {}, {}, {}, causes)) == ["lmcache"]


def test_preference_exact_pins_then_the_users_own_requirements_then_the_name():
    provider = CudaProvider(policy(), kv_connectors_index())
    parent = Candidate(canonicalize_name("lmcache"), Version("0.5.6"), frozenset(), None)
    information = {
        "pinned": iter([info(req("pinned ==1.0"), parent)]),
        "top": iter([info(req("top >=1"))]),
        "deep": iter([info(req("deep >=1"), parent)]),
    }
    order = sorted(information, key=lambda name: provider.get_preference(name, {}, {}, information, []))
    assert order == ["pinned", "top", "deep"]


def test_candidates_come_newest_first_but_a_preferred_pin_first_of_all():
    index = kv_connectors_index()
    project = index.project(canonicalize_name("cupy-cuda13x"))
    assert [str(c.version) for c in policy().candidates_in(project, [req("cupy-cuda13x")])] == ["14.2.0", "14.1.0"]
    preferred = policy(preferred={"cupy-cuda13x": "14.1.0"})
    assert [str(c.version) for c in preferred.candidates_in(project, [req("cupy-cuda13x")])] == ["14.1.0", "14.2.0"]


def test_another_majors_release_is_passed_over_with_a_typed_reason():
    index = kv_connectors_index()
    rules = policy(major=12)
    project = index.project(canonicalize_name("cuda-python"))
    assert [str(c.version) for c in rules.candidates_in(project, [req("cuda-python")])] == ["12.9.4"]
    assert rules.record.unavailable["cuda-python"][Version("13.4.4")] == Unavailable("other-major", "a CUDA 13 package")
    assert rules.mismatched_major(canonicalize_name("cupy-cuda13x")) == 13 and rules.mismatched_major(canonicalize_name("numpy")) is None


def test_a_pre_release_only_when_no_final_release_can_be_installed():
    index = kv_connectors_index()
    index.add("tool", "1.0", sdist=True, tags=())
    index.add("tool", "2.0b1", tags=BOTH_ARCHES)
    project = index.project(canonicalize_name("tool"))
    assert [str(c.version) for c in policy().candidates_in(project, [req("tool")])] == ["2.0b1"]
    index.add("tool", "1.5", tags=BOTH_ARCHES)
    project = index.project(canonicalize_name("tool"))
    assert [str(c.version) for c in policy().candidates_in(project, [req("tool")])] == ["1.5"]
    # A final release the resolver has ruled out still counts, as in pip: the pre-release stays out.
    assert [str(c.version) for c in policy().candidates_in(project, [req("tool")], frozenset({Version("1.5")}))] == []
    # The pre-releases held back while looking for a final release come out newest first.
    index.add("tool", "3.0rc1", tags=BOTH_ARCHES)
    project = index.project(canonicalize_name("tool"))
    assert [str(c.version) for c in policy().candidates_in(project, [req("tool !=1.5")])] == ["3.0rc1", "2.0b1"]


def test_a_meta_package_drops_the_other_majors_member_and_requires_its_own():
    index = kv_connectors_index()
    nixl = index.project(canonicalize_name("nixl"))
    rules = policy(major=13)
    candidate = next(rules.candidates_in(nixl, [req("nixl ==1.5.1")]))
    metadata = index.metadata(candidate.choice.release, candidate.choice.metadata_file)
    dependencies = {str(d) for d in rules.dependencies_from(candidate, metadata)}
    assert "nixl-cu12==1.5.1" not in dependencies and "nixl[cu13]==1.5.1" in dependencies
    assert [e.name for e in rules.record.exclusions[(candidate.name, candidate.version, frozenset())]] == ["nixl-cu12"]


def test_lines_naming_one_project_reach_the_resolver_as_one_requirement():
    """resolvelib re-checks every requirement on a project as it adds each: 16,000 lines on one project
    took a minute. Joined, they admit the same releases."""
    index = SyntheticIndex()
    index.add("big", "1.0", [*(f"dep!=0.{n}" for n in range(500)), "dep<3", "dep[fast]>=1", "other"])
    provider = CudaProvider(policy(), index)
    big = next(provider.policy.candidates_in(index.project(canonicalize_name("big")), [req("big")]))
    dependencies = provider.get_dependencies(big)
    assert [d.identifier for d in dependencies] == ["dep", "dep[fast]", "other"]
    joined = dependencies[0]
    assert len(joined.specifier) == 501
    assert joined.admits(Version("1.0")) and not joined.admits(Version("0.7")) and not joined.admits(Version("3.0"))


def test_a_fork_has_the_same_rules_and_a_record_of_its_own():
    rules = policy(major=12)
    fork = rules.fork()
    project = kv_connectors_index().project(canonicalize_name("cuda-python"))
    assert [c.version for c in fork.candidates_in(project, [req("cuda-python")])] == [Version("12.9.4")]
    assert fork.record.unavailable and not rules.record.unavailable


def test_a_release_made_again_never_meets_the_answer_for_the_one_made_before():
    """A synthetic index (and a page read again) makes fresh releases on every call: a yanked release freed
    and a usable one made, most often where the first one was, must each get their own answer. A memo keyed
    by the address (id) answered the second with the first's `Unavailable` in 200 of 200 tries."""
    from resolver.model.distributions import DistFile, Release
    from resolver.resolve.selection import Choice

    selector = Selector(13, ENVIRONMENTS[0], ENVIRONMENTS, FamilyTable(), SelectionOptions())
    wheel, name, version = "pkg-1.0-py3-none-any.whl", canonicalize_name("pkg"), Version("1.0")
    yanked_files = (DistFile(wheel, f"https://index.test/{wheel}", yanked=True),)
    usable_files = (DistFile(wheel, f"https://index.test/{wheel}"),)
    for _ in range(200):
        yanked = Release(name, version, yanked_files)
        assert isinstance(selector.select(yanked), Unavailable)
        del yanked
        usable = Release(name, version, usable_files)
        assert isinstance(selector.select(usable), Choice)
        del usable


def test_each_target_remembers_on_its_own():
    """A copy of the rules (for another thread) and another target in the same environment keep memos of
    their own: no memo lives in a value the threads share (an Environment, a requirement)."""
    rules = policy(major=12)
    project = kv_connectors_index().project(canonicalize_name("cuda-python"))
    list(rules.candidates_in(project, [req("cuda-python")]))
    assert rules.selector.memo.choices and rules.selector.memo.ranks[ENVIRONMENTS[0]]
    assert not rules.fork().selector.memo.choices and not policy(major=12).selector.memo.ranks
    assert not {"wheel_ranks", "applies_memo"} & set(dir(Environment))


def test_find_matches_never_fetches_a_name_of_another_major():
    class NoFetch:
        def project(self, name):
            raise AssertionError(f"fetched {name}")

    provider = CudaProvider(policy(major=12), NoFetch())  # type: ignore[arg-type]
    assert provider.find_matches("cupy-cuda13x", {"cupy-cuda13x": iter([req("cupy-cuda13x")])}, {"cupy-cuda13x": iter(())}) == []
    assert provider.policy.record.mismatched == {"cupy-cuda13x": 13}


FROZEN_METADATA = Path(__file__).parent / "data" / "frozen" / "index" / "metadata"


def test_which_requirements_hold_agrees_with_packaging_on_real_metadata():
    """Markers that only name an extra are decided without evaluating them: on every requirement of the
    frozen snapshot's 309 projects, for the release and each of its extras, the requirements kept are
    those packaging's marker evaluation keeps."""
    checked = 0
    for path in sorted(FROZEN_METADATA.glob("*.json")):
        for fields in json.loads(path.read_text()).values():
            metadata = CoreMetadata(canonicalize_name("x"), Version("1"), tuple(fields["requires_dist"]), None, tuple(fields["provides_extra"]))
            for extras in [frozenset(), *(frozenset({canonicalize_name(e)}) for e in fields["provides_extra"])]:
                for environment in ENVIRONMENTS:
                    rules = Policy(Selector(13, environment, ENVIRONMENTS, FamilyTable(), SelectionOptions()))
                    candidate = Candidate(canonicalize_name("x"), Version("1"), extras, None)
                    kept = [str(r) for r in rules._declared(candidate, metadata)]
                    expected = [text for text in metadata.requires_dist if _holds(parse_requirement(text).marker, extras, environment)]
                    # an extra selecting another major is asked as this major's (`nccl4py[cu12]` is `[cu13]` here)
                    assert kept == [str(Req(canonicalize_name(parse_requirement(t).name), parse_requirement(t).specifier,
                                            extras_for_major({canonicalize_name(e) for e in parse_requirement(t).extras}, 13)))
                                    for t in expected]
                    checked += len(metadata.requires_dist)
    assert checked > 5000


def _holds(marker, extras, environment) -> bool:
    """Whether packaging says a requirement applies: for the release, or (only) for one of its extras."""
    if marker is None:
        return not extras
    markers = {**environment.markers}
    base = marker.evaluate({**markers, "extra": ""})
    return base if not extras else not base and any(marker.evaluate({**markers, "extra": e}) for e in extras)


# Real wheel names (numpy, torch, nvidia-cublas-cu12, regex, pydantic-core on PyPI), and a few odd ones.
WHEEL_NAMES = [
    "numpy-2.2.6-cp312-cp312-macosx_14_0_arm64.whl",
    "numpy-2.2.6-cp312-cp312-win_amd64.whl",
    "numpy-2.2.6-cp312-cp312-musllinux_1_2_x86_64.whl",
    "numpy-2.2.6-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "numpy-2.2.6-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
    "numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "torch-2.11.0-cp312-cp312-manylinux_2_28_x86_64.whl",
    "torch-2.11.0-cp312-none-macosx_11_0_arm64.whl",
    "nvidia_cublas_cu12-12.8.4.1-py3-none-manylinux_2_27_aarch64.whl",
    "nvidia_cublas_cu12-12.8.4.1-py3-none-win_amd64.whl",
    "regex-2026.1.15-cp312-cp312-manylinux_2_34_x86_64.whl",
    "pydantic_core-2.41.5-cp312-cp312-macosx_10_12_x86_64.macosx_11_0_arm64.whl",
    "pydantic_core-2.41.5-cp312-abi3-manylinux_2_31_x86_64.whl",
    "six-1.17.0-py2.py3-none-any.whl",
    "odd-1.0-1-py3-none-ANY.whl",  # a build number, and an upper-case tag
    "odd-1.0-py3-none-any.linux_x86_64.whl",
    "broken-py3-none-any.whl",  # malformed: no version
    "broken-1.0-py3-none.whl",
]


def test_a_wheels_rank_is_what_packaging_reads_from_its_name():
    """Wheels for another system are passed over by the platform part of their names, unparsed: the
    rank is still what packaging's reading of the whole name gives, for every environment."""
    from resolver.model.distributions import DistFile
    from resolver.model.targets import Platform
    from resolver.resolve.selection import compatible_rank

    for platform in (X86, ARM, Platform("manylinux_2_34_x86_64")):
        environment = Environment(PythonVersion(3, 12), platform)
        for filename in WHEEL_NAMES:
            file = DistFile(filename=filename, url=f"https://index.test/{filename}")
            assert compatible_rank(file, environment) == packaging_rank(filename, environment), (filename, platform)
        ranks: dict[str, int | None] = {}  # a target's memo, filled and then read
        for _ in range(2):
            assert [compatible_rank(DistFile(f, f"https://index.test/{f}"), environment, ranks) for f in WHEEL_NAMES] == [
                packaging_rank(f, environment) for f in WHEEL_NAMES]


def test_who_asked_for_a_requirement_is_data_shown_as_messages_name_it():
    """A line of the input, a flag, a release, and a release asking for its wheel's builds per torch version:
    decisions read the fields (which release, which file); messages show them as they always read."""
    nixl = Candidate(canonicalize_name("nixl-cu12"), Version("1.5.0"), frozenset(), None)
    askers = [
        Asker("requirements/kv.txt", 3),
        Asker("--upgrade-package"),
        Asker.of(Candidate(canonicalize_name("lmcache"), Version("0.4.4"), frozenset(), None)),
        Asker.of((nixl.name, nixl.version), "builds for torch 2.11, 2.12, 2.13"),
    ]
    assert [str(asker) for asker in askers] == [
        "requirements/kv.txt:3", "--upgrade-package", "lmcache==0.4.4", "nixl-cu12==1.5.0 (builds for torch 2.11, 2.12, 2.13)"]
    assert [asker.is_release(nixl) for asker in askers] == [False, False, False, True]
    assert askers[0].file == "requirements/kv.txt" and askers[3].release == (nixl.name, nixl.version)
    assert len({req("torch", asker) for asker in askers}) == 4  # who asked is part of what a requirement is


def test_a_release_whose_dependencies_cannot_be_read_is_no_candidate_again():
    """Once its metadata turned out unreadable, a release is not offered again: else the resolver, backtracking
    elsewhere, pinned it over and over (vllm 0.6.3.post1's pyairports sdist: 20,000 rounds, naming nothing)."""
    index = SyntheticIndex()
    for version in ("0.0.1", "0.0.2"):
        index.add("pyairports", version, tags=BOTH_ARCHES)
    rules = policy()
    project = index.project(canonicalize_name("pyairports"))
    first = next(rules.candidates_in(project, (req("pyairports"),)))
    assert str(first.version) == "0.0.2"
    rules.unreadable(first, "it is a source distribution with Metadata-Version 2.1")
    assert [str(c.version) for c in rules.candidates_in(project, (req("pyairports"),))] == ["0.0.1"]
    assert rules.record.unavailable["pyairports"][Version("0.0.2")].kind == "unreadable"
