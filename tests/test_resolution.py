"""CUDA-aware resolution on synthetic indexes shaped like the real one."""

from __future__ import annotations

import os

import pytest
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from resolvelib.structs import RequirementInformation

from resolver.errors import NoMemberForMajor, ResolutionFailed
from resolver.files.config import Config
from resolver.model.families import Family
from resolver.model.targets import PythonVersion
from resolver.resolve.candidates import Asker, Req

from .conftest import ARM, X86
from .synthetic import BOTH_ARCHES

KV = """\
lmcache >= 0.3.9
cupy-cuda13x != 14.1.0
nixl >= 1.1.0
mooncake-transfer-engine >= 0.3.12
"""

CUDA_12_ONLY = ("nixl-cu12", "cupy-cuda12x", "nvidia-cublas-cu12")
CUDA_13_ONLY = ("nixl-cu13", "cupy-cuda13x", "nvidia-nccl-cu13", "nvidia-cublas", "mooncake-transfer-engine-cuda13")


def test_cuda13_file_holds_only_cuda13_variants(project):
    project.write(KV)
    project.compile()
    pins = project.pins(13)
    assert pins["nixl"] == "1.5.1"
    assert pins["nixl-cu13"] == "1.5.1"
    assert pins["torch"] == "2.11.0"
    assert pins["cupy-cuda13x"] == "14.2.0"
    assert pins["lmcache"] == "0.5.6"
    assert pins["cuda-python"] == "13.4.4"
    assert pins["mooncake-transfer-engine-cuda13"] == "0.3.13"
    assert not set(pins) & set(CUDA_12_ONLY)
    assert "mooncake-transfer-engine" not in pins
    text = project.text(13)
    assert "#   nixl-cu12  (required by nixl==1.5.1)" in text
    assert "#   mooncake-transfer-engine>=0.3.12  ->  mooncake-transfer-engine-cuda13>=0.3.12  (requirements/kv.txt:4)" in text


def test_cuda12_backtracks_to_releases_whose_whole_tree_fits(project):
    project.write(KV)
    project.compile()
    pins = project.pins(12)
    assert pins["lmcache"] == "0.4.4"  # >= 0.4.5 requires cupy-cuda13x
    assert pins["torch"] == "2.10.0"  # >= 2.11 requires CUDA 13 libraries
    assert pins["cupy-cuda12x"] == "14.2.0"  # swapped from cupy-cuda13x, != 14.1.0 kept
    assert pins["mooncake-transfer-engine"] == "0.3.13"  # the unsuffixed name is the CUDA 12 build
    assert pins["nixl-cu12"] == "1.5.1"
    assert not set(pins) & set(CUDA_13_ONLY)
    assert "cuda-toolkit" not in pins and "cuda-python" not in pins
    text = project.text(12)
    assert "#   nixl-cu13  (required by nixl==1.5.1)" in text
    assert "#   cupy-cuda13x!=14.1.0  ->  cupy-cuda12x!=14.1.0  (requirements/kv.txt:2)" in text


def test_platform_only_dependencies_carry_markers(project):
    project.write("torch\n")
    project.compile(majors=(12,))
    assert project.pins(12)["nvidia-cublas-cu12"] == '12.8.4.1 ; platform_machine == "x86_64"'
    assert project.pins(12)["torch"] == "2.10.0"
    assert 'nvidia-cublas-cu12==12.8.4.1 ; platform_machine == "x86_64"\n    # via torch\n' in project.text(12)


def test_old_nixl_shape_gets_its_member_through_the_extra(project):
    # nixl 0.9-1.0 hard-required nixl-cu12 and offered [cu12]/[cu13] extras.
    project.write("nixl < 1.1\n")
    project.compile()
    assert project.pins(13)["nixl"] == "1.0.0"
    assert project.pins(13)["nixl-cu13"] == "1.0.0"
    assert "nixl-cu12" not in project.pins(13)
    assert "#   nixl-cu12  (required by nixl==1.0.0)" in project.text(13)
    assert project.pins(12)["nixl-cu12"] == "1.0.0"
    assert "nixl-cu13" not in project.pins(12)
    assert "excluded" in project.text(12) and "#   (none)" in project.text(12).split("# swapped")[0]


def test_meta_without_extras_requires_the_member_by_name(project):
    project.index.add("kvmeta", "2.0", ["kvmeta-cu12==2.0", "kvmeta-cu13==2.0"])
    project.index.add("kvmeta-cu12", "2.0", tags=BOTH_ARCHES)
    project.index.add("kvmeta-cu13", "2.0", tags=BOTH_ARCHES)
    config = Config(root=project.root, extra_families=(Family("kvmeta", pattern="kvmeta-cu{major}", meta="kvmeta"),))
    project.write("kvmeta\n")
    project.compile(config=config)
    assert project.pins(13) == {"kvmeta": "2.0", "kvmeta-cu13": "2.0"}
    assert project.pins(12) == {"kvmeta": "2.0", "kvmeta-cu12": "2.0"}
    assert "#   kvmeta-cu12  (required by kvmeta==2.0)" in project.text(13)


def test_version_major_family_picks_the_matching_major(project):
    project.write("cuda-python >= 12\n")
    project.compile()
    assert project.pins(12) == {"cuda-python": "12.9.4"}
    assert project.pins(13) == {"cuda-python": "13.4.4"}


def test_cuda13_only_library_cannot_be_resolved_for_cuda12(project):
    project.index.add("nvidia-cufft", "12.2.0.57", tags=BOTH_ARCHES)  # the unsuffixed name is CUDA 13 only
    project.write("nvidia-cufft\n")
    with pytest.raises(ResolutionFailed) as failure:
        project.compile(majors=(12,))
    assert "nvidia-cufft" in str(failure.value) and "a CUDA 13 package" in str(failure.value)
    project.compile(majors=(13,))
    assert project.pins(13) == {"nvidia-cufft": "12.2.0.57"}


def test_impossible_major_names_the_chain_and_writes_nothing(project):
    project.write("lmcache >= 0.4.5\n")
    project.compile(majors=(13,))
    before = project.text(13)
    mtime = os.stat(project.output / "cu13.txt").st_mtime_ns
    with pytest.raises(ResolutionFailed) as failure:
        project.compile(majors=(12, 13))
    message = str(failure.value)
    assert failure.value.exit_code == 4
    assert "CUDA 12" in message
    assert "every lmcache that fits (0.4.5 and 0.5.6)" in message
    assert "cupy-cuda13x" in message and "a CUDA 13 package" in message
    assert "requirements/kv.txt:1" in message
    assert not (project.output / "cu12.txt").exists()
    assert project.text(13) == before and os.stat(project.output / "cu13.txt").st_mtime_ns == mtime


def test_meta_without_a_member_for_the_major_is_a_clear_error(project):
    project.write("nixl >= 1.1.0\n")
    with pytest.raises(NoMemberForMajor) as failure:
        project.compile(majors=(14,))
    assert failure.value.exit_code == 4
    assert "nixl has no CUDA 14 member" in str(failure.value) and "nixl-cu14" in str(failure.value)
    assert not project.output.exists()


def test_existing_pins_are_kept_until_upgraded(project):
    project.write("numpy\ncupy-cuda13x\n")
    project.compile(majors=(13,))
    project.index.add("numpy", "2.3.0", tags=BOTH_ARCHES)
    project.index.add("cupy-cuda13x", "14.3.0", ["numpy"], tags=BOTH_ARCHES)
    project.compile(majors=(13,))
    assert project.pins(13) == {"numpy": "2.2.6", "cupy-cuda13x": "14.2.0"}
    project.compile(majors=(13,), upgrade_packages={"numpy": None})
    assert project.pins(13) == {"numpy": "2.3.0", "cupy-cuda13x": "14.2.0"}
    project.compile(majors=(13,), upgrade=True)
    assert project.pins(13) == {"numpy": "2.3.0", "cupy-cuda13x": "14.3.0"}


def test_upgrade_package_to_a_version(project):
    from packaging.version import Version

    project.write("cupy-cuda13x\n")
    project.compile(majors=(13,))
    project.compile(majors=(13,), upgrade_packages={"cupy-cuda13x": Version("14.1.0")})
    assert project.pins(13)["cupy-cuda13x"] == "14.1.0"


def test_a_rerun_gives_the_same_bytes_and_leaves_the_file_alone(project):
    project.write(KV)
    first = project.compile()
    assert all(o.changed for o in first.outcomes)
    texts = {m: project.text(m) for m in (12, 13)}
    mtimes = {m: os.stat(project.output / f"cu{m}.txt").st_mtime_ns for m in (12, 13)}
    second = project.compile()
    assert not any(o.changed for o in second.outcomes)
    assert {m: project.text(m) for m in (12, 13)} == texts
    assert {m: os.stat(project.output / f"cu{m}.txt").st_mtime_ns for m in (12, 13)} == mtimes


def test_dry_run_writes_nothing(project):
    project.write(KV)
    result = project.compile(dry_run=True)
    assert not project.output.exists()
    assert {o.major for o in result.outcomes} == {12, 13}


def test_pre_releases_only_when_asked_or_nothing_else_fits(project):
    project.index.add("sampler", "1.0", tags=BOTH_ARCHES)
    project.index.add("sampler", "1.1rc1", tags=BOTH_ARCHES)
    project.index.add("onlypre", "0.1b1", tags=BOTH_ARCHES)
    project.write("sampler\nonlypre\n")
    project.compile(majors=(13,))
    assert project.pins(13) == {"sampler": "1.0", "onlypre": "0.1b1"}
    project.compile(majors=(13,), pre=True, upgrade=True)
    assert project.pins(13)["sampler"] == "1.1rc1"
    project.write("sampler >= 1.1rc1\nonlypre\n")
    project.compile(majors=(13,), upgrade=True)
    assert project.pins(13)["sampler"] == "1.1rc1"


def test_yanked_release_only_when_pinned_exactly(project):
    project.index.add("numpy", "2.3.0", tags=BOTH_ARCHES, yanked=True)
    project.write("numpy\n")
    project.compile(majors=(13,))
    assert project.pins(13) == {"numpy": "2.2.6"}
    project.write("numpy == 2.3.0\n")
    project.compile(majors=(13,))
    assert project.pins(13) == {"numpy": "2.3.0"}


def test_requires_python_is_honoured_per_target_python(project):
    project.index.add("numpy", "2.4.0", tags=("cp313-cp313-manylinux_2_28_x86_64", "cp313-cp313-manylinux_2_28_aarch64", *BOTH_ARCHES), requires_python=">=3.13")
    project.write("numpy\n")
    project.compile(majors=(13,), pythons=(PythonVersion(3, 12), PythonVersion(3, 13)))
    lines = project.pins(13)["numpy"]
    assert '2.2.6 ; python_version == "3.12"' in lines and '2.4.0 ; python_version == "3.13"' in lines


def test_a_release_needs_a_wheel_for_every_platform(project):
    project.index.add("numpy", "2.3.0", tags=("cp312-cp312-manylinux_2_28_x86_64",), sdist=True)
    project.write("numpy\n")
    project.compile(majors=(13,))
    assert project.pins(13) == {"numpy": "2.2.6"}
    project.compile(majors=(13,), allow_sdist_packages=frozenset({"numpy"}), upgrade=True)
    assert project.pins(13) == {"numpy": "2.3.0"}
    assert "# builds from source (no wheel for the platform):\n#   numpy==2.3.0 on manylinux_2_28_aarch64\n" in project.text(13)
    assert "# options: --index-url https://index.test/simple --allow-sdist-package numpy\n" in project.text(13)


def test_a_release_needs_wheels_only_where_the_markers_on_its_way_lead(project):
    """`app` is required on aarch64 only and requires `armlib` with no marker of its own: armlib's newest
    release, with no x86_64 wheel, serves every platform that needs it."""
    project.index.add("app", "1.0", ["armlib"], tags=BOTH_ARCHES)
    project.index.add("armlib", "1.0", tags=BOTH_ARCHES)
    project.index.add("armlib", "2.0", tags=("cp312-cp312-manylinux_2_28_aarch64",))
    project.write('numpy\napp ; platform_machine == "aarch64"\n')
    project.compile(majors=(13,))
    assert project.pins(13) == {"numpy": "2.2.6", "app": '1.0 ; platform_machine == "aarch64"', "armlib": '2.0 ; platform_machine == "aarch64"'}


def test_top_level_extras_and_constraint_files(project):
    project.write("cuda-toolkit[cublas]\n-c limits.txt\n")
    (project.requirements.parent / "limits.txt").write_text("cuda-toolkit < 13.2\n")
    project.compile(majors=(12,))
    assert project.pins(12) == {"cuda-toolkit": "12.9.1", "nvidia-cublas-cu12": "12.8.4.1"}
    with pytest.raises(ResolutionFailed):
        project.compile(majors=(13,))  # the constraint leaves no CUDA 13 toolkit


def test_auto_finds_the_majors_every_family_has(project):
    project.write(KV)
    result = project.compile(majors="auto")
    assert [o.major for o in result.outcomes] == [12, 13]
    project.index.add("nixl-cu14", "1.5.1", tags=BOTH_ARCHES)
    result = project.compile(majors="auto")
    assert [o.major for o in result.outcomes] == [12, 13]
    assert "cupy" in result.skipped_majors[14] and "mooncake-transfer-engine" in result.skipped_majors[14]


def test_auto_adds_a_new_major_when_its_members_appear(project):
    project.write("nixl\n")
    project.index.add("nixl-cu14", "1.5.1", ["numpy"], tags=BOTH_ARCHES)
    result = project.compile(majors="auto")
    assert [o.major for o in result.outcomes] == [12, 13, 14]
    assert project.pins(14)["nixl-cu14"] == "1.5.1"
    assert "#   nixl-cu12  (required by nixl==1.5.1)" in project.text(14)
    assert "#   nixl-cu13  (required by nixl==1.5.1)" in project.text(14)


def test_single_platform_file_has_no_markers(project):
    project.write("torch\n")
    project.compile(majors=(12,), platforms=(X86,))
    assert project.pins(12)["nvidia-cublas-cu12"] == "12.8.4.1"
    assert "targets: cp312 manylinux_2_28 x86_64" in project.text(12)
    project.compile(majors=(12,), platforms=(ARM,), upgrade=True)
    assert "nvidia-cublas-cu12" not in project.pins(12)


def _target_setup(kv_index, major, platform):
    from packaging.specifiers import SpecifierSet

    from resolver.model.families import FamilyTable
    from resolver.model.targets import Environment, PythonVersion, Target
    from resolver.resolve.candidates import Asker, Req
    from resolver.resolve.policy import Policy
    from resolver.resolve.provider import CudaProvider
    from resolver.resolve.selection import SelectionOptions, Selector

    environments = tuple(Environment(PythonVersion(3, 12), p) for p in (X86, ARM))
    environment = next(e for e in environments if e.platform == platform)
    roots = [
        Req("lmcache", SpecifierSet(">=0.3.9"), asked_by=Asker("kv.txt", 1)),
        Req("nixl", SpecifierSet(">=1.1.0"), asked_by=Asker("kv.txt", 3)),
        Req(f"cupy-cuda{major}x", SpecifierSet("!=14.1.0"), asked_by=Asker("kv.txt", 2)),
    ]

    def provider(preferred=None):
        selector = Selector(major, environment, environments, FamilyTable(), SelectionOptions())
        return CudaProvider(Policy(selector, {}, preferred or {}), kv_index)

    return Target(major, environment), roots, provider


@pytest.mark.parametrize("major", [12, 13])
@pytest.mark.parametrize("platform", [X86, ARM])
def test_preferred_pins_that_fit_are_the_resolution(kv_index, major, platform):
    from resolver.resolve.resolution import resolve_target, settle_by_walk

    target, roots, provider = _target_setup(kv_index, major, platform)
    resolved = resolve_target(provider(), target, roots)
    preferred = {name: pin.version for name, pin in resolved.pins.items()}
    assert settle_by_walk(provider(preferred), roots) is not None  # one walk, no resolvelib
    again = resolve_target(provider(preferred), target, roots)
    assert {n: (p.version, p.parents, p.file) for n, p in again.pins.items()} == {
        n: (p.version, p.parents, p.file) for n, p in resolved.pins.items()
    }
    assert again.exclusions == resolved.exclusions


def test_preferred_pins_that_no_longer_fit_fall_back_to_resolving(kv_index):
    from packaging.version import Version

    from resolver.resolve.resolution import resolve_target, settle_by_walk

    target, roots, provider = _target_setup(kv_index, 12, X86)
    stale = {"lmcache": Version("0.5.6"), "nixl": Version("1.5.1"), "cupy-cuda12x": Version("14.1.0")}
    assert settle_by_walk(provider(stale), roots) is None
    resolved = resolve_target(provider(stale), target, roots)
    assert resolved.pins["lmcache"].version == Version("0.4.4")
    assert resolved.pins["cupy-cuda12x"].version == Version("14.2.0")


def _walk_setup(index, platform, roots_text):
    """A target of `index` (CUDA 13, one platform), its roots, and providers preferring given pins."""
    from resolver.model.families import FamilyTable
    from resolver.model.targets import Environment, Target
    from resolver.resolve.policy import Policy
    from resolver.resolve.provider import CudaProvider
    from resolver.resolve.selection import SelectionOptions, Selector

    environments = tuple(Environment(PythonVersion(3, 12), p) for p in (X86, ARM))
    environment = next(e for e in environments if e.platform == platform)
    roots = [_root(text) for text in roots_text]

    def provider(preferred=None, source=index):
        selector = Selector(13, environment, environments, FamilyTable(), SelectionOptions())
        return CudaProvider(Policy(selector, {}, preferred or {}), source)

    return Target(13, environment), roots, provider


def _root(text):
    from packaging.requirements import Requirement

    from resolver.resolve.candidates import Asker, Req

    parsed = Requirement(text)
    return Req(parsed.name, parsed.specifier, asked_by=Asker("requirements.txt", 1))


def _versions(resolution):
    return {name: str(pin.version) for name, pin in resolution.pins.items()}


def _walk_index(*releases):
    from .synthetic import SyntheticIndex

    index = SyntheticIndex()
    for name, version, requires in releases:
        index.add(name, version, requires)
    return index


def test_a_platform_with_a_project_of_its_own_is_settled_by_one_walk():
    """sglang: aarch64 agrees with x86_64 but for decord2, which only aarch64 requires."""
    from resolver.resolve.resolution import resolve_target, settle_by_walk

    index = _walk_index(
        ("app", "1.0", ("base", 'armonly; platform_machine == "aarch64"')),
        ("base", "1.0", ()), ("base", "2.0", ()),
        ("armonly", "1.0", ()), ("armonly", "2.0", ("base>=1",)),
    )
    _, roots, provider = _walk_setup(index, X86, ["app"])
    target, _, arm = _walk_setup(index, ARM, ["app"])
    first = {name: pin.version for name, pin in resolve_target(provider(), target, roots).pins.items()}
    assert settle_by_walk(arm(first), roots) is not None
    assert _versions(resolve_target(arm(first), target, roots)) == _versions(resolve_target(arm(), target, roots)) == {
        "app": "1.0", "base": "2.0", "armonly": "2.0",
    }


def test_a_walk_that_took_a_release_a_later_requirement_rejects_leaves_it_to_resolvelib():
    from packaging.version import Version

    from resolver.resolve.resolution import resolve_target, settle_by_walk

    # The walk meets `lib` through app first and takes 2.0; `other` then requires lib<2.
    index = _walk_index(("app", "1.0", ("other", "lib")), ("other", "1.0", ("lib<2",)), ("lib", "1.0", ()), ("lib", "2.0", ()))
    target, roots, provider = _walk_setup(index, X86, ["app"])
    preferred = {"app": Version("1.0")}
    assert settle_by_walk(provider(preferred), roots) is None
    assert _versions(resolve_target(provider(preferred), target, roots)) == {"app": "1.0", "other": "1.0", "lib": "1.0"}


def test_a_walk_knows_the_top_level_requirements_and_meets_exact_pins_first():
    """As resolvelib does: it knows every top-level requirement from the start, and decides `==` first."""
    from packaging.version import Version

    from resolver.resolve.resolution import resolve_target, settle_by_walk

    index = _walk_index(
        ("app", "1.0", ("lib", "pinner")),
        ("pinner", "1.0", ("lib==1.0", "user")),  # `user` requires lib too, and is met before lib==1.0 otherwise
        ("user", "1.0", ("lib",)),
        ("tool", "1.0", ("lib",)),
        ("lib", "1.0", ()), ("lib", "1.5", ()), ("lib", "2.0", ()),
    )
    preferred = {"app": Version("1.0")}
    target, roots, provider = _walk_setup(index, X86, ["app"])
    assert settle_by_walk(provider(preferred), roots) is not None
    assert _versions(resolve_target(provider(preferred), target, roots))["lib"] == "1.0"
    target, roots, provider = _walk_setup(index, X86, ["lib<2", "tool"])
    assert settle_by_walk(provider(preferred), roots) is not None
    assert _versions(resolve_target(provider(preferred), target, roots)) == {"lib": "1.5", "tool": "1.0"}


def test_a_walk_whose_pin_is_not_what_all_its_requirements_choose_leaves_it_to_resolvelib():
    """`lib` taken for a plain requirement (the newest final release) satisfies `lib>=0.9b1` too, but that
    specifier admits pre-releases, and with both known the first candidate is 2.0b1."""
    from packaging.version import Version

    from resolver.resolve.resolution import resolve_target, settle_by_walk

    index = _walk_index(
        ("app", "1.0", ("lib>=0.9b1", "user")), ("user", "1.0", ("lib",)), ("lib", "1.0", ()), ("lib", "2.0b1", ()),
    )
    target, roots, provider = _walk_setup(index, X86, ["app"])
    preferred = {"app": Version("1.0")}
    assert settle_by_walk(provider(preferred), roots) is None
    assert _versions(resolve_target(provider(preferred), target, roots))["lib"] == "2.0b1"


def test_a_walk_needing_what_the_offline_cache_lacks_leaves_it_to_resolvelib():
    """The walk may look where resolvelib would not; data never fetched is no reason to fail a run."""
    from packaging.version import Version

    from resolver.errors import OfflineCacheMiss
    from resolver.resolve.resolution import settle_by_walk

    index = _walk_index(("app", "1.0", ("lib",)), ("lib", "1.0", ()), ("lib", "2.0", ()))

    class Offline:
        def __getattr__(self, name):
            return getattr(index, name)

        def metadata(self, release, file):
            if release.name == "lib":
                raise OfflineCacheMiss(file.url)
            return index.metadata(release, file)

    _, roots, provider = _walk_setup(index, X86, ["app"])
    assert settle_by_walk(provider({"app": Version("1.0")}, Offline()), roots) is None


def test_every_failing_major_is_reported(project):
    from resolver.errors import SeveralFailed

    project.write("nixl >= 1.1.0\ncupy-cuda13x > 99\n")
    with pytest.raises(SeveralFailed) as failure:
        project.compile()
    message = str(failure.value)
    assert failure.value.exit_code == 4
    assert "CUDA 12 (" in message and "cupy-cuda12x>99" in message
    assert "CUDA 13 (" in message and "cupy-cuda13x>99" in message
    assert not project.output.exists()


def test_matches_are_found_when_backtracking_left_only_incompatibilities(kv_index):
    """resolvelib may ask about a project whose requirements were all withdrawn (apache-airflow with sqlalchemy<2)."""
    from packaging.version import Version

    from resolver.resolve.candidates import Candidate

    _, _, provider = _target_setup(kv_index, 13, X86)
    incompatible = [Candidate("numpy", Version("2.2.6"), frozenset(), None)]
    matches = provider().find_matches("numpy", {"numpy": iter(())}, {"numpy": iter(incompatible)})
    assert [str(c.version) for c in (matches() if callable(matches) else matches)] == []
    found = provider().find_matches("cupy-cuda13x", {"cupy-cuda13x": iter(())}, {"cupy-cuda13x": iter(())})
    assert [str(c.version) for c in found()] == ["14.2.0", "14.1.0"]


def test_pre_releases_are_the_fallback_only_when_no_final_release_can_be_installed(project):
    """dbt-core-experimental-parser: every final release is sdist-only, a pre-release has wheels."""
    project.index.add("parser", "2.0.8", sdist=True, tags=())
    project.index.add("parser", "2.0.0a4", tags=BOTH_ARCHES)
    project.write("parser\n")
    project.compile(majors=(13,))
    assert project.pins(13) == {"parser": "2.0.0a4"}


def test_a_failure_lists_the_newest_passed_over_releases_and_one_reason_per_python_bound(project):
    for number in range(8):
        bound = ">=3.13" if number < 4 else (">=3.7, <3.11" if number % 2 else "<3.11,>=3.7")
        tags = ("cp313-cp313-manylinux_2_28_x86_64", "cp313-cp313-manylinux_2_28_aarch64", *BOTH_ARCHES)
        project.index.add("kedro", f"0.18.{number}", tags=tags if number < 4 else BOTH_ARCHES, requires_python=bound)
    for number in range(8, 12):
        project.index.add("kedro", f"0.18.{number}", tags=("cp312-cp312-win_amd64",))
    project.write("kedro < 0.18.12\n")
    with pytest.raises(ResolutionFailed) as failure:
        project.compile(majors=(13,))
    message = str(failure.value)
    assert "4 (0.18.8 … 0.18.11) unusable here: no wheel for cp312 manylinux_2_28_x86_64" in message
    assert "4 (0.18.0 … 0.18.3) unusable here: requires Python >=3.13" in message
    assert "4 (0.18.4 … 0.18.7) unusable here: requires Python <3.11,>=3.7" in message


def test_an_extra_the_release_does_not_have_is_warned_about(project, caplog):
    project.index.add("requests", "2.34.2", ["idna"], extras={"socks": ("pysocks",)}, tags=BOTH_ARCHES)
    project.index.add("idna", "3.20", tags=BOTH_ARCHES)
    project.write("requests[nonexistent]\n")
    with caplog.at_level("WARNING", logger="resolver"):
        project.compile(majors=(13,))
    assert project.pins(13) == {"idna": "3.20", "requests": "2.34.2"}
    assert "requests==2.34.2 has no extra named 'nonexistent'; it adds nothing" in caplog.text


def test_a_release_only_tried_while_backtracking_is_not_warned_about(project, caplog):
    """aiobotocore 3.x has no `boto3` extra, but the resolution pins 2.11.2, which has it: no warning about
    3.x (it is a debug line, for -v)."""
    project.index.add("aiobotocore", "3.0.0", ["botocore>=2"], tags=BOTH_ARCHES)
    project.index.add("aiobotocore", "2.11.2", extras={"boto3": ("boto3",)}, tags=BOTH_ARCHES)
    for name, version in (("botocore", "1.9"), ("botocore", "2.0"), ("boto3", "1.0")):
        project.index.add(name, version, tags=BOTH_ARCHES)
    project.write("aiobotocore[boto3]\nbotocore<2\n")
    with caplog.at_level("DEBUG", logger="resolver"):
        project.compile(majors=(13,))
    assert project.pins(13)["aiobotocore"] == "2.11.2"
    warned = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    debug = [record.getMessage() for record in caplog.records if record.levelname == "DEBUG"]
    assert not [message for message in warned if "no extra named" in message]
    assert "aiobotocore==3.0.0 has no extra named 'boto3'; it adds nothing" in debug


def test_a_resolution_that_gives_up_names_what_it_backtracked_over(project, monkeypatch):
    """Out of rounds, the failure names the projects it kept backtracking over, who asked what, and the
    releases rejected most, not only that it gave up."""
    monkeypatch.setattr("resolver.resolve.resolution.MAX_ROUNDS", 6)
    for minor in range(80):
        project.index.add("app", f"1.{minor}", [f"bee=={minor}", "cat"], tags=BOTH_ARCHES)
        project.index.add("cat", f"2.{minor}", ["bee>=100"], tags=BOTH_ARCHES)
    for version in range(80):
        project.index.add("bee", str(version), tags=BOTH_ARCHES)
    project.write("app\n")
    with pytest.raises(ResolutionFailed) as failed:
        project.compile(majors=(13,), platforms=(X86,))
    message = failed.value.message()
    assert "gave up after 6 rounds of backtracking; what it kept backtracking over:" in message
    assert "bee: 2 conflicts, between cat wants bee>=100" in message
    assert "releases rejected most: cat (" in message
    assert "a pin or a tighter bound on these" in message


def test_backtracking_over_and_over_for_one_cause_is_stopped(monkeypatch):
    """The watch stops a resolution whose last conflicts are all over the same projects."""
    from resolver.resolve import watch

    monkeypatch.setattr(watch, "STUCK_AFTER", 30)
    monkeypatch.setattr(watch, "STUCK_WINDOW", 20)
    watching = watch.Watch(watch.Reporter(), breadth=100)
    causes = [RequirementInformation(Req(canonicalize_name("bee"), SpecifierSet(">=1"), asked_by=Asker("r.txt", 2)), None)]
    for _ in range(29):
        watching.resolving_conflicts(causes)
    with pytest.raises(watch.Stuck):
        watching.resolving_conflicts(causes)
    assert watching.backtracking.summary() == ["bee: 30 conflicts, between the input wants bee>=1"]
