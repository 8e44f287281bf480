"""Builds per torch version, read from the wheels' file lists through the real client (range reads of the
central directory), on a small index shaped like nixl's: `nixl-cu13 1.5.1` ships `nixl_ep_cu13/
nixl_ep_cpp_torch212…so` to `…torch214…` and requires `torch` with no bound."""

from __future__ import annotations

import json

import pytest

from resolver.cli.main import main
from resolver.files.constraints import TorchBuildLine, parse
from resolver.resolve.torch_builds import TorchBuilds, read_torch_builds

from .synthetic import BOTH_ARCHES, kv_connectors_index, served, write_project

FAST = ["-q", "--no-cache", "--retries", "0", "--cuda", "13"]
LAYOUT = "nixl_ep_cu{major}/nixl_ep_cpp_torch{torch}"


def builds(major: int, *minors: int, untagged: bool = False) -> tuple[tuple[str, bytes], ...]:
    names = [f"nixl_ep_cu{major}/nixl_ep_cpp_torch2{minor}.cpython-312-x86_64-linux-gnu.so" for minor in minors]
    if untagged:
        names.append(f"nixl_ep_cu{major}/nixl_ep_cpp.cpython-312-x86_64-linux-gnu.so")
    return tuple((name, b"\x7fELF not really") for name in names)


def nixl_index(latest_builds: tuple[tuple[str, bytes], ...] | None = None):
    """nixl 1.4.0 (builds for torch 2.11 to 2.13) and 1.5.1 (`latest_builds`); torch 2.11 to 2.15, CUDA 13."""
    index = kv_connectors_index()
    for name in ("nixl", "nixl-cu12", "nixl-cu13"):
        index.releases[name] = [r for r in index.releases[name] if r.version in ("1.4.0", "1.5.1")]
    for release in index.releases["nixl-cu13"]:
        release.members = builds(13, 11, 12, 13) if release.version == "1.4.0" else (latest_builds or builds(13, 12, 13, 14))
    for version in ("2.12.0", "2.13.0", "2.14.0", "2.15.0"):
        index.add("torch", version, ["numpy", 'cuda-toolkit[cublas]==13.*; platform_machine == "x86_64"'], tags=BOTH_ARCHES)
    return index


def compile_cu13(tmp_path, inside, requirements: str = "nixl\n", *arguments: str) -> int:
    inside(tmp_path)
    write_project(tmp_path, requirements={"kv.txt": requirements})
    return main(["compile", *FAST, *arguments])


def cu13(tmp_path):
    return parse((tmp_path / "constraints" / "cu13.txt").read_text(), "cu13.txt")


def test_torch_is_held_to_the_builds_the_pinned_wheel_ships(tmp_path, inside):
    with served(nixl_index()) as index:
        assert compile_cu13(tmp_path, inside) == 0
    document = cu13(tmp_path)
    pins = {pin.name: str(pin.version) for pin in document.pins}
    assert pins["nixl-cu13"] == "1.5.1" and pins["torch"] == "2.14.0"  # not 2.15.0: no build for it
    assert document.torch_builds == (TorchBuildLine("nixl-cu13==1.5.1", "builds for torch 2.12, 2.13, 2.14"),)
    assert "# torch builds (read from the wheels' file lists; torch is held to them):" in (tmp_path / "constraints" / "cu13.txt").read_text()
    # the file list came from the wheel's central directory, by ranges, not from a download
    assert any(r for method, path, r in index.requests if "nixl_cu13-1.5.1" in path and r)


def test_a_torch_the_newest_builds_miss_backtracks_to_a_nixl_that_has_one(tmp_path, inside):
    with served(nixl_index()):
        assert compile_cu13(tmp_path, inside, "nixl\ntorch == 2.11.0\n") == 0
    pins = {pin.name: str(pin.version) for pin in cu13(tmp_path).pins}
    assert pins["nixl-cu13"] == "1.4.0" and pins["torch"] == "2.11.0"


def test_no_build_for_the_required_torch_is_a_failure_that_names_the_builds(tmp_path, inside, capsys):
    with served(nixl_index()):
        assert compile_cu13(tmp_path, inside, "nixl\ntorch == 2.15.0\n") == 4
    err = capsys.readouterr().err
    # the meta package is blamed, on its members' behalf (it stands for them)
    assert ("every nixl that fits (1.4.0 and 1.5.1), wanted as nixl by requirements/kv.txt:1, requires torch<2.14,>=2.11 and "
            "torch<2.15,>=2.12 (nixl-cu13==1.4.0's wheel has builds for torch 2.11, 2.12, 2.13; "
            "nixl-cu13==1.5.1's wheel has builds for torch 2.12, 2.13, 2.14)") in err
    assert not (tmp_path / "constraints").exists()


def test_an_untagged_build_is_recorded_and_bounds_nothing(tmp_path, inside):
    with served(nixl_index(builds(13, untagged=True))):
        assert compile_cu13(tmp_path, inside) == 0
    document = cu13(tmp_path)
    assert {pin.name: str(pin.version) for pin in document.pins}["torch"] == "2.15.0"
    assert document.torch_builds == (
        TorchBuildLine("nixl-cu13==1.5.1", "an untagged nixl_ep_cu13/nixl_ep_cpp build: the torch it needs is not in the wheel"),
    )


def test_a_build_in_an_unrecognised_layout_is_warned_about_by_name(tmp_path, inside, capsys):
    changed = (("nixl_ep_cu13/ep/kernels_torch215.cpython-312-x86_64-linux-gnu.so", b"x"), *builds(13, 14))
    with served(nixl_index(changed)):
        assert compile_cu13(tmp_path, inside) == 0
    err = capsys.readouterr().err
    assert "nixl_ep_cu13/ep/kernels_torch215.cpython-312-x86_64-linux-gnu.so looks like a build for one torch version" in err


def test_a_family_of_the_configuration_declares_its_own_layout(tmp_path, inside):
    index = kv_connectors_index()
    index.add("deep-ep-cu13", "1.0", ["torch"], tags=BOTH_ARCHES,
              members=(("deep_ep/_C_torch211.cpython-312-x86_64-linux-gnu.so", b"x"),))
    index.add("torch", "2.12.0", ["numpy"], tags=BOTH_ARCHES)
    config = ('[tool.cuda-constraints.families.deep-ep]\nmembers = "deep-ep-cu{major}"\n'
              'torch-builds = "deep_ep/_C_torch{torch}"\n')
    with served(index):
        inside(tmp_path)
        write_project(tmp_path, requirements={"kv.txt": "deep-ep-cu13\n"})
        (tmp_path / "pyproject.toml").write_text((tmp_path / "pyproject.toml").read_text() + config)
        assert main(["compile", *FAST]) == 0
    assert {pin.name: str(pin.version) for pin in cu13(tmp_path).pins}["torch"] == "2.11.0"


@pytest.mark.parametrize(
    ("names", "specifier", "described"),
    [
        (["x_cu13/e_torch212.so", "x_cu13/e_torch214.so", "x_cu13/e_torch213.so"], "<2.15,>=2.12", "builds for torch 2.12, 2.13, 2.14"),
        (["x_cu13/e_torch211.so", "x_cu13/e_torch213.so"], "!=2.12.*,<2.14,>=2.11", "builds for torch 2.11, 2.13"),
        (["x_cu13/e_torch29.cpython-312.so"], "<2.10,>=2.9", "builds for torch 2.9"),
        (["x_cu13/e.cpython-312.so"], None, "an untagged x_cu13/e build: the torch it needs is not in the wheel"),
    ],
)
def test_read_torch_builds(names, specifier, described):
    found = read_torch_builds("x_cu{major}/e_torch{torch}", 13, names)
    assert isinstance(found, TorchBuilds)
    assert (str(found.specifier) if found.specifier else None) == specifier and found.describe() == described


def test_a_wheel_without_such_builds_has_none():
    assert read_torch_builds(LAYOUT, 13, ["nixl/_bindings.cpython-312-x86_64-linux-gnu.so"]) is None


def test_a_torch_conflict_reaches_the_meta_package_not_every_other_project_that_requires_torch(tmp_path, inside):
    """CUDA 12, as on PyPI: nixl-cu12 1.5.1's builds want torch 2.11 to 2.13, which exist only for CUDA 13.
    The meta package stands for its member, so the resolver goes back to nixl 1.4.0 at once, instead of
    first trying every older lmcache (which requires torch too)."""
    index = nixl_index()
    for release in index.releases["nixl-cu12"]:
        release.members = builds(12, 10) if release.version == "1.4.0" else builds(12, 11, 12, 13)
    for version in ("0.4.0", "0.4.1", "0.4.2", "0.4.3"):
        index.add("lmcache", version, ["torch", "cupy-cuda12x"], tags=BOTH_ARCHES)
    inside(tmp_path)
    write_project(tmp_path, requirements={"kv.txt": "lmcache<=0.4.4\nnixl\n"})
    with served(index) as server:
        assert main(["compile", "-q", "--no-cache", "--retries", "0", "--cuda", "12"]) == 0
    pins = {pin.name: str(pin.version) for pin in parse((tmp_path / "constraints" / "cu12.txt").read_text(), "cu12.txt").pins}
    assert (pins["nixl-cu12"], pins["torch"], pins["lmcache"]) == ("1.4.0", "2.10.0", "0.4.4")
    assert not [path for _, path, _ in server.requests if "lmcache-0.4.0" in path or "lmcache-0.4.3" in path]


def test_the_failure_names_the_torch_pin_the_nearest_release_and_the_option(tmp_path, inside, capsys):
    with served(nixl_index()):
        assert compile_cu13(tmp_path, inside, "nixl\ntorch == 2.15.0\n") == 4
    err = capsys.readouterr().err
    assert "torch==2.15.0 is required by requirements/kv.txt:2" in err
    assert "builds per torch version, newest releases first: nixl-cu13 1.5.1 (2.12–2.14), 1.4.0 (2.11–2.13)" in err
    assert ("no nixl release has a build for torch 2.15.0 (nearest: nixl-cu13 1.5.1, builds for torch 2.12, 2.13, 2.14); to "
            "write the file anyway, where those builds will not load, pass --allow-torch-build-mismatch nixl") in err


@pytest.mark.parametrize("how", ["flag", "configuration"])
def test_a_mismatch_allowed_is_written_recorded_and_warned_about_by_compile_and_check(tmp_path, inside, capsys, how):
    flag = ["--allow-torch-build-mismatch", "nixl"] if how == "flag" else []
    with served(nixl_index()):
        inside(tmp_path)
        write_project(tmp_path, requirements={"kv.txt": "nixl\ntorch == 2.15.0\n"})
        config = tmp_path / "pyproject.toml"
        config.write_text(config.read_text() + "cuda = [13]\n" + ('allow-torch-build-mismatch = ["nixl"]\n' if how == "configuration" else ""))
        assert main(["compile", *FAST, *flag]) == 0
    document = cu13(tmp_path)
    pins = {pin.name: str(pin.version) for pin in document.pins}
    assert pins["torch"] == "2.15.0" and pins["nixl-cu13"] == "1.5.1"
    mismatch = "nixl_ep will not load: builds for torch 2.12, 2.13, 2.14; torch 2.15.0 pinned by requirements/kv.txt:2"
    assert document.torch_builds == (TorchBuildLine("nixl-cu13==1.5.1", mismatch),)
    assert f"warning: nixl-cu13==1.5.1: {mismatch}" in capsys.readouterr().err
    if how == "flag":
        assert "--allow-torch-build-mismatch nixl" in document.options
    assert main(["check"]) == 0
    assert f"constraints/cu13.txt: nixl-cu13==1.5.1: {mismatch}" in capsys.readouterr().err


def test_a_mismatch_is_allowed_only_where_no_build_fits(tmp_path, inside):
    """With the option, the builds still hold torch wherever a resolution exists that way: nothing pins torch
    here, so it is 2.14.0, which nixl-cu13 1.5.1 has a build for (not the newest, 2.15.0), and no mismatch."""
    with served(nixl_index()):
        assert compile_cu13(tmp_path, inside, "nixl\n", "--allow-torch-build-mismatch", "nixl") == 0
    document = cu13(tmp_path)
    assert {pin.name: str(pin.version) for pin in document.pins}["torch"] == "2.14.0"
    assert not document.torch_builds[0].will_not_load


def test_an_untagged_build_is_warned_about_when_the_file_changes_not_on_every_run(tmp_path, inside, capsys):
    warning = ("constraints/cu13.txt: nixl-cu13==1.5.1: an untagged nixl_ep_cu13/nixl_ep_cpp build: the torch it needs is "
               "not in the wheel; whether it loads with the torch pinned here is not checked")
    with served(nixl_index(builds(13, untagged=True))):
        assert compile_cu13(tmp_path, inside) == 0
        assert capsys.readouterr().err.count(warning) == 1
        assert main(["compile", *FAST]) == 0  # the same file: the header says it, nothing is repeated
        assert "untagged" not in capsys.readouterr().err
        assert main(["compile", *FAST, "-v"]) == 0
        assert "nixl-cu13==1.5.1: an untagged nixl_ep_cu13/nixl_ep_cpp build" in capsys.readouterr().err


def test_inspect_shows_the_extension_modules_and_the_torch_the_resolver_requires(tmp_path, inside, capsys):
    with served(nixl_index()):
        inside(write_project(tmp_path))
        assert main(["inspect", "nixl-cu13==1.5.1", "--no-cache", "--platform", "manylinux_2_28_x86_64"]) == 0
        out = capsys.readouterr().out
        assert main(["inspect", "nixl-cu13==1.5.1", "--no-cache", "--platform", "manylinux_2_28_x86_64", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
    wheel = "nixl_cu13-1.5.1-cp312-cp312-manylinux_2_28_x86_64.whl"
    assert (f"  extension modules of {wheel}:\n"
            "    nixl_ep_cu13/nixl_ep_cpp_torch212.cpython-312-x86_64-linux-gnu.so\n") in out
    assert "  torch builds: builds for torch 2.12, 2.13, 2.14; the resolver requires torch<2.15,>=2.12 with it" in out
    assert report["torch_builds"][wheel] == {"builds": "builds for torch 2.12, 2.13, 2.14", "torch": "torch<2.15,>=2.12"}
    assert len(report["extension_modules"][wheel]) == 3
    with served(nixl_index()):
        assert main(["inspect", "nixl==1.5.1", "--no-cache"]) == 0
    assert ("  torch builds: in its members' wheels, which the resolver reads for it (`cuda-constraints inspect "
            "nixl-cu12==1.5.1` or `cuda-constraints inspect nixl-cu13==1.5.1`)") in capsys.readouterr().out
