"""`verify` of an environment that no constraints file describes (an image someone else built): real ELF
shared objects built with gcc, laid out in a venv's site-packages as installed distributions (a
`.dist-info` with its RECORD), checked by the real command. What is an error (a library of another CUDA
major, a CUDA toolkit library nothing provides, a canary that fails), what is one warning line (a library
of a plugin's transport that this host lacks), and how the lines are grouped."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resolver.cli.main import main
from resolver.errors import ConfigError
from resolver.files.config import load_config
from resolver.machine.elf import ldconfig_cache
from resolver.machine.system import SystemMachine

from .installers import new_venv
from .test_runtime import VERBS, gcc

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="ELF shared objects"),
    pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build shared objects"),
]
NOT_HERE = "not on this host; needed only by the features that use it"


@pytest.fixture(scope="module")
def objects(tmp_path_factory) -> dict[str, bytes]:
    """Libraries to link against (a made-up verbs library, libcudart of each major, cuRAND, a library
    every nixl build bundles under one name), and objects that need them."""
    directory = tmp_path_factory.mktemp("elf")
    built = {}
    for soname in (VERBS, "libcudart.so.12", "libcudart.so.13", "libcurand.so.10", "libcommon.so"):
        built[soname] = gcc(directory, soname, f"int {_entry(soname)}(void) {{ return 0; }}\n", f"-Wl,-soname,{soname}")

    def needing(name: str, library: str) -> bytes:
        source = f"extern int {_entry(library)}(void);\nint run(void) {{ return {_entry(library)}(); }}\n"
        return gcc(directory, name, source, f"-L{directory}", f"-l:{library}")

    built["verbs_plugin.so"] = needing("verbs_plugin.so", VERBS)
    built["cuda12.so"] = needing("cuda12.so", "libcudart.so.12")
    built["cuda13.so"] = needing("cuda13.so", "libcudart.so.13")
    built["curand.so"] = needing("curand.so", "libcurand.so.10")
    built["common_plugin.so"] = needing("common_plugin.so", "libcommon.so")
    return built


def _entry(soname: str) -> str:
    """The one function a stub library defines."""
    return "entry_" + soname.replace(".", "_").replace("-", "_")


class Environment:
    """A venv whose site-packages the test fills with distributions, and the project directory `verify`
    runs in (no constraints files unless the test writes some)."""

    def __init__(self, root: Path) -> None:
        self.python = new_venv(root / "venv")
        self.site = next((root / "venv").glob("lib/python*/site-packages"))
        self.project = root / "project"
        self.project.mkdir()

    def add(self, name: str, version: str, files: dict[str, bytes]) -> None:
        """An installed distribution: its files, and a .dist-info whose RECORD lists them."""
        info = f"{name.replace('-', '_')}-{version}.dist-info"
        (self.site / info).mkdir()
        (self.site / info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        for relative, content in files.items():
            (self.site / relative).parent.mkdir(parents=True, exist_ok=True)
            (self.site / relative).write_bytes(content)
        lines = [*files, f"{info}/METADATA", f"{info}/RECORD"]
        (self.site / info / "RECORD").write_text("".join(f"{line},,\n" for line in lines))

    def verify(self, capsys, *flags: str) -> tuple[int, list[str], list[str]]:
        code = main(["verify", "--cuda", "13", "--python", self.python, *flags])
        out, err = capsys.readouterr()
        return code, out.splitlines(), err.splitlines()


@pytest.fixture
def environment(tmp_path, monkeypatch) -> Environment:
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    monkeypatch.delenv("CUDA_CONSTRAINTS_CUDA_MAJOR", raising=False)
    made = Environment(tmp_path)
    monkeypatch.chdir(made.project)
    (made.project / "pyproject.toml").write_text("[tool.cuda-constraints]\n")
    return made


def errors(err: list[str]) -> list[str]:
    return [line for line in err if line.startswith("error:")]


def warnings_about_libraries(err: list[str]) -> list[str]:
    return [line for line in err if line.startswith("warning: lib")]


def host_provides(library: str) -> bool:
    return library in ldconfig_cache(SystemMachine({}))


def test_a_plugin_needing_a_library_this_host_lacks_is_one_warning_line(environment, objects, capsys):
    """Two distributions, three plugins: one warning line naming both; exit 0; -v lists the files."""
    environment.add("fastplug", "1.0", {f"fastplug/plugins/libplugin_{n}.so": objects["verbs_plugin.so"] for n in ("A", "B")})
    environment.add("storage-kit", "2.0", {"storage_kit/rdma.so": objects["verbs_plugin.so"]})
    code, out, err = environment.verify(capsys)
    assert code == 0, err
    assert errors(err) == []
    assert warnings_about_libraries(err) == [f"warning: {VERBS} (fastplug, storage-kit): {NOT_HERE}"]
    assert out == ["CUDA 13: all verified (3 shared objects, 0 canaries checked; 1 library not on this host, see the warnings)"]
    code, _, err = environment.verify(capsys, "-v")
    assert code == 0
    at = err.index(f"warning: {VERBS} (fastplug, storage-kit): {NOT_HERE}")
    assert err[at + 1:at + 4] == [
        "    fastplug: fastplug/plugins/libplugin_A.so", "    fastplug: fastplug/plugins/libplugin_B.so", "    storage-kit: storage_kit/rdma.so",
    ]


def test_strict_makes_a_library_this_host_lacks_an_error(environment, objects, capsys):
    environment.add("fastplug", "1.0", {"fastplug/plugins/libplugin_VERBS.so": objects["verbs_plugin.so"]})
    code, out, err = environment.verify(capsys, "--strict")
    assert code == 1
    assert errors(err) == [f"error: {VERBS} (fastplug): {NOT_HERE} (strict)"] and warnings_about_libraries(err) == []
    assert out == ["CUDA 13: 1 problem (1 shared object, 0 canaries checked)"]
    (environment.project / "pyproject.toml").write_text("[tool.cuda-constraints.verify]\nstrict = true\n")
    assert environment.verify(capsys)[0] == 1


def test_ignored_libraries_are_not_reported(environment, objects, capsys):
    """Globs from the flag and from [tool.cuda-constraints.verify] silence a library nothing provides,
    even under strict; never a library of another CUDA major."""
    environment.add("fastplug", "1.0", {"fastplug/plugins/libplugin_VERBS.so": objects["verbs_plugin.so"]})
    code, out, err = environment.verify(capsys, "--strict", "--ignore-library", "libcctest_*")
    assert (code, errors(err), warnings_about_libraries(err)) == (0, [], [])
    assert out == ["CUDA 13: all verified (1 shared object, 0 canaries checked)"]
    (environment.project / "pyproject.toml").write_text('[tool.cuda-constraints.verify]\nignore-libraries = ["libcctest_verbs.so.*"]\n')
    code, _, err = environment.verify(capsys, "--strict")
    assert (code, errors(err), warnings_about_libraries(err)) == (0, [], [])
    environment.add("fastkernels", "1.0", {"fastkernels/_C.so": objects["cuda12.so"]})
    code, _, err = environment.verify(capsys, "--ignore-library", "libcudart*")
    assert code == 1 and len(errors(err)) == 1 and "libcudart.so.12: a CUDA 12 library" in errors(err)[0]


def test_a_library_of_another_major_is_one_line_per_distribution_library_and_problem(environment, objects, capsys):
    environment.add("fastkernels", "1.0", {f"fastkernels/_C{n}.so": objects["cuda12.so"] for n in range(5)})
    code, out, err = environment.verify(capsys)
    assert code == 1
    assert errors(err) == [
        "error: fastkernels: fastkernels/_C0.so and 4 other files need libcudart.so.12: a CUDA 12 library (and nothing here "
        "provides it), in a CUDA 13 environment"
    ]
    assert out == ["CUDA 13: 1 problem (5 shared objects, 0 canaries checked)"]
    code, _, err = environment.verify(capsys, "-v")
    at = err.index(errors(err)[0])
    assert err[at + 1:] == [f"    fastkernels/_C{n}.so" for n in range(5)]


def test_a_cuda_library_nothing_provides_is_an_error(environment, objects, capsys):
    if host_provides("libcurand.so.10"):
        pytest.skip("this host's loader cache has cuRAND")
    environment.add("randkit", "1.0", {"randkit/_rand.so": objects["curand.so"]})
    code, _, err = environment.verify(capsys)
    assert code == 1
    assert errors(err) == [
        "error: randkit: randkit/_rand.so needs libcurand.so.10: a CUDA library that nothing here provides (no installed "
        "wheel, LD_LIBRARY_PATH, RUNPATH or the loader's cache)"
    ]
    environment.add("nvidia-curand", "10.4.0.35", {"nvidia/cu13/lib/libcurand.so.10": objects["curand.so"]})
    assert environment.verify(capsys)[0] == 0  # a wheel provides it now


def test_a_build_of_another_major_costs_one_line(environment, objects, capsys):
    """nixl-cu12 next to nixl-cu13: forty files needing CUDA 12 libraries are the one leftover line; and
    nixl-cu13's plugins take their own build's libcommon.so, not nixl-cu12's of the same name."""
    for major in (12, 13):
        files = {f".nixl_cu{major}.libs/libcommon.so": objects["libcommon.so"],
                 f"nixl_cu{major}.libs/nixl/libplugin_UCX.so": objects["common_plugin.so"]}
        files |= {f"nixl_cu{major}/_ext{n}.so": objects[f"cuda{major}.so"] for n in range(40)}
        environment.add(f"nixl-cu{major}", "1.5.1", files)
    environment.add("nvidia-cuda-runtime", "13.0.96", {"nvidia/cu13/lib/libcudart.so.13": objects["libcudart.so.13"]})
    code, out, err = environment.verify(capsys)
    assert code == 1
    assert errors(err) == ["error: members of another CUDA major are installed (nixl-cu12); `cuda-constraints install --fix` removes them"]
    assert out == ["CUDA 13: 1 problem (43 shared objects, 0 canaries checked)"]


def test_without_constraints_files_the_pins_are_skipped_and_canaries_still_count(environment, objects, capsys):
    environment.add("gpukit", "1.0", {"gpukit/__init__.py": b"raise ImportError('libcudart.so.12: cannot open shared object file')\n"})
    code, out, err = environment.verify(capsys)  # the default canaries (nixl) are not installed: not a problem here
    assert code == 0, err
    assert "warning: constraints/ holds no constraints files: the pins are not checked, the shared libraries and the canaries " \
           "are (each canary where it is installed)" in err
    assert out == ["CUDA 13: all verified (0 shared objects, 0 canaries checked)"]
    code, out, err = environment.verify(capsys, "--canary", "gpukit")
    assert code == 1
    assert errors(err) == ["error: import gpukit: import failed: ImportError: libcudart.so.12: cannot open shared object file"]
    assert out == ["CUDA 13: 1 problem (0 shared objects, 1 canary checked)"]


def test_the_verify_table_of_the_configuration_is_checked(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.cuda-constraints.verify]\nstrict = true\nignore-libraries = ['libibverbs.so.*']\n")
    config = load_config(tmp_path)
    assert config.verify_strict and config.ignore_libraries == ("libibverbs.so.*",)
    (tmp_path / "pyproject.toml").write_text("[tool.cuda-constraints.verify]\nignore = ['libibverbs.so.*']\n")
    with pytest.raises(ConfigError, match=r"verify.ignore: unknown key \(known: ignore-libraries, strict\)"):
        load_config(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.cuda-constraints.verify]\nstrict = 'yes'\n")
    with pytest.raises(ConfigError, match=r"verify\.strict: must be true or false"):
        load_config(tmp_path)


@pytest.mark.live
def test_real_nixl_cu13_verifies_and_a_real_nixl_cu12_beside_it_is_one_short_error(tmp_path, monkeypatch, capsys):
    """The wheels of the committed cu13.txt (downloaded from PyPI, installed with --no-deps): their RDMA,
    DOCA and torch-build plugins need libraries no host here has, and that is no error; nixl-cu12 is."""
    made = Environment(tmp_path)
    monkeypatch.chdir(made.project)
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)

    def pip_install(*wheels: str) -> None:
        subprocess.run([sys.executable, "-m", "pip", "--python", made.python, "install", "--isolated", "--no-deps", "-q",
                        "--index-url", "https://pypi.org/simple", *wheels], check=True)

    pip_install("nixl-cu13==1.5.1", "nvidia-cufile==1.15.1.6", "nvidia-cuda-runtime==13.0.96")
    code, out, err = made.verify(capsys)
    assert code == 0, "\n".join(errors(err))
    assert errors(err) == [] and any("(nixl-cu13)" in line for line in warnings_about_libraries(err))  # libdoca_*, libred_*
    assert out[-1].startswith("CUDA 13: all verified (")
    pip_install("nixl-cu12==1.5.1")
    code, out, err = made.verify(capsys)
    assert code == 1
    assert errors(err) == ["error: members of another CUDA major are installed (nixl-cu12); `cuda-constraints install --fix` removes them"]
    assert out[-1].startswith("CUDA 13: 1 problem (")
