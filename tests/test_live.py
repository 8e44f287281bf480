"""Against the real PyPI (pytest -m live): the facts about the real index and the committed files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from resolver.cli.main import main
from resolver.commands.inspect import inspect_release
from resolver.files.constraints import TorchBuildLine, parse
from resolver.index.blocking import BlockingIndex
from resolver.index.cache import Cache
from resolver.index.client import ClientOptions, IndexClient
from resolver.model.families import FamilyTable
from resolver.model.indexes import PYTORCH_INDEX_BASE, Routing
from resolver.model.targets import Environment, Platform, PythonVersion
from resolver.resolve.torch_builds import read_torch_builds

from .imitated import LINKS_PAGE, LMCACHE_CU129, served
from .index_server import IndexServer

pytestmark = pytest.mark.live
ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENTS = tuple(Environment(PythonVersion(3, 12), Platform(p)) for p in ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64"))


@pytest.fixture(scope="module")
def index():
    with BlockingIndex(lambda: IndexClient(ClientOptions(), Cache(None))) as index:
        yield index.routed(Routing())  # PyPI alone


def test_nixl_1_5_1_requires_both_members(capsys):
    assert main(["inspect", "nixl==1.5.1", "--json", "--no-cache"]) == 0
    report = json.loads(capsys.readouterr().out)
    requirements = {d["requirement"] for d in report["dependencies"]}
    assert {"nixl-cu12==1.5.1", "nixl-cu13==1.5.1"} <= requirements
    assert report["role"] == "meta"


def test_lmcache_0_4_4_is_read_by_ranges(index):
    report = inspect_release(index, "lmcache", Version("0.4.4"), ENVIRONMENTS, FamilyTable())
    names = {d.name for d in report.dependencies}
    assert "cupy-cuda12x" in names and "cupy-cuda13x" not in names
    assert report.metadata_source in ("range", "pep658")


def test_torch_2_10_0_answers_without_downloading_a_wheel(index):
    before = index.blocking.client.stats.bytes
    report = inspect_release(index, "torch", Version("2.10.0"), ENVIRONMENTS, FamilyTable())
    assert any(d.name == "nvidia-cublas-cu12" for d in report.dependencies)
    assert report.metadata_source in ("range", "pep658")
    fetched = index.blocking.client.stats.bytes - before - index.blocking.client.stats.bytes_by_kind["project"]
    assert fetched < 10_000_000  # the wheel is 900 MB: its METADATA and its file list (for inspect) are read by ranges


def cuda_majors_inside(path: Path) -> dict[str, int]:
    """Every pinned project of a file that belongs to a CUDA major, with that major."""
    families = FamilyTable()
    found = {}
    for pin in parse(path.read_text(), str(path)).pins:
        major = families.major_of(pin.name, pin.version)
        if major is not None:
            found[pin.name] = major
    return found


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("constraints")
    assert main(["compile", "-o", str(output), "--cache-dir", str(tmp_path_factory.mktemp("cache")), "-q"]) == 0
    return output


def test_a_compile_keeps_the_committed_files_byte_for_byte(tmp_path, monkeypatch):
    """A scheduled regeneration without -U, in a copy of this repository: the files (and the lock files) come out
    unchanged."""
    for part in ("pyproject.toml", "requirements", "constraints"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        copy(ROOT / part, tmp_path / part)
    monkeypatch.chdir(tmp_path)
    assert main(["compile", "-q", "--no-cache"]) == 0
    for name in ("cu12.txt", "cu13.txt", "pylock.cu12.toml", "pylock.cu13.toml"):
        assert (tmp_path / "constraints" / name).read_bytes() == (ROOT / "constraints" / name).read_bytes()


def test_vllm_shaped_input_on_pypi_alone_gives_cuda_13_and_names_the_pytorch_index_for_cuda_12(tmp_path, monkeypatch, capsys):
    (tmp_path / "requirements").mkdir()
    kv = (ROOT / "requirements" / "kv_connectors.txt").read_text()
    (tmp_path / "requirements" / "vllm.txt").write_text("torch == 2.14.0\n" + kv)
    (tmp_path / "pyproject.toml").write_text('[tool.cuda-constraints]\nrequirements = ["requirements/vllm.txt"]\n')
    monkeypatch.chdir(tmp_path)
    assert main(["compile", "-q", "--keep-going", "--no-cache"]) == 4
    err = capsys.readouterr().err
    assert "CUDA 12 (cp312 manylinux_2_28_x86_64): cannot resolve the requirements" in err
    assert 'torch-backend = "cu129"' in err
    inside = cuda_majors_inside(tmp_path / "constraints" / "cu13.txt")
    assert set(inside.values()) == {13} and not (tmp_path / "constraints" / "cu12.txt").exists()


@pytest.mark.parametrize("directory", ["compiled", "committed"])
def test_each_file_holds_only_its_own_major(directory, compiled):
    folder = compiled if directory == "compiled" else ROOT / "constraints"
    for major in (12, 13):
        path = folder / f"cu{major}.txt"
        inside = cuda_majors_inside(path)
        assert inside and set(inside.values()) == {major}, inside
        document = parse(path.read_text(), str(path))
        pins = {p.name: p.version for p in document.pins}
        assert f"nixl-cu{major}" in pins and f"nixl-cu{25 - major}" not in pins
        assert pins[f"nixl-cu{major}"] == pins["nixl"]
        assert (pins["torch"] < Version("2.11")) == (major == 12)
        assert [e.name for e in document.excluded] == [f"nixl-cu{25 - major}"]
    cu12 = parse((folder / "cu12.txt").read_text(), "cu12.txt")
    assert [(s.original_name, s.replacement_name) for s in cu12.swapped] == [("cupy-cuda13x", "cupy-cuda12x")]
    cu13 = parse((folder / "cu13.txt").read_text(), "cu13.txt")
    assert [(s.original_name, s.replacement_name) for s in cu13.swapped] == [
        ("mooncake-transfer-engine", "mooncake-transfer-engine-cuda13")
    ]


def pins_for_platform(path: Path, machine: str) -> dict[str, str]:
    environment = {**ENVIRONMENTS[0].markers, "platform_machine": machine}
    return {n: str(v) for n, v in parse(path.read_text(), str(path)).pins_for(environment).items()}


UV = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
needs_uv = pytest.mark.skipif(not Path(UV).exists(), reason="needs uv")


def uv_resolves(path: Path, machine: str, glibc: str, tmp_path: Path) -> dict[str, str]:
    """What uv resolves from a constraints file alone (and its exclusions), for one platform."""
    document = parse(path.read_text(), str(path))
    excludes = tmp_path / f"excludes-{machine}.txt"
    excludes.write_text("".join(f"{e.name}\n" for e in document.excluded))
    output = tmp_path / f"out-{machine}.txt"
    subprocess.run(
        [UV, "pip", "compile", str(path), "--excludes", str(excludes), "--python-version", "3.12",
         "--python-platform", f"{machine}-manylinux_{glibc}", "--no-header", "--no-annotate", "-q", "-o", str(output)],
        check=True,
    )
    resolved = {}
    for line in output.read_text().splitlines():
        if "==" in line:
            name, version = line.split(";")[0].strip().split("==")
            resolved[name.lower()] = version
    return resolved


@needs_uv
@pytest.mark.parametrize("major", [12, 13])
@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_committed_files_are_closed_for_uv(major, machine, tmp_path):
    """uv, given the file alone (and its exclusions), adds nothing and changes nothing."""
    path = ROOT / "constraints" / f"cu{major}.txt"
    assert uv_resolves(path, machine, "2_28", tmp_path) == pins_for_platform(path, machine)


def compile_cuda_13_here(tmp_path, monkeypatch, config: str):
    """`compile` in tmp_path with this `[tool.cuda-constraints]` body: the CUDA 13 file, checked to hold no
    package of another major."""
    (tmp_path / "pyproject.toml").write_text("[tool.cuda-constraints]\n" + config)
    monkeypatch.chdir(tmp_path)
    assert main(["compile", "-q", "--no-cache"]) == 0
    path = tmp_path / "constraints" / "cu13.txt"
    assert set(cuda_majors_inside(path).values()) == {13}
    return path


@needs_uv
def test_vllm_requirements_compile_for_cuda_13_with_no_family_configuration(tmp_path, monkeypatch):
    """vLLM 0.33.0's own files (tests/data/vllm-0.33.0), on its runtime image's platform (Ubuntu 24.04:
    manylinux_2_34), with its own `exclude-dependencies`: closed, and no CUDA 12 package in it."""
    shutil.copytree(ROOT / "tests" / "data" / "vllm-0.33.0" / "requirements", tmp_path / "requirements")
    path = compile_cuda_13_here(
        tmp_path, monkeypatch,
        'requirements = ["requirements/cuda.txt", "requirements/kv_connectors.txt"]\ncuda = [13]\n'
        'platforms = ["manylinux_2_34_x86_64", "manylinux_2_34_aarch64"]\nexclude-dependencies = ["openai-harmony"]\n',
    )
    document = parse(path.read_text(), str(path))
    pins = {pin.name: pin.version for pin in document.pins}
    assert pins["torch"] == Version("2.14.0") and "nvidia-cutlass-dsl-libs-cu13" in pins and "openai-harmony" not in pins
    assert "nvidia-cutlass-dsl-libs-cu12" in {line.name for line in document.excluded}
    for machine in ("x86_64", "aarch64"):
        environment = {**ENVIRONMENTS[0].markers, "platform_machine": machine}
        expected = {n: str(v) for n, v in document.pins_for(environment).items()}
        assert uv_resolves(path, machine, "2_34", tmp_path) == expected


def test_sglang_requirements_compile_for_cuda_13(tmp_path, monkeypatch):
    """sglang 0.5.23's dependencies (tests/data/sglang-0.5.23, from its wheel's METADATA): its wheels are
    manylinux_2_34 only."""
    (tmp_path / "requirements").mkdir()
    shutil.copy(ROOT / "tests" / "data" / "sglang-0.5.23" / "requirements.txt", tmp_path / "requirements" / "sglang.txt")
    path = compile_cuda_13_here(
        tmp_path, monkeypatch,
        'requirements = ["requirements/sglang.txt"]\ncuda = [13]\nplatforms = ["manylinux_2_34_x86_64", "manylinux_2_34_aarch64"]\n',
    )
    assert {pin.name: str(pin.version) for pin in parse(path.read_text(), str(path)).pins}["torch"] == "2.14.1"


def vllm_cu12_here(root: Path, torch_from: str, links_page: str, pytorch_index: str = PYTORCH_INDEX_BASE) -> Path:
    """vLLM's requirements in `root`, configured as the README's vLLM recipe for CUDA 12 (x86_64), with
    `torch_from` the lines of the major's table that say where torch comes from (none: PyPI), LMCache's
    page at `links_page` and the PyTorch index at `pytorch_index`."""
    shutil.copytree(ROOT / "tests" / "data" / "vllm-0.33.0" / "requirements", root / "requirements")
    kv = root / "requirements" / "kv_connectors_cu12.txt"
    kv.write_text(kv.read_text().replace(LMCACHE_CU129, links_page))
    (root / "pyproject.toml").write_text(
        '[tool.cuda-constraints]\nrequirements = ["requirements/cuda.txt"]\nplatforms = ["manylinux_2_34_x86_64"]\n'
        f'exclude-dependencies = ["openai-harmony"]\npytorch-index = "{pytorch_index}"\n'
        f'[tool.cuda-constraints.cuda.12]\n{torch_from}extra-requirements = ["requirements/kv_connectors_cu12.txt"]\n'
    )
    return root


@pytest.mark.parametrize("mirror", ["pytorch-index", "find-links"])
def test_vllm_cuda_12_inputs_compile_from_pypi_with_a_local_pytorch_index_and_release_page(mirror, tmp_path, monkeypatch, capsys):
    """vLLM 0.33.0's CUDA 12 inputs against the real PyPI, with the PyTorch index of CUDA 12.9 and LMCache's
    release page (which this machine may not reach) served from their imitation (tests/imitated.py) as
    the README's rehearsal does: a mirror as `pytorch-index`, or a find-links directory of the wheels.
    nixl 1.5.0's CUDA 12 builds stop at torch 2.14.0's pin; the file is written once that is allowed."""
    pytorch, assets = served()
    with IndexServer(pytorch) as pytorch_server, IndexServer(assets) as github:
        torch_from = 'torch-backend = "cu129"\n' if mirror == "pytorch-index" else 'find-links = ["wheels/cu129"]\n'
        vllm_cu12_here(tmp_path, torch_from, github.url + LINKS_PAGE, f"{pytorch_server.url}/whl")
        wheels = tmp_path / "wheels" / "cu129"
        wheels.mkdir(parents=True)
        backend = pytorch.backends["cu129"]
        for release in (r for releases in backend.releases.values() for r in releases):
            for tag in release.tags:
                (wheels / release.wheel_filename(tag)).write_bytes(release.wheel_bytes(tag))
        monkeypatch.chdir(tmp_path)
        assert main(["compile", "-q", "--no-cache"]) == 4
        err = capsys.readouterr().err
        assert "torch==2.14.0 is required by requirements/cuda.txt:7" in err
        assert "nixl-cu12==1.5.0's wheel has builds for torch 2.11, 2.12, 2.13" in err
        # (needs --allow-torch-build-mismatch, issue #24)
        assert main(["compile", "-q", "--no-cache", "--allow-torch-build-mismatch", "nixl"]) == 0, capsys.readouterr().err
    path = tmp_path / "constraints" / "cu12.txt"
    text = path.read_text()
    pins = {pin.name: str(pin.version) for pin in parse(text, str(path)).pins}
    assert pins["torch"] == "2.14.0+cu129" and pins["nixl"] == pins["nixl-cu12"] == "1.5.0" and pins["lmcache"] == "0.5.6"
    assert set(cuda_majors_inside(path).values()) == {12}
    assert "nixl_ep will not load" in text
    served_by = "wheels/cu129" if mirror == "find-links" else f"{pytorch_server.url}/whl/cu129"
    assert f"{served_by}  (serves torch, torchaudio, torchcodec, torchvision" in text


def test_vllm_cuda_12_inputs_on_pypi_alone_name_the_pytorch_index(tmp_path, monkeypatch, capsys):
    """Without `torch-backend`, torch 2.14.0 comes from PyPI, a CUDA 13 build: the message says where the
    CUDA 12 build is (LMCache's page served from its imitation: github.com may be out of reach)."""
    _, assets = served()
    with IndexServer(assets) as github:
        vllm_cu12_here(tmp_path, "", github.url + LINKS_PAGE)
        monkeypatch.chdir(tmp_path)
        # (Needs --allow-torch-build-mismatch, issue #24: without it nixl's builds for torch 2.11 to 2.13
        # are the conflict named.)
        assert main(["compile", "-q", "--no-cache", "--allow-torch-build-mismatch", "nixl"]) == 4
    err = capsys.readouterr().err
    assert "CUDA 12 (cp312 manylinux_2_34_x86_64): cannot resolve the requirements" in err
    assert 'torch-backend = "cu129"' in err and not (tmp_path / "constraints" / "cu12.txt").exists()


@pytest.mark.parametrize("major", [12, 13])
def test_every_pinned_nixl_member_ships_an_nixl_ep_build_for_the_pinned_torch(index, major):
    """On both platforms: a build tagged for the pinned torch, or (nixl-cu12 1.3.0, the newest a CUDA 12
    torch from PyPI allows) an untagged one that the header says it cannot check."""
    path = ROOT / "constraints" / f"cu{major}.txt"
    document = parse(path.read_text(), str(path))
    families = FamilyTable()
    for environment in ENVIRONMENTS:
        pins = document.pins_for(environment.markers)
        member = f"nixl-cu{major}"
        release = index.project(member).release(pins[member])
        torch = pins["torch"]
        for file in (f for f in release.files if f.is_wheel and environment.platform.machine in f.filename and "cp312" in f.filename):
            builds = read_torch_builds(*families.torch_builds(member), index.extension_modules(file))
            assert builds is not None, file.filename
            if builds.minors:
                assert (torch.major, torch.minor) in builds.minors, f"{file.filename}: {builds.describe()}, torch {torch}"
            else:
                assert TorchBuildLine(f"{member}=={release.version}", builds.describe()) in document.torch_builds


def test_check_online_reports_only_what_an_upgrade_would_change(capsys, monkeypatch):
    """A dry run of `compile --upgrade`: lmcache 0.5.6 (CUDA 13 only) is never news for CUDA 12, and
    --strict fails exactly when some pin would move."""
    monkeypatch.chdir(ROOT)
    code = main(["check", "--online", "--strict", "--no-cache"])
    out = capsys.readouterr().out
    assert "constraints/cu12.txt: up to date" in out and "constraints/cu13.txt: up to date" in out
    moved = [line.strip() for line in out.split("up to date")[-1].splitlines() if " -> " in line]
    assert code == (1 if moved else 0)
    cu12 = out.split("cu12.txt: `")[1].split("cu13.txt: `")[0] if "cu12.txt: `" in out else ""
    assert "lmcache" not in cu12 and "cuda13" not in cu12


# -- the page parser against packaging, on real pages ------------------------------------------------------


@pytest.mark.parametrize("name", ["regex", "numpy", "torch", "nvidia-cublas", "pydantic-core", "setuptools"])
def test_a_real_pep_691_page_parses_as_packaging_reads_its_file_names(name):
    """Every wheel and sdist packaging accepts lands in its version's release with the page's own facts,
    newest release first; nothing else is kept (the parser reads names itself, for speed)."""
    import httpx
    from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, canonicalize_name, parse_sdist_filename, parse_wheel_filename

    from resolver.index.pages import SIMPLE_JSON, parse_simple

    body = httpx.get(f"https://pypi.org/simple/{name}/", headers={"Accept": SIMPLE_JSON}, timeout=60).content
    expected: dict[Version, list[tuple]] = {}
    for entry in json.loads(body)["files"]:
        filename = entry["filename"]
        try:
            parsed = parse_wheel_filename(filename)[:2] if filename.endswith(".whl") else parse_sdist_filename(filename)
        except (InvalidWheelFilename, InvalidSdistFilename):
            continue
        if parsed[0] != canonicalize_name(name):
            continue
        core = entry.get("core-metadata", entry.get("dist-info-metadata", False))
        expected.setdefault(parsed[1], []).append((
            filename, entry["url"], entry["hashes"].get("sha256"), entry.get("requires-python") or None,
            (" ".join(entry["yanked"].split()) or True) if isinstance(entry.get("yanked"), str) else bool(entry.get("yanked")),
            entry.get("size"), entry.get("upload-time"), bool(core), core.get("sha256") if isinstance(core, dict) else None,
        ))
    page = parse_simple(body, SIMPLE_JSON, canonicalize_name(name))
    found = {Version(version): [tuple(row) for row in json.loads(rows)] for version, rows in page.releases.items()}
    assert found == expected
    assert [Version(v) for v in page.releases] == sorted(expected, reverse=True)
    assert len(expected) > 5 and page.secret is False


@pytest.mark.parametrize("name", ["numpy", "torch", "nvidia-cublas-cu12", "pydantic-core", "cupy-cuda13x"])
def test_every_real_wheels_rank_is_what_packaging_reads_from_its_name(name):
    """A wheel for another system is passed over by the platform part of its name, unparsed; for every
    wheel on a real page the rank is still what packaging's reading of the whole name gives."""
    import httpx

    from resolver.index.pages import SIMPLE_JSON
    from resolver.model.distributions import DistFile
    from resolver.model.targets import Environment, Platform, PythonVersion
    from resolver.resolve.selection import compatible_rank

    from .conftest import packaging_rank

    body = httpx.get(f"https://pypi.org/simple/{name}/", headers={"Accept": SIMPLE_JSON}, timeout=60).content
    filenames = [entry["filename"] for entry in json.loads(body)["files"] if entry["filename"].endswith(".whl")]
    ranked = 0
    for platform in ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "manylinux_2_34_x86_64"):
        environment = Environment(PythonVersion(3, 12), Platform(platform))
        for filename in filenames:
            expected = packaging_rank(filename, environment)
            assert compatible_rank(DistFile(filename=filename, url=filename), environment) == expected, (filename, platform)
            ranked += expected is not None
    assert len(filenames) > 20 and ranked > 0
