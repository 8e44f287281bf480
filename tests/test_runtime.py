"""Runtime truth without a GPU: real ELF shared objects built with gcc, packed into wheels on a local index,
installed with the real pip and uv; `verify` reads what each one needs and finds it as the loader would.
Canaries that fail only for the driver's library, and `detect` after `install`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resolver.cli.main import main
from resolver.machine import detect
from resolver.machine.detect import Probe, cuda_version_probe, decide, torch_probe
from resolver.machine.elf import Loader, parse_ldconfig, read_shared_object
from resolver.machine.interpreter import TorchReport
from resolver.model.cuda_libraries import is_driver_library, is_toolkit_library, library_major
from resolver.model.targets import Platform, PythonVersion

from .conftest import Project
from .index_server import PLATFORM, PYTHON_VERSION, WHEEL_TAG, IndexServer, ServedIndex
from .installers import installed, isolate_installers, new_venv, uv_program

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="ELF shared objects"),
    pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build shared objects"),
]
HERE = (WHEEL_TAG,)
VERBS = "libcctest_verbs.so.1"  # what an RDMA transport's plugin needs; made up, so that no host has it
RUNTIME_LIB = "nvidia/cuda_runtime/lib"


def gcc(directory: Path, output: str, source: str, *flags: str) -> bytes:
    (directory / f"{output}.c").write_text(source)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(directory / output), str(directory / f"{output}.c"), *flags], check=True)
    return (directory / output).read_bytes()


@pytest.fixture(scope="module")
def objects(tmp_path_factory) -> dict[str, bytes]:
    """A libcudart stub per major (its soname, as NVIDIA's), a driver stub to link against (never shipped),
    and an extension module per major that needs libcudart.so.N and libcuda.so.1, with NVIDIA's wheel
    layout as RUNPATH, as real extension modules have it."""
    directory = tmp_path_factory.mktemp("elf")
    built = {}
    for major in (12, 13):
        built[f"libcudart.so.{major}"] = gcc(directory, f"libcudart.so.{major}", "int cudaRuntimeGetVersion(int *v) { *v = 1; return 0; }\n",
                                             f"-Wl,-soname,libcudart.so.{major}")
    gcc(directory, "libcuda.so.1", "int cuInit(unsigned f) { return 0; }\n", "-Wl,-soname,libcuda.so.1")
    for major in (12, 13):
        built[f"_C{major}.so"] = gcc(
            directory, f"_C{major}.so", "extern int cudaRuntimeGetVersion(int *); extern int cuInit(unsigned);\n"
            "int kernels(void) { int v; cuInit(0); return cudaRuntimeGetVersion(&v); }\n",
            f"-L{directory}", f"-l:libcudart.so.{major}", "-l:libcuda.so.1", "-Wl,--enable-new-dtags",
            f"-Wl,-rpath,$ORIGIN/../{RUNTIME_LIB}",
        )
    built["_gpu.so"] = gcc(directory, "_gpu.so", "extern int cuInit(unsigned);\nint probe(void) { return cuInit(0); }\n",
                           f"-L{directory}", "-l:libcuda.so.1")
    gcc(directory, VERBS, "int verbs_open(void) { return 0; }\n", f"-Wl,-soname,{VERBS}")  # never shipped: no host has it
    built["libplugin_VERBS.so"] = gcc(directory, "libplugin_VERBS.so", "extern int verbs_open(void);\nint run(void) { return verbs_open(); }\n",
                                      f"-L{directory}", f"-l:{VERBS}")
    return built


def runtime_index(objects: dict[str, bytes]) -> ServedIndex:
    """`fastkernels 1.0` claims CUDA 13 (it requires the CUDA 13 runtime) but its extension was linked
    against libcudart.so.12, which no metadata shows; 2.0 is built right. `gpukernel` needs the driver."""
    index = ServedIndex()
    index.add("nvidia-cuda-runtime", "13.0.96", tags=HERE, members=((f"{RUNTIME_LIB}/libcudart.so.13", objects["libcudart.so.13"]),))
    index.add("nvidia-cuda-runtime-cu12", "12.9.79", tags=HERE,
              members=((f"{RUNTIME_LIB}/libcudart.so.12", objects["libcudart.so.12"]),))
    index.add("fastkernels", "1.0", ["nvidia-cuda-runtime==13.*"], tags=HERE, module="fastkernels",
              members=(("fastkernels/_C.so", objects["_C12.so"]),))
    index.add("fastkernels", "2.0", ["nvidia-cuda-runtime==13.*"], tags=HERE, module="fastkernels",
              members=(("fastkernels/_C.so", objects["_C13.so"]),))
    index.add("fastplug", "1.0", tags=HERE, module="fastplug", members=(("fastplug/plugins/libplugin_VERBS.so", objects["libplugin_VERBS.so"]),))
    index.add("gpukernel", "1.0", tags=HERE, module="gpukernel",
              module_source="import ctypes, os\nctypes.CDLL(os.path.join(os.path.dirname(__file__), '_gpu.so'))\n",
              members=(("gpukernel/_gpu.so", objects["_gpu.so"]),))
    return index


@pytest.fixture
def environment(objects, tmp_path, monkeypatch):
    """A project whose requirements the test writes, compiled for CUDA 13 and this interpreter, installed
    into a fresh venv by `install` from the index on 127.0.0.1."""
    with IndexServer(runtime_index(objects)) as server:
        isolate_installers(monkeypatch, tmp_path)
        root = tmp_path / "project"
        root.mkdir()
        monkeypatch.chdir(root)

        def compile_and_install(requirements: str, installer: str = "pip", canaries: str = "[]") -> tuple[int, str, str]:
            (root / "pyproject.toml").write_text(f'[tool.cuda-constraints]\nrequirements = ["requirements/kv.txt"]\ncanaries = {canaries}\n')
            project = Project(root, server.index)
            project.write(requirements)
            project.compile(majors=(13,), platforms=(Platform(PLATFORM),), pythons=(PythonVersion.parse(PYTHON_VERSION),))
            python = new_venv(tmp_path / "venv")
            code = main(["install", "--python", python, "--cuda", "13", "--installer", installer, "--index-url", server.simple_url])
            return code, python, server.simple_url

        yield compile_and_install


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_verify_names_the_foreign_library_the_metadata_hid(environment, capsys, installer):
    code, python, _ = environment("fastkernels == 1.0\n", installer)
    assert code == 1
    problem = "fastkernels: fastkernels/_C.so needs libcudart.so.12: a CUDA 12 library (and nothing here provides it), in a CUDA 13 environment"
    assert problem in capsys.readouterr().err
    assert installed(python)["fastkernels"] == "1.0"  # the install happened; the verification failed
    assert main(["verify", "--python", python, "--cuda", "13"]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"error: {problem}"]  # exactly that library: libcuda.so.1 is the driver's, the rest is found
    assert out.splitlines() == ["CUDA 13: 1 problem (2 pins, 2 shared objects, 0 canaries checked)"]


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_the_matching_set_verifies(environment, capsys, installer):
    code, python, _ = environment("fastkernels == 2.0\n", installer)
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["verify", "--python", python, "--cuda", "13"]) == 0
    assert capsys.readouterr().out.splitlines() == ["CUDA 13: all verified (2 pins, 2 shared objects, 0 canaries checked)"]


def test_install_warns_of_a_host_library_only_a_plugin_needs_and_fails_on_it_when_strict(environment, capsys):
    code, python, index_url = environment("fastplug\n")
    assert code == 0
    err = capsys.readouterr().err
    assert f"warning: {VERBS} (fastplug): not on this host; needed only by the features that use it" in err
    assert "error:" not in err
    arguments = ["install", "--python", python, "--cuda", "13", "--index-url", index_url]
    assert main([*arguments, "--strict"]) == 1
    assert f"error: {VERBS} (fastplug): not on this host; needed only by the features that use it (strict)" in capsys.readouterr().err


def test_a_library_of_another_major_is_foreign_even_where_it_is_found(environment, capsys):
    code, python, index_url = environment("fastkernels == 1.0\n")
    assert code == 1
    subprocess.run([uv_program(), "pip", "install", "-q", "--python", python, "--no-deps", "--default-index", index_url,
                    "nvidia-cuda-runtime-cu12"], check=True)
    capsys.readouterr()
    assert main(["verify", "--python", python, "--cuda", "13"]) == 1
    err = capsys.readouterr().err
    assert ("fastkernels: fastkernels/_C.so needs libcudart.so.12: a CUDA 12 library, from nvidia-cuda-runtime-cu12, "
            "in a CUDA 13 environment") in err
    assert "members of another CUDA major are installed (nvidia-cuda-runtime-cu12)" in err


def test_a_canary_that_fails_only_for_the_driver_needs_a_gpu_and_fails_where_there_is_one(environment, capsys, monkeypatch, tmp_path):
    code, python, _ = environment("gpukernel\n", canaries='["gpukernel", "nixl_ep?"]')
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["verify", "--python", python, "--cuda", "13", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "import gpukernel" in out and "needs a GPU (no driver on this host: OSError: libcuda.so.1: cannot open shared object file" in out
    assert "nixl_ep" not in out and out.splitlines()[-1].endswith("(1 pin, 1 shared object, 1 canary checked)")
    driver = tmp_path / "nvidia-version"
    driver.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06\n")
    monkeypatch.setattr(detect, "DRIVER_VERSION_FILE", str(driver))
    assert main(["verify", "--python", python, "--cuda", "13"]) == 1
    assert "error: import gpukernel: import failed: OSError: libcuda.so.1" in capsys.readouterr().err


def test_install_records_what_it_installed_for_detect(environment, capsys):
    code, python, _ = environment("fastkernels == 2.0\n")
    assert code == 0
    prefix = Path(subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, check=True).stdout.strip())
    assert json.loads((prefix / "cuda-constraints-install.json").read_text()) == {"cuda_major": 13, "torch": None}


# -- units ------------------------------------------------------------------------------------------------------


def test_torch_that_install_put_there_yields_to_the_machine():
    torch = torch_probe(TorchReport(True, "2.14.0+cu129", "12.9", installed_for=12), "/venv/bin/python")
    machine = cuda_version_probe("13.0.1")
    detection = decide("/venv/bin/python", [Probe("override", "$X", "not set"), torch, machine])
    assert detection.major == 13 and detection.decided_by == machine
    assert any("installed by `cuda-constraints install` for CUDA 12" in w and "the machine decides" in w for w in detection.warnings)
    # torch the image brought (no record of ours) still decides
    theirs = torch_probe(TorchReport(True, "2.14.0+cu129", "12.9"), "/venv/bin/python")
    assert decide("/venv/bin/python", [theirs, machine]).major == 12


def test_the_loader_search_order(objects, tmp_path):
    """RUNPATH with $ORIGIN; LD_LIBRARY_PATH first; a library of another architecture passed over."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "nvidia/cuda_runtime/lib").mkdir(parents=True)
    (tmp_path / "pkg" / "_C.so").write_bytes(objects["_C13.so"])
    (tmp_path / "nvidia/cuda_runtime/lib/libcudart.so.13").write_bytes(objects["libcudart.so.13"])
    extension = read_shared_object(str(tmp_path / "pkg" / "_C.so"))
    assert extension is not None and set(extension.needed) == {"libcudart.so.13", "libcuda.so.1"}
    assert extension.runpath == ("$ORIGIN/../nvidia/cuda_runtime/lib",) and extension.rpath == ()
    assert Loader().find("libcudart.so.13", extension) == str(tmp_path / "nvidia/cuda_runtime/lib/libcudart.so.13")
    (tmp_path / "first").mkdir()
    (tmp_path / "first" / "libcudart.so.13").write_bytes(objects["libcudart.so.13"])
    assert Loader([str(tmp_path / "first")]).find("libcudart.so.13", extension) == str(tmp_path / "first" / "libcudart.so.13")
    (tmp_path / "first" / "libcudart.so.13").write_bytes(b"\x7fELF" + b"\x00" * 60)  # not readable as this architecture
    assert Loader([str(tmp_path / "first")]).find("libcudart.so.13", extension) == str(tmp_path / "nvidia/cuda_runtime/lib/libcudart.so.13")
    assert read_shared_object(str(tmp_path / "pkg" / "nothing.so")) is None


def test_the_loader_cache_listing_is_read():
    listing = "3 libs found in cache `/etc/ld.so.cache'\n\tlibcudart.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.12\n"
    assert parse_ldconfig(listing) == {"libcudart.so.12": ("/usr/local/cuda/lib64/libcudart.so.12",)}


@pytest.mark.parametrize(
    ("soname", "major"),
    [("libcudart.so.12", 12), ("libcublasLt.so.13", 13), ("libcufft.so.11", 12), ("libcusolver.so.12", 13),
     ("libnvrtc-builtins.so.13.0", 13), ("libcurand.so.10", None), ("libc.so.6", None), ("libcuda.so.1", None)],
)
def test_the_major_a_soname_names(soname, major):
    assert library_major(soname) == major
    assert is_driver_library(soname) == (soname == "libcuda.so.1")


@pytest.mark.parametrize(
    ("soname", "toolkit"),
    [("libcudart.so.13", True), ("libcufft.so.12", True), ("libcurand.so.10", True), ("libcufile.so.0", True),
     ("libnvrtc-builtins.so.13.0", True), ("libcutensor.so.2", False), ("libnccl.so.2", False), ("libibverbs.so.1", False),
     ("libcuobjclient.so.1", False), ("libtorch_cuda.so", False), ("libcuda.so.1", False)],
)
def test_which_libraries_are_the_cuda_toolkits(soname, toolkit):
    """The toolkit's libraries are errors when nothing provides them; NCCL, cuTENSOR, RDMA are warnings."""
    assert is_toolkit_library(soname) == toolkit


def test_detect_reads_the_record_of_the_torch_install_put_there(tmp_path, monkeypatch):
    python = new_venv(tmp_path / "venv")
    site = next((tmp_path / "venv").glob("lib/python*/site-packages"))
    (site / "torch").mkdir()
    (site / "torch" / "__init__.py").write_text("")
    (site / "torch" / "version.py").write_text("__version__ = '2.14.0+cu129'\ncuda = '12.9'\nhip = None\n")
    record = tmp_path / "venv" / "cuda-constraints-install.json"
    record.write_text(json.dumps({"cuda_major": 12, "torch": "2.14.0+cu129"}))
    monkeypatch.setenv("CUDA_VERSION", "13.0.1")
    monkeypatch.delenv("CUDA_CONSTRAINTS_CUDA_MAJOR", raising=False)
    detection = detect.probe_machine(detect.system_machine(), python, str(tmp_path / "no-driver"))
    assert detection.major == 13 and detection.decided_by is not None and detection.decided_by.name == "CUDA_VERSION"
    record.write_text(json.dumps({"cuda_major": 12, "torch": "2.13.0+cu129"}))  # another torch since: not ours
    assert detect.probe_machine(detect.system_machine(), python, str(tmp_path / "no-driver")).major == 12
