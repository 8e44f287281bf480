"""Several indexes: a PyPI-style index and a PyTorch-style one (HTML only, local versions, `.metadata`
files) served on 127.0.0.1, find-links directories and pages, the routing between them, and real uv and
pip installing what was compiled from them. Every server's log shows what was asked where."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from resolver.cli.main import main
from resolver.files.config import read_environment
from resolver.files.constraints import IndexLine, parse

from .conftest import INDEX_VARIABLES, forget_the_machine_indexes
from .index_server import PLATFORM, PYTHON_VERSION, WHEEL_TAG, IndexServer, ServedIndex, pypi_like, pytorch_like
from .installers import installed, isolate_installers, new_venv
from .synthetic import KV_REQUIREMENTS, SyntheticIndex

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the synthetic wheels are manylinux wheels")
HERE = (WHEEL_TAG,)
TARGET = f'python-versions = ["{PYTHON_VERSION}"]\nplatforms = ["{PLATFORM}"]\ncanaries = ["nixl"]\n'
FAST = ["-q", "--no-cache", "--retries", "0"]


@pytest.fixture(scope="module")
def servers():
    with IndexServer(pypi_like()) as pypi, IndexServer(pytorch_like()) as pytorch:
        yield pypi, pytorch


def vllm_shaped(root: Path, pytorch: IndexServer, pypi: IndexServer, extra: str = "") -> Path:
    """torch==2.14.0 and the KV set, torch from the PyTorch index of each major's CUDA version."""
    (root / "requirements").mkdir(parents=True, exist_ok=True)
    (root / "requirements" / "vllm.txt").write_text("torch == 2.14.0\n" + KV_REQUIREMENTS)
    (root / "pyproject.toml").write_text(
        '[tool.cuda-constraints]\nrequirements = ["requirements/vllm.txt"]\n'
        f'index-url = "{pypi.simple_url}"\npytorch-index = "{pytorch.url}/whl"\n{TARGET}{extra}'
        '[tool.cuda-constraints.cuda.12]\ntorch-backend = "cu129"\n'
        '[tool.cuda-constraints.cuda.13]\ntorch-backend = "cu130"\n'
    )
    return root


@pytest.fixture(scope="module")
def compiled(servers, tmp_path_factory):
    """The vLLM-shaped project, compiled once; the servers' logs of that compile."""
    pypi, pytorch = servers
    root = vllm_shaped(tmp_path_factory.mktemp("vllm"), pytorch, pypi)
    pypi.index.requests.clear()
    pytorch.index.requests.clear()
    with pytest.MonkeyPatch.context() as patch:
        forget_the_machine_indexes(patch, root)
        patch.chdir(root)
        assert main(["compile", *FAST]) == 0
    return root, list(pypi.index.paths()), list(pytorch.index.paths())


def pins(root: Path, major: int) -> dict[str, str]:
    return {pin.name: str(pin.version) for pin in parse((root / "constraints" / f"cu{major}.txt").read_text(), "cu.txt").pins}


def test_each_major_takes_torch_from_its_pytorch_index(compiled, servers):
    root, _, _ = compiled
    pypi, pytorch = servers
    cu12, cu13 = pins(root, 12), pins(root, 13)
    assert cu12["torch"] == "2.14.0+cu129" and cu13["torch"] == "2.14.0+cu130"
    assert cu12["nvidia-cublas-cu12"] == "12.9.1.4" and "nvidia-cublas" not in cu12
    assert cu13["nvidia-cublas"] == "13.4.1.3" and "nvidia-cublas-cu12" not in cu13
    assert {"nixl-cu12", "cupy-cuda12x", "mooncake-transfer-engine"} <= set(cu12) and not {"nixl-cu13", "cupy-cuda13x"} & set(cu12)
    assert cu12["numpy"] == cu13["numpy"] == "2.2.6"  # PyPI's numpy: the PyTorch index serves torch only
    document = parse((root / "constraints" / "cu12.txt").read_text(), "cu12.txt")
    assert document.index_strategy == "first-index"
    assert document.indexes == (
        IndexLine("explicit", f"{pytorch.url}/whl/cu129", ("torch",)),
        IndexLine("default", pypi.simple_url),
    )
    assert "torch==2.14.0+cu129\n    # via\n    #   -r requirements/vllm.txt" in (root / "constraints" / "cu12.txt").read_text()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert main(["check"]) == 0


def test_a_routed_project_is_asked_of_its_index_only_and_nothing_else_is(compiled):
    """No dependency confusion: torch is never looked up on the PyPI-style index, and the PyTorch index is
    asked for torch alone (it serves numpy too)."""
    _, pypi_paths, pytorch_paths = compiled
    assert not [path for path in pypi_paths if path.startswith("/simple/torch")]
    pages = {path for path in pytorch_paths if path.endswith("/")}
    assert pages == {"/whl/cu129/torch/", "/whl/cu130/torch/"}
    assert any(path.endswith(".whl.metadata") for path in pytorch_paths)  # PEP 658, from an HTML page


def test_without_the_pytorch_index_cuda_12_fails_and_keep_going_writes_cuda_13(servers, tmp_path, monkeypatch, capsys):
    pypi, pytorch = servers
    root = vllm_shaped(tmp_path, pytorch, pypi)
    config = root / "pyproject.toml"
    config.write_text(config.read_text().replace('torch-backend = "cu129"', ""))
    monkeypatch.chdir(root)
    assert main(["compile", *FAST]) == 4
    err = capsys.readouterr().err
    assert "CUDA 12" in err and "torch" in err and not (root / "constraints").exists()
    assert 'hint: torch on PyPI is built for one CUDA version; for CUDA 12, take it from the PyTorch index with `torch-backend' in err
    assert main(["compile", *FAST, "--keep-going"]) == 4
    err = capsys.readouterr().err
    assert "CUDA 12 failed; its file was left as it was (--keep-going wrote the others)" in err
    assert not (root / "constraints" / "cu12.txt").exists() and pins(root, 13)["torch"] == "2.14.0+cu130"


@pytest.mark.parametrize("installer", ["uv", "pip"])
@pytest.mark.parametrize("major", [12, 13])
def test_uv_and_pip_install_each_file_from_both_indexes(compiled, servers, monkeypatch, tmp_path, capsys, installer, major):
    root, _, _ = compiled
    pypi, pytorch = servers
    isolate_installers(monkeypatch, tmp_path)
    monkeypatch.chdir(root)
    monkeypatch.setenv("CUDA_CONSTRAINTS_CUDA_MAJOR", str(major))
    python = new_venv(tmp_path / "venv")
    pypi.index.requests.clear()
    pytorch.index.requests.clear()
    assert main(["install", "--python", python, "--installer", installer]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert installed(python) == pins(root, major)
    assert f"CUDA {major}: all verified" in out.splitlines()[-1]
    backend = "cu129" if major == 12 else "cu130"
    # torch from the PyTorch index; a file both serve under one name and version may come from either.
    assert f"/whl/{backend}/torch-2.14.0%2B{backend}-{WHEEL_TAG}.whl" in pytorch.index.paths()
    assert not [p for p in pypi.index.paths() if "/torch-" in p]


def test_install_dry_run_names_both_indexes(compiled, servers, capsys, monkeypatch):
    root, _, _ = compiled
    pypi, pytorch = servers
    monkeypatch.chdir(root)
    assert main(["install", "--cuda", "12", "--installer", "uv", "--dry-run"]) == 0
    command = capsys.readouterr().out.splitlines()[-1]
    expected = f"--default-index {pypi.simple_url} --extra-index-url {pytorch.url}/whl/cu129 --index-strategy unsafe-best-match"
    assert expected in command


# -- first-index, routing and unsafe-best-match -------------------------------------------------------------


def private_index() -> SyntheticIndex:
    index = SyntheticIndex()
    index.add("our-kernels", "1.0", ["numpy"], tags=HERE)
    return index


@pytest.fixture
def public_and_private():
    public = pypi_like()
    public.add("our-kernels", "9.9", tags=HERE)  # a squatter on the public index, with a higher version
    with IndexServer(public) as pypi, IndexServer(private_index()) as private:
        yield pypi, private


def compile_our_kernels(root: Path, config: str, *arguments: str) -> dict[str, str]:
    (root / "requirements").mkdir(exist_ok=True)
    (root / "requirements" / "ours.txt").write_text("our-kernels\nnixl\n")
    (root / "pyproject.toml").write_text(f'[tool.cuda-constraints]\nrequirements = ["requirements/ours.txt"]\n{TARGET}{config}')
    assert main(["compile", *FAST, "--cuda", "13", *arguments]) == 0
    return pins(root, 13)


def test_first_index_never_asks_a_later_index_for_a_name_an_earlier_one_has(public_and_private, tmp_path, monkeypatch):
    pypi, private = public_and_private
    monkeypatch.chdir(tmp_path)
    found = compile_our_kernels(tmp_path, "", "--index-url", pypi.simple_url, "--extra-index-url", private.simple_url)
    assert found["our-kernels"] == "1.0"
    assert "/simple/our-kernels/" not in pypi.index.paths()
    assert "/simple/numpy/" in private.index.paths()  # not there: asked of the next index
    header = parse((tmp_path / "constraints" / "cu13.txt").read_text(), "cu13.txt").indexes
    assert header == (IndexLine("extra", private.simple_url, ("our-kernels",)), IndexLine("default", pypi.simple_url))


def test_a_project_routed_to_an_explicit_index_is_the_only_thing_asked_of_it(public_and_private, tmp_path, monkeypatch):
    pypi, private = public_and_private
    monkeypatch.chdir(tmp_path)
    config = (f'index-url = "{pypi.simple_url}"\n[[tool.cuda-constraints.index]]\nname = "internal"\n'
              f'url = "{private.simple_url}"\nexplicit = true\n[tool.cuda-constraints.sources]\nour-kernels = "internal"\n')
    assert compile_our_kernels(tmp_path, config)["our-kernels"] == "1.0"
    assert {path for path in private.index.paths() if path.startswith("/simple/")} == {"/simple/our-kernels/"}
    assert "/simple/our-kernels/" not in pypi.index.paths()


def test_unsafe_best_match_asks_every_index_and_takes_the_best(public_and_private, tmp_path, monkeypatch):
    pypi, private = public_and_private
    monkeypatch.chdir(tmp_path)
    found = compile_our_kernels(tmp_path, 'index-strategy = "unsafe-best-match"\n', "--index-url", pypi.simple_url,
                                "--extra-index-url", private.simple_url)
    assert found["our-kernels"] == "9.9" and "/simple/our-kernels/" in pypi.index.paths()
    assert "# indexes (unsafe-best-match)" in (tmp_path / "constraints" / "cu13.txt").read_text()


# -- close names from an index's root listing --------------------------------------------------------------


class RootAnswers(ServedIndex):
    """A private index whose root answers `root` (status, headers, body) instead of its listing."""

    def __init__(self, root: tuple[int, dict[str, str], bytes] | None = None, **options: bool) -> None:
        super().__init__(**options)
        self.root = root

    def root_listing(self, accept: str = "") -> tuple[int, dict[str, str], bytes]:
        return super().root_listing(accept) if self.root is None else self.root


def our_kernels(index: ServedIndex) -> ServedIndex:
    index.add("our-kernels", "1.0", tags=HERE)
    index.add("numpy", "2.2.6", tags=HERE)
    return index


def compile_in_a_subprocess(root: Path, requirements: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`python -m resolver compile` from the index given alone, nothing cached, no index of the machine's."""
    (root / "requirements").mkdir(exist_ok=True)
    (root / "requirements" / "ours.txt").write_text(requirements)
    (root / "pyproject.toml").write_text(f'[tool.cuda-constraints]\nrequirements = ["requirements/ours.txt"]\n{TARGET}')
    environment = {key: value for key, value in os.environ.items() if key not in INDEX_VARIABLES}
    return subprocess.run([sys.executable, "-m", "resolver", "compile", *FAST, "--cuda", "13", *arguments], cwd=root,
                          capture_output=True, text=True, check=False, timeout=120, env={**environment, "NETRC": str(root / "no-netrc")})


ROOT_LISTING = b'<a href="/simple/our-kernels/">our-kernels</a>\n<a href="/simple/numpy/">numpy</a>\n'


@pytest.mark.parametrize("index", [
    pytest.param(lambda: our_kernels(ServedIndex()), id="PEP 691 JSON"),
    pytest.param(lambda: our_kernels(ServedIndex(html_only=True)), id="PEP 503 HTML"),
])
def test_a_misspelt_project_is_suggested_from_the_root_listing_of_the_index_asked(tmp_path, index):
    """Nothing local knows our-kernels (no input, no cache, no family): only the index's root lists it."""
    served = index()
    with IndexServer(served) as private:
        done = compile_in_a_subprocess(tmp_path, "our-kernals\n", "--index-url", private.simple_url)
        environment = {key: value for key, value in os.environ.items() if key not in INDEX_VARIABLES}
        inspected = subprocess.run([sys.executable, "-m", "resolver", "inspect", "our-kernals", "--no-cache", "--index-url",
                                    private.simple_url], cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120,
                                   env=environment)
    assert done.returncode == 2, done.stderr
    assert (f"requirements/ours.txt:1: our-kernals: no project named 'our-kernals' on {private.simple_url}. Did you mean our-kernels? "
            in done.stderr), done.stderr
    assert served.paths().count("/simple/") == 2 and "Traceback" not in done.stderr  # once for each run
    assert inspected.returncode == 2 and "Did you mean our-kernels?" in inspected.stderr, inspected.stderr


def test_an_index_that_asks_for_credentials_gets_them_for_its_root_and_they_are_never_shown(tmp_path):
    served = our_kernels(ServedIndex())
    with IndexServer(served, credentials=("me", "s3cret-token")) as private:
        url = private.simple_url.replace("http://", "http://me:s3cret-token@")
        done = compile_in_a_subprocess(tmp_path, "our-kernals\n", "--index-url", url)
    assert done.returncode == 2, done.stderr
    assert "Did you mean our-kernels? " in done.stderr and "s3cret-token" not in done.stderr + done.stdout
    assert all(authorization is not None for path, authorization in private.authorizations if path == "/simple/")


def test_a_directory_served_by_http_server_offers_its_listing(tmp_path):
    """A PEP 503 tree served by `python -m http.server`: its directory listing is the root's."""
    tree = tmp_path / "tree" / "simple"
    served = our_kernels(ServedIndex())
    for name in ("our-kernels", "numpy"):
        (tree / name).mkdir(parents=True)
        (tree / name / "index.html").write_text(served.simple_page(name).replace('href="/packages/', 'href="../../packages/'))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "tree"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = compile_in_a_subprocess(tmp_path, "our-kernals\n", "--index-url", f"http://127.0.0.1:{server.server_address[1]}/simple")
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 2, done.stderr
    assert "no project named 'our-kernals' on http://127.0.0.1:" in done.stderr and "Did you mean our-kernels? " in done.stderr


def oversized() -> bytes:
    """A listing of our-kernels and then 2 MiB of other names (fewer than ROOT_NAMES): too long to be read."""
    names = ["our-kernels", *(f"project-{number:05d}-of-a-listing-too-long-to-read" for number in range(40_000))]
    return json.dumps({"meta": {"api-version": "1.0"}, "projects": [{"name": name} for name in names]}).encode()


@pytest.mark.parametrize("root", [
    pytest.param((404, {"Content-Type": "text/html"}, ROOT_LISTING), id="404 with a listing as its body"),
    pytest.param((200, {"Content-Type": "application/vnd.pypi.simple.v1+json"}, oversized()), id="over 2 MiB"),
    pytest.param((200, {"Content-Type": "application/vnd.pypi.simple.v1+json"}, b'{"projects": [{"name": "our-kernels"'),
                 id="truncated JSON"),
    pytest.param((500, {}, ROOT_LISTING), id="a server error"),
])
def test_a_root_that_cannot_be_used_leaves_the_plain_error(tmp_path, root):
    """No suggestion, the same error and exit code: a listing is a help, never a failure of its own."""
    served = our_kernels(RootAnswers(root))
    with IndexServer(served) as private:
        done = compile_in_a_subprocess(tmp_path, "our-kernals\n", "--index-url", private.simple_url)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: requirements/ours.txt:1: our-kernals: no project named 'our-kernals' on "
                                  f"{private.simple_url}. Check the spelling in your requirements"), done.stderr
    assert "Did you mean" not in done.stderr and "Traceback" not in done.stderr
    assert "/simple/" in served.paths()


# -- find-links ----------------------------------------------------------------------------------------------


def test_find_links_directory_from_a_requirements_line(servers, tmp_path, monkeypatch, capsys):
    pypi, _ = servers
    local = SyntheticIndex()
    local.add("local-kernels", "0.1", ["numpy"], tags=HERE)
    (tmp_path / "wheels").mkdir()
    for filename, _ in local.files_of(local.releases["local-kernels"][0]):
        (tmp_path / "wheels" / filename).write_bytes(local.file_bytes(filename) or b"")
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "local.txt").write_text("--find-links ../wheels\nlocal-kernels\nnixl\n")
    (tmp_path / "pyproject.toml").write_text(f'[tool.cuda-constraints]\nrequirements = ["requirements/local.txt"]\n{TARGET}')
    monkeypatch.chdir(tmp_path)
    assert main(["compile", *FAST, "--cuda", "13", "--index-url", pypi.simple_url]) == 0
    text = (tmp_path / "constraints" / "cu13.txt").read_text()
    assert pins(tmp_path, 13)["local-kernels"] == "0.1"
    assert "#   find-links wheels  (serves local-kernels)\n" in text and str(tmp_path) not in text
    isolate_installers(monkeypatch, tmp_path)
    monkeypatch.setenv("CUDA_CONSTRAINTS_CUDA_MAJOR", "13")
    python = new_venv(tmp_path / "venv")
    capsys.readouterr()
    assert main(["install", "--python", python, "--installer", "uv", "--index-url", pypi.simple_url]) == 0, capsys.readouterr().err
    assert installed(python)["local-kernels"] == "0.1"
    assert f"--find-links {tmp_path / 'wheels'}" in capsys.readouterr().out


def test_find_links_page_for_one_major_wins_over_the_index_file_of_the_same_name(servers, tmp_path, monkeypatch):
    """vLLM's CUDA 12 lmcache comes from a release page of CUDA 12 builds, beside PyPI's CUDA 13 build of the
    same version: for CUDA 12 the page's file is taken, for CUDA 13 (no find-links) PyPI's."""
    pypi, pytorch = servers
    assets = SyntheticIndex()
    assets.add("lmcache", "0.5.6", ["torch", "cupy-cuda12x", "cuda-python<13,>=12"], tags=HERE)
    assets.links_page = "/LMCache/releases/expanded_assets/v0.5.6-cu129"
    with IndexServer(assets) as github:
        page = github.url + assets.links_page
        root = vllm_shaped(tmp_path, pytorch, pypi)
        config = root / "pyproject.toml"
        config.write_text(config.read_text().replace('torch-backend = "cu129"\n', f'torch-backend = "cu129"\nfind-links = ["{page}"]\n'))
        (root / "requirements" / "vllm.txt").write_text("torch == 2.14.0\nlmcache == 0.5.6\nnixl\n")
        monkeypatch.chdir(root)
        assert main(["compile", *FAST]) == 0
    cu12, cu13 = pins(root, 12), pins(root, 13)
    assert cu12["lmcache"] == cu13["lmcache"] == "0.5.6"
    assert "cupy-cuda12x" in cu12 and cu12["cuda-python"] == "12.9.4"
    assert "cupy-cuda13x" in cu13 and cu13["cuda-python"] == "13.4.4"
    assert f"#   find-links {page}  (serves lmcache)" in (root / "constraints" / "cu12.txt").read_text()
    assert "find-links" not in (root / "constraints" / "cu13.txt").read_text()


def test_check_refuses_a_build_of_another_cuda_version_by_its_local_label(compiled, tmp_path, monkeypatch, capsys):
    root, _, _ = compiled
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".cuda-constraints"))
    cu12 = copy / "constraints" / "cu12.txt"
    cu12.write_text(cu12.read_text().replace("torch==2.14.0+cu129", "torch==2.14.0+cu130"))
    monkeypatch.chdir(copy)
    assert main(["check"]) == 1
    assert "torch==2.14.0+cu130 is a CUDA 13 package, in the CUDA 12 file" in capsys.readouterr().err


def test_the_environment_names_indexes_as_pip_and_uv_read_it():
    found = read_environment({
        "UV_INDEX": "internal=https://internal.example/simple https://other.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://pip-extra.example/simple",
        "PIP_FIND_LINKS": "/opt/wheels https://example.com/links",
        "UV_INDEX_STRATEGY": "unsafe-best-match",
        "PIP_NO_INDEX": "yes",
        "PIP_INDEX_URL": "https://mirror.example/simple",
    })
    assert found.index_url == "https://mirror.example/simple" and found.index_source == "PIP_INDEX_URL"
    assert found.extra_index_urls == (
        "https://internal.example/simple", "https://other.example/simple", "https://pip-extra.example/simple",
    )
    assert found.find_links == ("/opt/wheels", "https://example.com/links")
    assert found.strategy == "unsafe-best-match" and found.no_index
    assert not read_environment({"UV_NO_INDEX": "0"}).no_index


def test_a_find_links_directory_of_the_environment_is_shown_as_given_and_named_by_its_variable(tmp_path, monkeypatch, inside, capsys):
    """PIP_FIND_LINKS=/somewhere/wheels outside the project: messages show that path, not `../../../…`, and
    the summary (and -v) say which variable named it."""
    from resolver.cli.main import main

    from .synthetic import KV_REQUIREMENTS, kv_connectors_index, served, write_project

    wheels = tmp_path / "machine" / "wheels"
    wheels.mkdir(parents=True)
    (tmp_path / "deep" / "down" / "project").mkdir(parents=True)
    project = write_project(tmp_path / "deep" / "down" / "project", requirements={"kv.txt": KV_REQUIREMENTS + "notonpypi\n"})
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    with served(kv_connectors_index()):
        inside(project)
        assert main(["compile", "--no-cache", "--retries", "0", "-v"]) == 2
        err = capsys.readouterr().err
        assert f"no project named 'notonpypi' on https://index.test/simple or {wheels}." in err and "../" not in err
        assert f"CUDA 13 asks, in order: default https://index.test/simple; find-links {wheels} (from PIP_FIND_LINKS)" in err
        (project / "requirements" / "kv.txt").write_text(KV_REQUIREMENTS)
        assert main(["compile", "-q", "--no-cache", "--retries", "0"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"from the environment: find-links {wheels} (from PIP_FIND_LINKS)"


def test_the_pytorch_hint_reads_the_projects_a_failure_involves_and_the_backend_configured():
    """Decided from the failure's projects, not from its text; the backend is the major's configured one
    (its default where none is), never a name written into the hint's code."""
    from resolver.commands.major_plan import _with_pytorch_hint
    from resolver.errors import ResolutionFailed
    from resolver.files.config import Config
    from resolver.files.config_indexes import MajorSettings
    from resolver.model.indexes import Routing

    worded = ResolutionFailed(12, "cp312 x86_64", "  torch==2.14.0 is required by requirements/cuda.txt:7", frozenset({"lmcache"}))
    assert _with_pytorch_hint(worded, Routing(), "cu129") is worded
    involved = ResolutionFailed(12, "cp312 x86_64", "  lmcache 0.5.6 requires …", frozenset({"lmcache", "torchvision"}))
    hinted = _with_pytorch_hint(involved, Routing(), Config(Path(".")).torch_backend(12))
    assert hinted.explanation.endswith('torchvision on PyPI is built for one CUDA version; for CUDA 12, take it from the PyTorch index '
                                       'with `torch-backend = "cu129"` in [tool.cuda-constraints.cuda.12] (see docs/indexes.md, '
                                       '"Using the PyTorch index")')
    assert hinted.projects == involved.projects and hinted.exit_code == 4
    assert Config(Path("."), majors={12: MajorSettings(torch_backend="cu126")}).torch_backend(12) == "cu126"
    assert Config(Path(".")).torch_backend(13) == "cu130" and Config(Path(".")).torch_backend(14) == "cu140"
