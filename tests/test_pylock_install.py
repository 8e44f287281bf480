"""The lock files, installed by the real uv and the real pip from a local index (tests/index_server.py): by
`cuda-constraints install`, and by the installers alone as a CI job runs them. Each installs exactly the
pins of its major, asks for no file of the other, and refuses a file whose sha256 is not the lock's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from resolver.cli.main import main
from resolver.commands.install import installer_version
from resolver.commands.install_plan import InstallSources, Prepared, Tool, plan_install
from resolver.files.constraints import PinLine
from resolver.files.pylock import LockDocument, LockedPackage, render_lock
from resolver.files.sets import read_file, read_lock
from resolver.machine.system import CommandResult

from .conftest import INDEX_VARIABLES
from .index_server import PLATFORM, PYTHON_VERSION, IndexServer, installable_kv_index
from .installers import installed, isolate_installers, new_venv, uv_program
from .test_install import FAMILIES, KV, MEMBERS, wheels_of_another_major

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the synthetic wheels are manylinux wheels")


@pytest.fixture(scope="module")
def server():
    with IndexServer(installable_kv_index()) as served:
        yield served


@pytest.fixture(scope="module")
def root(server, tmp_path_factory) -> Path:
    """A project compiled by the tool, as a subprocess, against the local index: cu12/cu13 and their locks."""
    root = tmp_path_factory.mktemp("project")
    (root / "requirements").mkdir()
    (root / "requirements" / "kv.txt").write_text(KV)
    (root / "pyproject.toml").write_text(
        f'[tool.cuda-constraints]\nrequirements = ["requirements/kv.txt"]\ncanaries = ["nixl"]\npylock = true\n'
        f'index-url = "{server.simple_url}"\npython-versions = ["{PYTHON_VERSION}"]\nplatforms = ["{PLATFORM}"]\n'
    )
    environment = {k: v for k, v in os.environ.items() if k not in INDEX_VARIABLES}
    environment |= {"CUDA_CONSTRAINTS_CACHE_DIR": str(root / ".cache"), "NETRC": "/nonexistent"}
    compiled = subprocess.run([sys.executable, "-m", "resolver", "compile", "-q"], cwd=root, env=environment,
                              capture_output=True, text=True, check=False)
    assert compiled.returncode == 0, compiled.stderr
    return root


@pytest.fixture
def isolated(root, tmp_path, monkeypatch):
    isolate_installers(monkeypatch, tmp_path)
    monkeypatch.chdir(root)


def pins(root: Path, major: int) -> dict[str, str]:
    return {pin.name: str(pin.version) for pin in read_file(root / "constraints" / f"cu{major}.txt").document.pins}


def install(capsys, server, python: str, *arguments: str) -> tuple[int, str, str]:
    server.index.requests.clear()
    code = main(["install", "--python", python, "--index-url", server.simple_url, *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def by_installer(installer: str, python: str, lock: Path) -> subprocess.CompletedProcess[str]:
    """The installer alone, as a CI job runs it: uv `pip install -r`, pip ≥ 26.3 `install --no-deps -r`."""
    if installer == "uv":
        command = [uv_program(), "pip", "install", "--python", python, "-r", str(lock)]
    else:
        command = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-r", str(lock)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("installer", ["uv", "pip"])
@pytest.mark.parametrize("major", [12, 13])
def test_the_installers_install_exactly_the_pins_of_the_lock(isolated, root, server, tmp_path, installer, major):
    python = new_venv(tmp_path / "venv")
    server.index.requests.clear()
    done = by_installer(installer, python, root / "constraints" / f"pylock.cu{major}.toml")
    assert done.returncode == 0, done.stderr
    found = installed(python)
    assert found == pins(root, major)
    assert "nixl" in found and MEMBERS[major] <= set(found) and not MEMBERS[25 - major] & set(found)
    assert wheels_of_another_major(server, major) == []
    assert not [path for path in server.index.paths() if path.startswith("/simple")]  # nothing resolved: no page asked


@pytest.mark.parametrize("installer", ["uv", "pip"])
@pytest.mark.parametrize("major", [12, 13])
def test_install_takes_the_lock_and_verifies_the_pins(isolated, root, server, capsys, monkeypatch, tmp_path, installer, major):
    monkeypatch.setenv("CUDA_CONSTRAINTS_CUDA_MAJOR", str(major))
    python = new_venv(tmp_path / "venv")
    code, out, err = install(capsys, server, python, "--installer", installer)
    assert code == 0, err
    assert out.splitlines()[0].endswith(f"; constraints constraints/cu{major}.txt; lock constraints/pylock.cu{major}.toml")
    command = next(line for line in out.splitlines() if line.startswith("$ "))
    assert command.endswith(f"-r {root / 'constraints' / f'pylock.cu{major}.toml'}")
    assert (" --no-deps -r " in command) == (installer == "pip") and " -c " not in command
    assert installed(python) == pins(root, major)
    assert out.splitlines()[-1].startswith(f"CUDA {major}: all verified (")
    assert wheels_of_another_major(server, major) == []
    assert subprocess.run([python, "-c", "import nixl"], check=False).returncode == 0


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_served_file_whose_hash_is_not_the_locks_is_refused(isolated, root, server, capsys, monkeypatch, tmp_path, installer):
    lock = read_lock(root / "constraints" / "pylock.cu13.toml").document
    cupy = next(package for package in lock.packages if package.name == "cupy-cuda13x").wheels[0].name
    genuine = server.index.file_bytes
    monkeypatch.setattr(server.index, "file_bytes", lambda name: genuine(name) + b"tampered" if name == cupy else genuine(name))
    python = new_venv(tmp_path / "venv")
    done = by_installer(installer, python, root / "constraints" / "pylock.cu13.toml")
    assert done.returncode != 0 and "cupy-cuda13x" not in installed(python)
    assert "hash" in done.stderr.lower()
    monkeypatch.setenv("CUDA_CONSTRAINTS_CUDA_MAJOR", "13")
    code, _, err = install(capsys, server, python, "--installer", installer)
    assert code == 1 and "the installer failed" in err
    assert "cupy-cuda13x" not in installed(python)


def test_a_lock_that_disagrees_with_its_constraints_file_is_refused(isolated, root, server, capsys, tmp_path):
    other = tmp_path / "constraints"
    other.mkdir()
    (other / "cu13.txt").write_bytes((root / "constraints" / "cu13.txt").read_bytes())
    lock = read_lock(root / "constraints" / "pylock.cu13.toml").document
    packages = tuple(LockedPackage(p.name, Version("2.3.0"), p.marker, p.index, p.wheels) if p.name == "numpy" else p for p in lock.packages)
    (other / "pylock.cu13.toml").write_text(render_lock(LockDocument(lock.header, lock.environments, lock.requires_python, packages)))
    python = new_venv(tmp_path / "venv")
    code, _, err = install(capsys, server, python, "--cuda", "13", "--constraints-dir", str(other), "--installer", "uv")
    assert code == 1
    assert "pylock.cu13.toml: its pins are not" in err and "numpy 2.3.0 in the lock" in err and "nothing was installed" in err
    assert server.index.requests == [] and installed(python) == {}


# -- planning, without an installer --------------------------------------------------------------------------


def prepared_with_lock(root: Path) -> Prepared:
    path = root / "constraints" / "cu13.txt"
    lock_path = root / "constraints" / "pylock.cu13.toml"
    return Prepared(13, path, read_file(path).document, (), InstallSources(), None, lock_path, read_lock(lock_path).document)


def test_a_pip_that_reads_no_lock_installs_from_the_constraints_file(root):
    prepared = prepared_with_lock(root)
    old_pip = Tool("pip", ("python", "-m", "pip"), "python")
    assert all("-r" not in command or "pylock" not in " ".join(command) for command in plan_install(prepared, old_pip, FAMILIES, Path("/w")).commands)
    new_pip = Tool("pip", ("python", "-m", "pip"), "python", reads_pylock=True)
    (command,) = plan_install(prepared, new_pip, FAMILIES, Path("/w")).commands
    assert command[-3:] == ("--no-deps", "-r", str(root / "constraints" / "pylock.cu13.toml"))


class _Said:
    def __init__(self, answer: str) -> None:
        self.answer = answer

    def run(self, argv, timeout=0):
        return CommandResult(0, self.answer, "")


def test_the_installer_version_is_read_from_what_it_says():
    def version(answer: str, name: str = "pip") -> Version | None:
        return installer_version(_Said(answer), ("python", "-m", "pip"), name)

    assert version("pip 26.3 from /venv/lib/python3.12/site-packages/pip (python 3.12)\n") == Version("26.3")
    assert version("pip 24.0 from /usr/lib/python3/dist-packages/pip (python 3.12)\n") == Version("24.0")
    assert version("uv 0.13.9 (x86_64-unknown-linux-gnu)\n", "uv") == Version("0.13.9")
    assert version("no pip here\n") is None


def test_an_older_pip_is_told_and_the_constraints_file_installs(isolated, root, server, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("resolver.commands.install.PIP_READS_PYLOCK", Version("99"))
    monkeypatch.setenv("CUDA_CONSTRAINTS_CUDA_MAJOR", "13")
    python = new_venv(tmp_path / "venv")
    code, out, err = install(capsys, server, python, "--installer", "pip", "--dry-run")
    assert code == 0 and "pylock.cu13.toml" not in out and " -c " in out
    assert "constraints/pylock.cu13.toml is not used: this pip cannot install a lock file" in err


def test_fix_reinstalls_members_from_the_locks_files(root, tmp_path):
    prepared = prepared_with_lock(root)
    member = next(pin for pin in prepared.document.pins if pin.name == "nixl-cu13")
    pip = Tool("pip", ("python", "-m", "pip"), "python", reads_pylock=True)
    plan = plan_install(prepared, pip, FAMILIES, tmp_path, removals=("nixl-cu12",), reinstall=(member,))
    uninstall, lock_install, again = plan.commands
    assert uninstall[-1] == "nixl-cu12" and lock_install[-1].endswith("pylock.cu13.toml")
    assert again[-5:] == ("--require-hashes", "--no-deps", "--force-reinstall", "-r", str(tmp_path / "reinstall.txt"))
    (reinstall,) = plan.files
    assert reinstall.text.startswith("nixl-cu13==1.5.1 \\\n    --hash=sha256:") and isinstance(member, PinLine)
    uv = Tool("uv", ("uv", "pip"), "python", reads_pylock=True)
    _, command = plan_install(prepared, uv, FAMILIES, tmp_path, removals=("nixl-cu12",), reinstall=(member,)).commands
    assert command[-3:] == ("-r", str(root / "constraints" / "pylock.cu13.toml"), "--reinstall-package=nixl-cu13")
