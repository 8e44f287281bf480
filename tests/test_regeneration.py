"""Regeneration controls end to end over an HTTP index: `--exclude-newer` against upload times,
`--generate-hashes` against the bytes of the files, `--upgrade-package NAME==V`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from resolver.cli.main import main
from resolver.files.sets import read_file

from .synthetic import BOTH_ARCHES, SyntheticIndex, served, write_project

PYPROJECT = """\
[tool.cuda-constraints]
requirements = ["requirements/in.txt"]
cuda = [13]
index-url = "https://index.test/simple"
"""
X86_WHEEL = "cp312-cp312-manylinux_2_28_x86_64"
ARM_WHEEL = "cp312-cp312-manylinux_2_28_aarch64"
# Every tag a release of `native` has: what an installer on the targets could pick, and what it could not.
INSTALLABLE = (X86_WHEEL, ARM_WHEEL, "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64", "cp312-abi3-manylinux_2_28_aarch64")
NOT_INSTALLABLE = (
    "cp311-cp311-manylinux_2_28_x86_64",  # another Python
    "cp312-cp312-manylinux_2_34_x86_64",  # a newer glibc than the target's
    "cp312-cp312-win_amd64",
    "cp312-cp312-macosx_14_0_arm64",
    "cp312-cp312-musllinux_1_2_x86_64",
)


@pytest.fixture
def index():
    with served(SyntheticIndex()) as index:
        yield index


@pytest.fixture
def repo(tmp_path: Path, inside) -> Path:
    return inside(write_project(tmp_path, PYPROJECT, requirements={}))


def requirements(repo: Path, text: str) -> None:
    (repo / "requirements" / "in.txt").write_text(text)


def pins(repo: Path) -> dict[str, str]:
    document = read_file(repo / "constraints" / "cu13.txt").document
    return {pin.name + (f" ; {pin.marker}" if pin.marker else ""): str(pin.version) for pin in document.pins}


def hashes(repo: Path) -> dict[str, set[str]]:
    document = read_file(repo / "constraints" / "cu13.txt").document
    return {pin.name + (f" ; {pin.marker}" if pin.marker else ""): set(pin.hashes) for pin in document.pins}


def sha256_of(index: SyntheticIndex, *filenames: str) -> set[str]:
    return {hashlib.sha256(index.file_bytes(name) or b"").hexdigest() for name in filenames}


# -- --exclude-newer ---------------------------------------------------------------------------------------


def test_exclude_newer_ignores_releases_uploaded_after_the_date(index, repo):
    index.add("numpy", "2.2.6", tags=BOTH_ARCHES, uploaded="2026-03-01T10:00:00Z")
    index.add("numpy", "2.3.0", tags=BOTH_ARCHES, uploaded="2026-06-02T00:00:01Z")
    requirements(repo, "numpy\n")
    assert main(["compile", "-q", "--no-cache", "--exclude-newer", "2026-06-01"]) == 0
    assert pins(repo) == {"numpy": "2.2.6"}
    text = (repo / "constraints" / "cu13.txt").read_text()
    assert "#   cuda-constraints compile --exclude-newer 2026-06-01\n" in text
    assert "--exclude-newer 2026-06-01T23:59:59Z" in text.splitlines()[4]
    # The end of the named day counts; a timestamp is taken as given.
    assert main(["compile", "-q", "--no-cache", "--upgrade", "--exclude-newer", "2026-06-02T00:00:01Z"]) == 0
    assert pins(repo) == {"numpy": "2.3.0"}
    # A kept pin uploaded after the date gives way too, without --upgrade.
    assert main(["compile", "-q", "--no-cache", "--exclude-newer", "2026-06-02T00:00:00+00:00"]) == 0
    assert pins(repo) == {"numpy": "2.2.6"}


def test_exclude_newer_makes_a_rerun_reproducible(index, repo):
    index.add("numpy", "2.2.6", tags=BOTH_ARCHES, uploaded="2026-03-01T10:00:00Z")
    requirements(repo, "numpy\n")
    assert main(["compile", "-q", "--no-cache", "--upgrade", "--exclude-newer", "2026-06-01", "--generate-hashes"]) == 0
    before = (repo / "constraints" / "cu13.txt").read_bytes()
    index.add("numpy", "2.3.0", tags=BOTH_ARCHES, uploaded="2026-07-01T00:00:00Z")
    assert main(["compile", "-q", "--no-cache", "--upgrade", "--exclude-newer", "2026-06-01", "--generate-hashes"]) == 0
    assert (repo / "constraints" / "cu13.txt").read_bytes() == before


def test_exclude_newer_in_the_configuration_is_an_option_not_a_flag(index, repo):
    (repo / "pyproject.toml").write_text(PYPROJECT + 'exclude-newer = "2026-06-01"\n')
    index.add("numpy", "2.2.6", tags=BOTH_ARCHES, uploaded="2026-03-01T10:00:00Z")
    index.add("numpy", "2.3.0", tags=BOTH_ARCHES, uploaded="2026-06-02T00:00:01Z")
    requirements(repo, "numpy\n")
    assert main(["compile", "-q", "--no-cache"]) == 0
    lines = (repo / "constraints" / "cu13.txt").read_text().splitlines()
    assert lines[1] == "#   cuda-constraints compile"
    assert lines[4] == "# options: --index-url https://index.test/simple --exclude-newer 2026-06-01T23:59:59Z"
    assert pins(repo) == {"numpy": "2.2.6"}


# -- --generate-hashes -------------------------------------------------------------------------------------


def test_hashes_are_those_of_every_file_an_installer_could_pick_on_the_targets(index, repo):
    index.add("native", "1.0", tags=(*INSTALLABLE, *NOT_INSTALLABLE), sdist=True)
    index.add("pure", "1.0")  # one py3-none-any wheel serves both platforms
    requirements(repo, "native\npure\n")
    assert main(["compile", "-q", "--no-cache", "--generate-hashes"]) == 0
    release = index.releases["native"][0]
    assert hashes(repo) == {
        "native": sha256_of(index, *(release.wheel_filename(tag) for tag in INSTALLABLE)),
        "pure": sha256_of(index, "pure-1.0-py3-none-any.whl"),
    }
    assert len(hashes(repo)["pure"]) == 1


def test_a_platform_only_pin_hashes_that_platforms_files(index, repo):
    index.add("torchish", "1.0", ['tritonish ; platform_machine == "x86_64"'], tags=BOTH_ARCHES)
    index.add("tritonish", "3.0", tags=(X86_WHEEL, ARM_WHEEL))
    requirements(repo, "torchish\n")
    assert main(["compile", "-q", "--no-cache", "--generate-hashes"]) == 0
    found = hashes(repo)
    tritonish = index.releases["tritonish"][0]
    assert found['tritonish ; platform_machine == "x86_64"'] == sha256_of(index, tritonish.wheel_filename(X86_WHEEL))


def test_an_sdist_is_hashed_only_where_it_is_built(index, repo):
    # x86_64 has a wheel; aarch64 builds the sdist. Both are what the installers would fetch.
    index.add("lopsided", "1.0", tags=(X86_WHEEL,), sdist=True)
    requirements(repo, "lopsided\n")
    assert main(["compile", "-q", "--no-cache", "--generate-hashes", "--allow-sdist-package", "lopsided"]) == 0
    release = index.releases["lopsided"][0]
    assert hashes(repo) == {"lopsided": sha256_of(index, release.wheel_filename(X86_WHEEL), release.sdist_filename)}
    x86_only = ["--platform", "manylinux_2_28_x86_64"]
    assert main(["compile", "-q", "--no-cache", "--generate-hashes", "--allow-sdist-package", "lopsided", *x86_only]) == 0
    assert hashes(repo) == {"lopsided": sha256_of(index, release.wheel_filename(X86_WHEEL))}


def test_where_platforms_pin_different_versions_each_line_hashes_and_builds_its_own(index, repo):
    # aarch64 is held below 1.0 by a dependency; 1.0 has no aarch64 wheel, so it would build there, but it
    # is only installed on x86_64, where it has a wheel: no sdist hash, no "builds from source" entry.
    index.add("app", "1.0", ['lopsided < 1.0 ; platform_machine == "aarch64"'], tags=BOTH_ARCHES)
    index.add("lopsided", "0.9", tags=BOTH_ARCHES)
    index.add("lopsided", "1.0", tags=(X86_WHEEL,), sdist=True)
    requirements(repo, "app\nlopsided\n")
    assert main(["compile", "-q", "--no-cache", "--generate-hashes", "--allow-sdist-package", "lopsided"]) == 0
    old, new = index.releases["lopsided"]
    assert hashes(repo) == {
        "app": sha256_of(index, "app-1.0-" + BOTH_ARCHES[0] + ".whl", "app-1.0-" + BOTH_ARCHES[1] + ".whl"),
        'lopsided ; platform_machine == "aarch64"': sha256_of(index, old.wheel_filename(ARM_WHEEL)),
        'lopsided ; platform_machine == "x86_64"': sha256_of(index, new.wheel_filename(X86_WHEEL)),
    }
    assert "# builds from source" not in (repo / "constraints" / "cu13.txt").read_text()


def test_a_wheel_whose_requires_python_excludes_the_target_is_not_hashed(index, repo):
    index.add("numpy", "2.2.6", tags=BOTH_ARCHES)
    index.add("numpy", "2.2.6", tags=("py3-none-any",), requires_python=">=3.13")
    requirements(repo, "numpy\n")
    assert main(["compile", "-q", "--no-cache", "--generate-hashes"]) == 0
    release = index.releases["numpy"][0]
    assert hashes(repo) == {"numpy": sha256_of(index, *(release.wheel_filename(tag) for tag in BOTH_ARCHES))}


def test_files_uploaded_after_exclude_newer_are_not_hashed(index, repo):
    index.add("numpy", "2.2.6", tags=BOTH_ARCHES, uploaded="2026-03-01T00:00:00Z")
    # A later build of the same version (a higher build number): not there on the day the file stands for.
    index.add("numpy", "2.2.6", tags=(f"1-{X86_WHEEL}",), uploaded="2026-08-01T00:00:00Z")
    requirements(repo, "numpy\n")
    assert main(["compile", "-q", "--no-cache", "--generate-hashes", "--exclude-newer", "2026-06-01"]) == 0
    first = index.releases["numpy"][0]
    assert hashes(repo) == {"numpy": sha256_of(index, *(first.wheel_filename(tag) for tag in BOTH_ARCHES))}


# -- --upgrade-package NAME==V -----------------------------------------------------------------------------


def test_upgrade_package_to_a_version_moves_that_pin_only(index, repo, capsys):
    for version in ("14.1.0", "14.2.0", "14.3.0"):
        index.add("cupy-cuda13x", version, ["numpy"], tags=BOTH_ARCHES)
    index.add("numpy", "2.2.6", tags=BOTH_ARCHES)
    requirements(repo, "cupy-cuda13x\n")
    assert main(["compile", "-q", "--no-cache", "--exclude-newer", "2026-06-01"]) == 0
    index.add("numpy", "2.3.0", tags=BOTH_ARCHES)
    assert main(["compile", "-q", "--no-cache", "--upgrade-package", "cupy-cuda13x==14.1.0"]) == 0
    assert pins(repo) == {"cupy-cuda13x": "14.1.0", "numpy": "2.2.6"}
    out = capsys.readouterr().out
    assert "downgraded cupy-cuda13x 14.3.0 -> 14.1.0" in out
    # The one-off version is not part of the command that regenerates the file.
    assert (repo / "constraints" / "cu13.txt").read_text().splitlines()[1] == "#   cuda-constraints compile"
    assert main(["compile", "-q", "--no-cache", "-P", "Cupy_Cuda13x==14.2.0", "-P", "numpy"]) == 0
    assert pins(repo) == {"cupy-cuda13x": "14.2.0", "numpy": "2.3.0"}


def test_upgrade_package_to_a_version_the_requirements_forbid_fails_clearly(index, repo, capsys):
    for version in ("14.1.0", "14.2.0"):
        index.add("cupy-cuda13x", version, tags=BOTH_ARCHES)
    requirements(repo, "cupy-cuda13x != 14.1.0\n")
    assert main(["compile", "-q", "--no-cache"]) == 0
    before = (repo / "constraints" / "cu13.txt").read_bytes()
    assert main(["compile", "-q", "--no-cache", "-P", "cupy-cuda13x==14.1.0"]) == 4
    err = capsys.readouterr().err
    assert "cupy-cuda13x" in err and "14.1.0" in err and "Traceback" not in err
    assert (repo / "constraints" / "cu13.txt").read_bytes() == before


@pytest.mark.parametrize("value", ["numpy==2.*", "numpy==", "numpy[extra]==1", "numpy>=1"])
def test_upgrade_package_with_a_bad_version_is_a_usage_error(index, repo, capsys, value):
    requirements(repo, "numpy\n")
    assert main(["compile", "-q", "--no-cache", "-P", value]) == 2
    err = capsys.readouterr().err
    assert "--upgrade-package" in err and "Traceback" not in err
