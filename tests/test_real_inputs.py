"""What real projects' inputs need: variants chosen by extras (vLLM's `nvidia-cutlass-dsl[cu13]` and
`humming-kernels[cu13]`), per-major requirement files, excluded dependencies, constraints files, and the
platform a release needs. Shapes from vLLM 0.33.0's and sglang 0.5.23's real dependencies, served small."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from resolver.cli.main import main
from resolver.commands.verify import needed_names, verify
from resolver.files.constraints import ExcludedLine, SwapLine, parse
from resolver.model.families import FamilyTable
from resolver.model.targets import Platform, PythonVersion

from .conftest import Project
from .index_server import PLATFORM, PYTHON_VERSION, WHEEL_TAG, IndexServer, installable_kv_index
from .installers import installed, isolate_installers, new_venv, uv_program
from .synthetic import (
    BOTH_ARCHES,
    KV_REQUIREMENTS,
    THIS_PYTHON_CONFIG,
    SyntheticRelease,
    for_this_python,
    kv_connectors_index,
    served,
    write_project,
)

FAST = ["-q", "--no-cache", "--retries", "0"]
ANY = ("py3-none-any",)


def vllm_variants_index():
    """The KV set, and the two ways vLLM's requirements pick a CUDA major by extra:
    `nvidia-cutlass-dsl` hard-requires `-libs-cu12` and its `[cu13]` extra adds `-libs-cu13` (and a
    `qnx-cu13` extra that selects nothing); `humming-kernels` has a `[cu12]` and a `[cu13]` extra."""
    index = kv_connectors_index()
    index.add(
        "nvidia-cutlass-dsl", "4.8.0", ["nvidia-cutlass-dsl-libs-base==4.8.0", "nvidia-cutlass-dsl-libs-cu12==4.8.0"],
        extras={"cu13": ("nvidia-cutlass-dsl-libs-cu13==4.8.0",), "qnx-cu13": ("nvidia-cutlass-dsl-libs-qnx-cu13==4.8.0",)},
        tags=ANY,
    )
    for name in ("nvidia-cutlass-dsl-libs-base", "nvidia-cutlass-dsl-libs-cu12", "nvidia-cutlass-dsl-libs-cu13"):
        index.add(name, "4.8.0", tags=BOTH_ARCHES)
    index.add(
        "humming-kernels", "0.1.19", ["numpy"],
        extras={"cu12": ("nvidia-cuda-runtime-cu12",), "cu13": ("nvidia-cuda-runtime==13.*",)}, tags=BOTH_ARCHES,
    )
    index.add("nvidia-cuda-runtime-cu12", "12.9.79", tags=BOTH_ARCHES)
    index.add("nvidia-cuda-runtime", "13.0.96", tags=BOTH_ARCHES)
    return for_this_python(index)


@pytest.fixture
def index():
    with served(vllm_variants_index()) as index:
        yield index


def compiled(root: Path, requirements: str, config_extra: str = "", *arguments: str) -> dict[int, object]:
    write_project(root, requirements={"kv.txt": requirements})
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + THIS_PYTHON_CONFIG + config_extra)
    assert main(["compile", *FAST, *arguments]) == 0
    return {major: parse((root / "constraints" / f"cu{major}.txt").read_text(), f"cu{major}.txt") for major in (12, 13)}


def names(document) -> set[str]:
    return {pin.name for pin in document.pins}


def test_extras_select_the_major_with_no_configuration(index, tmp_path, inside):
    inside(tmp_path)
    files = compiled(tmp_path, "nvidia-cutlass-dsl[cu13] == 4.8.0\nhumming-kernels[cu13] == 0.1.19\n")
    cu12, cu13 = files[12], files[13]
    assert {"nvidia-cutlass-dsl-libs-cu13", "nvidia-cuda-runtime"} <= names(cu13)
    assert "nvidia-cutlass-dsl-libs-cu12" not in names(cu13) and "nvidia-cuda-runtime-cu12" not in names(cu13)
    assert cu13.excluded == (ExcludedLine("nvidia-cutlass-dsl-libs-cu12", "nvidia-cutlass-dsl==4.8.0"),) and cu13.swapped == ()
    assert {"nvidia-cutlass-dsl-libs-cu12", "nvidia-cuda-runtime-cu12"} <= names(cu12)
    assert not {"nvidia-cutlass-dsl-libs-cu13", "nvidia-cuda-runtime"} & names(cu12)
    assert cu12.excluded == ()
    # As vLLM's Dockerfile rewrites them for CUDA 12: the [cu12] extra where there is one, else none.
    assert cu12.swapped == (
        SwapLine("humming-kernels[cu13]==0.1.19", "humming-kernels[cu12]==0.1.19", "requirements/kv.txt:2"),
        SwapLine("nvidia-cutlass-dsl[cu13]==4.8.0", "nvidia-cutlass-dsl==4.8.0", "requirements/kv.txt:1"),
    )
    assert main(["check"]) == 0


def test_a_plain_requirement_of_such_a_meta_package_gets_the_major_extra(index, tmp_path, inside):
    inside(tmp_path)
    files = compiled(tmp_path, "nvidia-cutlass-dsl\n")
    assert "nvidia-cutlass-dsl-libs-cu13" in names(files[13]) and "nvidia-cutlass-dsl-libs-cu12" not in names(files[13])
    assert "nvidia-cutlass-dsl-libs-cu12" in names(files[12]) and "nvidia-cutlass-dsl-libs-cu13" not in names(files[12])
    assert "nvidia-cutlass-dsl-libs-qnx-cu13" not in names(files[13])  # `qnx-cu13` selects nothing


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_install_passes_the_swapped_extras_and_drops_the_excluded_edge(index, tmp_path, inside, capsys, installer):
    inside(tmp_path)
    compiled(tmp_path, "nvidia-cutlass-dsl[cu13] == 4.8.0\nhumming-kernels[cu13] == 0.1.19\n")
    capsys.readouterr()
    assert main(["install", "--cuda", "12", "--installer", installer, "--dry-run"]) == 0
    script = capsys.readouterr().out
    assert "'humming-kernels[cu12]==0.1.19'" in script and "nvidia-cutlass-dsl==4.8.0" in script and "[cu13]" not in script
    assert main(["install", "--cuda", "13", "--installer", installer, "--dry-run"]) == 0
    script = capsys.readouterr().out
    if installer == "uv":
        assert "nvidia-cutlass-dsl-libs-cu12" in script  # the --excludes file
    else:
        assert "--no-deps nvidia-cutlass-dsl==4.8.0" in script


def cudnn_frontend_index():
    """vLLM's path to nvidia-cutlass-dsl: flashinfer needs nvidia-cudnn-frontend, whose 1.32.0 asks for
    `nvidia-cutlass-dsl[cu13]` on a dependency edge."""
    index = vllm_variants_index()
    index.add("nvidia-cudnn-frontend", "1.32.0", ["nvidia-cutlass-dsl[cu13]>=4.8.0", "numpy"], tags=ANY)
    for releases in index.releases.values():
        for release in releases:
            release.tags = tuple(WHEEL_TAG if tag in BOTH_ARCHES or tag.startswith("cp") else tag for tag in release.tags)
    index._files.clear()
    return index


def test_an_extra_on_a_dependency_edge_selects_the_major_too(tmp_path, inside):
    inside(tmp_path)
    with served(cudnn_frontend_index()):
        files = compiled(tmp_path, "nvidia-cudnn-frontend==1.32.0\n", f'platforms = ["{PLATFORM}"]\n')
        assert main(["check"]) == 0
    cu12, cu13 = files[12], files[13]
    assert "nvidia-cutlass-dsl-libs-cu12" in names(cu12) and "nvidia-cutlass-dsl-libs-cu13" not in names(cu12)
    assert cu12.excluded == (ExcludedLine(
        "nvidia-cutlass-dsl-libs-cu13", "nvidia-cutlass-dsl[cu13]==4.8.0, which nvidia-cudnn-frontend==1.32.0 asks for"),)
    assert "nvidia-cutlass-dsl-libs-cu13" in names(cu13) and "nvidia-cutlass-dsl-libs-cu12" not in names(cu13)
    assert cu13.excluded == (ExcludedLine("nvidia-cutlass-dsl-libs-cu12", "nvidia-cutlass-dsl==4.8.0"),)
    assert cu12.swapped == cu13.swapped == ()


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_install_drops_the_edge_a_dependency_asks_for_by_extra(tmp_path, monkeypatch, capsys, installer):
    """The real installers, from a local index: CUDA 12 gets nvidia-cutlass-dsl's CUDA 12 libraries and not
    the CUDA 13 ones nvidia-cudnn-frontend's `[cu13]` edge asks for."""
    with IndexServer(cudnn_frontend_index()) as server:
        root = tmp_path / "project"
        root.mkdir()
        write_project(root, requirements={"kv.txt": "nvidia-cudnn-frontend==1.32.0\n"})
        (root / "pyproject.toml").write_text(
            f'[tool.cuda-constraints]\nrequirements = ["requirements/kv.txt"]\nindex-url = "{server.simple_url}"\n'
            f'python-versions = ["{PYTHON_VERSION}"]\nplatforms = ["{PLATFORM}"]\ncanaries = []\n'
        )
        monkeypatch.chdir(root)
        assert main(["compile", "-q", "--no-cache"]) == 0
        isolate_installers(monkeypatch, tmp_path)
        python = new_venv(tmp_path / "venv")
        assert main(["install", "--python", python, "--cuda", "12", "--installer", installer]) == 0, capsys.readouterr().err
    got = installed(python)
    assert got["nvidia-cutlass-dsl-libs-cu12"] == "4.8.0" and got["nvidia-cudnn-frontend"] == "1.32.0"
    assert "nvidia-cutlass-dsl-libs-cu13" not in got


# -- per-major inputs, excluded dependencies, constraints files ------------------------------------------------

PER_MAJOR = """\
exclude-dependencies = ["aiohttp"]
[tool.cuda-constraints.cuda.12]
extra-requirements = ["requirements/extra-cu12.txt"]
constraints = ["requirements/image-cu12.txt"]
[tool.cuda-constraints.cuda.13]
requirements = ["requirements/kv-cu13.txt"]
"""


def per_major_project(root: Path) -> Path:
    write_project(root, requirements={
        "kv.txt": KV_REQUIREMENTS,
        "extra-cu12.txt": "humming-kernels[cu12]\n",
        "image-cu12.txt": "numpy == 2.2.6\nlmcache == 0.4.4\n",
        "kv-cu13.txt": KV_REQUIREMENTS + "nvidia-cutlass-dsl[cu13]\n",
    })
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + THIS_PYTHON_CONFIG + PER_MAJOR)
    return root


def test_each_major_reads_its_own_files_and_check_and_install_follow(index, tmp_path, inside, capsys):
    root = inside(per_major_project(tmp_path))
    assert main(["compile", *FAST]) == 0
    cu12 = parse((root / "constraints" / "cu12.txt").read_text(), "cu12.txt")
    cu13 = parse((root / "constraints" / "cu13.txt").read_text(), "cu13.txt")
    assert cu12.inputs == ("requirements/kv.txt", "requirements/extra-cu12.txt", "-c requirements/image-cu12.txt")
    assert cu13.inputs == ("requirements/kv-cu13.txt",)
    assert "humming-kernels" in names(cu12) and "humming-kernels" not in names(cu13)
    assert "nvidia-cutlass-dsl" in names(cu13) and "nvidia-cutlass-dsl" not in names(cu12)
    # excluded everywhere, recorded where an edge led to it
    for document in (cu12, cu13):
        assert "aiohttp" not in names(document)
        assert any(line.name == "aiohttp" and line.required_by.endswith("; exclude-dependencies") for line in document.excluded)
    assert cu12.options.endswith("--exclude-dependency aiohttp")
    assert main(["check"]) == 0
    capsys.readouterr()
    (root / "requirements" / "extra-cu12.txt").write_text("humming-kernels[cu12] == 0.1.19\n")
    assert main(["check"]) == 1
    out = capsys.readouterr()
    assert "constraints/cu13.txt: up to date" in out.out and "constraints/cu12.txt" in out.err and "inputs changed" in out.err
    assert main(["install", "--cuda", "12", "--dry-run", "--installer", "uv"]) == 1  # stale: refused
    assert main(["compile", *FAST]) == 0
    capsys.readouterr()
    assert main(["install", "--cuda", "12", "--dry-run", "--installer", "uv"]) == 0
    script = capsys.readouterr().out
    assert "'humming-kernels[cu12]==0.1.19'" in script and "aiohttp" in script  # the --excludes file


def test_the_constraint_flag_narrows_every_major_and_is_an_input(index, tmp_path, inside):
    root = inside(tmp_path)
    write_project(root, requirements={"kv.txt": KV_REQUIREMENTS, "pins.txt": "cupy-cuda12x == 14.1.0\ncupy-cuda13x == 14.1.0\n"})
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + THIS_PYTHON_CONFIG)
    (root / "requirements" / "kv.txt").write_text("cupy-cuda13x\nnixl\n")
    assert main(["compile", *FAST, "-c", "requirements/pins.txt"]) == 0
    cu12 = parse((root / "constraints" / "cu12.txt").read_text(), "cu12.txt")
    assert cu12.command == "cuda-constraints compile -c requirements/pins.txt"
    assert cu12.inputs == ("requirements/kv.txt", "-c requirements/pins.txt")
    assert {p.name: str(p.version) for p in cu12.pins}["cupy-cuda12x"] == "14.1.0"
    assert main(["check"]) == 0


def test_a_requirement_on_an_excluded_dependency_is_refused(index, tmp_path, inside, capsys):
    inside(tmp_path)
    write_project(tmp_path, requirements={"kv.txt": "nixl\naiohttp\n"})
    assert main(["compile", *FAST, "--exclude-dependency", "aiohttp"]) == 2
    assert "requirements/kv.txt:2: 'aiohttp': names a project that exclude-dependencies drops everywhere" in capsys.readouterr().err
    assert not (tmp_path / "constraints").exists()


# -- the image's own pins ---------------------------------------------------------------------------------------


@pytest.fixture
def image(tmp_path, monkeypatch):
    """The KV project compiled for this interpreter, and a fresh environment where the image installed
    its own torch (the test names which)."""
    with IndexServer(installable_kv_index()) as server:
        project = Project(tmp_path / "project", server.index)
        (project.root).mkdir()
        (project.root / "pyproject.toml").write_text('[tool.cuda-constraints]\nrequirements = ["requirements/kv.txt"]\n')
        project.write(KV_REQUIREMENTS)
        project.compile(majors=(13,), platforms=(Platform(PLATFORM),), pythons=(PythonVersion.parse(PYTHON_VERSION),))
        isolate_installers(monkeypatch, tmp_path)
        monkeypatch.chdir(project.root)
        python = new_venv(tmp_path / "venv")

        def preinstall(version: str) -> None:
            wheels = tmp_path / "image-wheels"
            wheels.mkdir(exist_ok=True)
            release = SyntheticRelease("torch", version, ("numpy",), tags=(WHEEL_TAG,))
            (wheels / release.wheel_filename(WHEEL_TAG)).write_bytes(release.wheel_bytes(WHEEL_TAG))
            subprocess.run([uv_program(), "pip", "install", "-q", "--python", python, "--no-deps", "--no-index",
                            "--find-links", str(wheels), f"torch=={version}"], check=True)

        yield server, python, preinstall


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_install_refuses_to_replace_the_image_torch_unless_allowed(image, capsys, installer):
    server, python, preinstall = image
    preinstall("2.10.0")
    arguments = ["install", "--python", python, "--cuda", "13", "--installer", installer, "--index-url", server.simple_url]
    assert main(arguments) == 1
    err = capsys.readouterr().err
    assert "torch 2.10.0 is installed; the file pins torch==2.11.0" in err
    assert "compile with the environment's pins as constraints" in err and "--allow-replace" in err
    assert installed(python) == {"torch": "2.10.0"}  # nothing was installed
    assert main([*arguments, "--allow-replace"]) == 0
    assert installed(python)["torch"] == "2.11.0"


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_local_build_of_the_pinned_version_satisfies_the_pin(image, capsys, installer):
    server, python, preinstall = image
    preinstall("2.11.0+cu130")
    arguments = ["install", "--python", python, "--cuda", "13", "--installer", installer, "--index-url", server.simple_url]
    assert main(arguments) == 0, capsys.readouterr().err
    assert installed(python)["torch"] == "2.11.0+cu130"  # kept: torch==2.11.0 holds for it
    assert "CUDA 13: all verified" in capsys.readouterr().out


def test_verification_needs_only_what_the_environment_requires():
    document = parse(
        "# Generated by cuda-constraints for CUDA 13 — do not edit; regenerate with:\n#   cuda-constraints compile\n"
        "# inputs: r.txt (sha256 0)   targets: cp312 manylinux_2_28 x86_64\n# excluded (mismatched CUDA variants; "
        "`cuda-constraints install` drops them):\n#   (none)\n# swapped:\n#   (none)\n"
        "torch==2.11.0\nnvidia-cublas==13.4.1.3\nextra-lib==1.0\n", "cu13.txt",
    )
    markers = {"python_version": "3.12", "sys_platform": "linux", "platform_machine": "x86_64"}
    top = [Requirement("torch"), Requirement("tool[gpu]")]
    image = needed_names(markers, {"torch": ("numpy",), "tool": ('extra-lib; extra == "gpu"',)}, top)
    pypi = needed_names(markers, {"torch": ("numpy", "nvidia-cublas==13.*"), "tool": ()}, top)
    installed = {"torch": "2.11.0+cu130", "tool": "1", "extra-lib": "1.0"}
    assert verify(document, markers, installed, FamilyTable(), {}, image).ok  # the image's torch needs no cuBLAS wheel
    failed = verify(document, markers, installed, FamilyTable(), {}, pypi)
    assert not failed.ok and failed.problems() == ["nvidia-cublas: not installed"]
    assert "extra-lib" in image  # asked through the top-level extra


def test_a_release_that_needs_a_newer_glibc_names_the_platform_that_takes_it(index, tmp_path, inside, capsys):
    """llguidance 1.7 ships manylinux_2_31 wheels only; vLLM's runtime image (Ubuntu 24.04) has glibc 2.39."""
    index.add("llguidance", "1.7.0", tags=("cp39-abi3-manylinux_2_31_x86_64", "cp39-abi3-manylinux_2_34_aarch64"))
    inside(tmp_path)
    write_project(tmp_path, requirements={"kv.txt": "llguidance\n"})
    assert main(["compile", *FAST, "--cuda", "13"]) == 4
    err = capsys.readouterr().err
    assert "no wheel for cp312 manylinux_2_28_x86_64: its wheels need manylinux_2_31 (glibc 2.31); " in err
    assert "--platform manylinux_2_31_x86_64 would take them" in err
    argv = ["compile", *FAST, "--cuda", "13", "--platform", "manylinux_2_34_x86_64", "--platform", "manylinux_2_34_aarch64"]
    assert main(argv) == 0
