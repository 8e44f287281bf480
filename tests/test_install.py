"""`install` with the real uv and the real pip, into fresh virtual environments, from a synthetic index served
on 127.0.0.1 (tests/index_server.py) whose log shows every request. The constraints files are compiled from
the same index in the test. Planning is also tested without an installer.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name, parse_wheel_filename

from resolver.cli.main import main
from resolver.commands.install import InstallRequest, read_constraints
from resolver.commands.install_plan import InstallSources, Prepared, Tool, no_deps_names, plan_install, swapped_requirements
from resolver.errors import ConstraintsFileError
from resolver.files.constraints import parse
from resolver.files.requirements import load_requirements
from resolver.index.auth import IndexUrl
from resolver.model.families import FamilyTable
from resolver.model.targets import Platform, PythonVersion

from .conftest import Project
from .index_server import PLATFORM, PYTHON_VERSION, IndexServer, installable_kv_index
from .installers import installed, isolate_installers, new_venv, uv_program

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the synthetic wheels are manylinux wheels")

KV = "lmcache >= 0.3.9\ncupy-cuda13x != 14.1.0\nnixl >= 1.1.0\nmooncake-transfer-engine >= 0.3.12\n"
PYPROJECT = '[tool.cuda-constraints]\nrequirements = ["requirements/kv.txt"]\ncanaries = ["nixl"]\n'
FAMILIES = FamilyTable()
MEMBERS = {
    12: {"nixl-cu12", "cupy-cuda12x", "mooncake-transfer-engine"},
    13: {"nixl-cu13", "cupy-cuda13x", "mooncake-transfer-engine-cuda13"},
}


@pytest.fixture(scope="module")
def server():
    with IndexServer(installable_kv_index()) as served:
        yield served


@pytest.fixture(scope="module")
def project(server, tmp_path_factory) -> Project:
    """The project, compiled for this interpreter's Python and platform: `constraints/` plain, `hashed/` with hashes."""
    root = tmp_path_factory.mktemp("project")
    (root / "pyproject.toml").write_text(PYPROJECT)
    compiled = Project(root, server.index)
    compiled.write(KV)
    targets = {"platforms": (Platform(PLATFORM),), "pythons": (PythonVersion.parse(PYTHON_VERSION),)}
    compiled.compile(**targets)
    compiled.output = root / "hashed"
    compiled.compile(generate_hashes=True, **targets)
    compiled.output = root / "constraints"
    return compiled


@pytest.fixture
def isolated(project, tmp_path, monkeypatch):
    isolate_installers(monkeypatch, tmp_path)
    monkeypatch.chdir(project.root)


def install(capsys, server, python: str, *arguments: str) -> tuple[int, str, str]:
    server.index.requests.clear()
    code = main(["install", "--python", python, "--index-url", server.simple_url, *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def wheels_of_another_major(server, major: int) -> list[str]:
    wrong = []
    for filename in server.wheel_requests():
        name, version, _, _ = parse_wheel_filename(filename)
        if not FAMILIES.fits(canonicalize_name(name), version, major):
            wrong.append(filename)
    return wrong


# -- real installs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("installer", ["uv", "pip"])
@pytest.mark.parametrize("major", [12, 13])
def test_installs_exactly_the_pins_of_the_detected_major(isolated, project, server, capsys, monkeypatch, tmp_path, installer, major):
    monkeypatch.setenv("CUDA_CONSTRAINTS_CUDA_MAJOR", str(major))
    python = new_venv(tmp_path / "venv")
    code, out, err = install(capsys, server, python, "--installer", installer)
    assert code == 0, err
    found = installed(python)
    pins = parse(project.text(major), "cu.txt").pins
    assert found == {pin.name: str(pin.version) for pin in pins}
    assert "nixl" in found and MEMBERS[major] <= set(found) and not MEMBERS[25 - major] & set(found)
    headline = f"CUDA {major} (detected by override: CUDA_CONSTRAINTS_CUDA_MAJOR={major}); constraints constraints/cu{major}.txt"
    assert out.splitlines()[0] == headline
    assert out.splitlines()[-1] == f"CUDA {major}: all verified ({len(pins)} pins, 0 shared objects, 1 canary checked)"
    assert "import nixl" not in out  # the table of every row only with --verbose
    assert wheels_of_another_major(server, major) == []
    other_nixl = f"nixl-cu{25 - major}"
    assert not [path for path in server.index.paths() if other_nixl in path or other_nixl.replace("-", "_") in path]
    assert subprocess.run([python, "-c", "import nixl"], check=False).returncode == 0


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_hash_checking_mode_verifies_every_download(isolated, project, server, capsys, monkeypatch, tmp_path, installer):
    python = new_venv(tmp_path / "venv")
    code, out, err = install(capsys, server, python, "--cuda", "13", "--installer", installer, "--constraints-dir", "hashed")
    assert code == 0, err
    assert "--require-hashes" in out and "all verified" in out
    assert wheels_of_another_major(server, 13) == []

    tampered = tmp_path / "tampered"
    tampered.mkdir()
    text = (project.root / "hashed" / "cu13.txt").read_text()
    cupy = next(pin for pin in parse(text, "cu13.txt").pins if pin.name == "cupy-cuda13x")
    (tampered / "cu13.txt").write_text(text.replace(cupy.hashes[0], "0" * 64))
    python = new_venv(tmp_path / "venv2")
    code, out, err = install(capsys, server, python, "--cuda", "13", "--installer", installer, "--constraints-dir", str(tampered))
    assert code == 1 and "the installer failed" in err
    assert "cupy-cuda13x" not in installed(python)


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_leftover_member_is_reported_and_removed_with_fix(isolated, project, server, capsys, monkeypatch, tmp_path, installer):
    monkeypatch.setenv("CUDA_CONSTRAINTS_CUDA_MAJOR", "13")
    python = new_venv(tmp_path / "venv")
    subprocess.run(
        [uv_program(), "pip", "install", "--python", python, "--default-index", server.simple_url, "--no-deps", "nixl-cu12==1.4.0"],
        check=True, capture_output=True,
    )
    code, out, err = install(capsys, server, python, "--installer", installer, "--verbose")
    assert code == 1
    assert any(line.split()[:3] == ["nixl-cu12", "-", "1.4.0"] and "CUDA 12 build" in line for line in out.splitlines())
    assert "error: members of another CUDA major are installed (nixl-cu12)" in err and "--fix" in err
    assert out.splitlines()[-1].startswith("CUDA 13: 1 problem (") and "nixl-cu12" in installed(python)

    code, out, err = install(capsys, server, python, "--installer", installer, "--fix")
    assert code == 0, err
    assert "uninstall" in out and "all verified" in out
    found = installed(python)
    assert "nixl-cu12" not in found and found["nixl-cu13"] == "1.5.1"


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_dry_run_prints_the_commands_and_installs_nothing(isolated, project, server, capsys, tmp_path, installer):
    python = new_venv(tmp_path / "venv")
    code, out, _ = install(capsys, server, python, "--cuda", "13", "--installer", installer, "--dry-run")
    assert code == 0
    assert server.index.requests == [] and installed(python) == {}
    if installer == "uv":
        assert "cat > " in out and "\nnixl-cu12\nEOF\n" in out
        assert "--excludes" in out and "mooncake-transfer-engine-cuda13>=0.3.12" in out
    else:
        assert "-m pip --python" in out and " nixl-cu13==1.5.1\n" in out and "--no-deps nixl==1.5.1" in out
    assert "package" not in out


def test_auto_uses_uv_and_print_excludes_lists_the_dropped_edges(isolated, project, server, capsys, tmp_path):
    python = new_venv(tmp_path / "venv")
    code, out, _ = install(capsys, server, python, "--cuda", "13", "--dry-run")
    assert code == 0 and " pip install --python " in out and "--excludes" in out
    code, out, _ = install(capsys, server, python, "--cuda", "12", "--print-excludes")
    assert (code, out) == (0, "nixl-cu13\n")


def test_the_readme_uv_recipe_installs_the_same_set(isolated, project, server, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_CONSTRAINTS_CUDA_MAJOR", "13")
    assert main(["detect"]) == 0
    major = capsys.readouterr().out.splitlines()[-1]
    code, excludes, _ = install(capsys, server, sys.executable, "--cuda", major, "--print-excludes")
    assert (code, excludes) == (0, "nixl-cu12\n")
    (tmp_path / "excludes.txt").write_text(excludes)
    python = new_venv(tmp_path / "venv")
    server.index.requests.clear()
    recipe = [uv_program(), "pip", "install", "--python", python, "--default-index", server.simple_url]
    recipe += ["-r", f"constraints/cu{major}.txt", "--excludes", str(tmp_path / "excludes.txt")]
    subprocess.run(recipe, check=True, capture_output=True)
    assert installed(python) == {pin.name: str(pin.version) for pin in parse(project.text(13), "cu13.txt").pins}
    assert wheels_of_another_major(server, 13) == []


# -- refusals ------------------------------------------------------------------------------------------------


def test_a_stale_file_is_refused(isolated, project, server, capsys, tmp_path):
    changed = tmp_path / "kv.txt"
    changed.write_text(KV + "numpy\n")
    python = new_venv(tmp_path / "venv")
    code, _, err = install(capsys, server, python, "--cuda", "13", "-r", str(changed))
    assert code == 1
    assert "constraints/cu13.txt is stale" in err and "cuda-constraints compile" in err
    assert server.index.requests == [] and installed(python) == {}
    assert install(capsys, server, python, "--cuda", "13", "-r", str(changed), "--print-excludes")[:2] == (1, "")


def test_a_missing_file_names_the_compile_command(isolated, project, server, capsys, tmp_path):
    code, _, err = install(capsys, server, sys.executable, "--cuda", "14")
    assert code == 2 and "constraints/cu14.txt does not exist" in err and "compile --cuda 14" in err


def test_a_cpu_machine_is_refused_with_exit_3(isolated, project, server, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_CONSTRAINTS_CUDA_MAJOR", "cpu")
    code, _, err = install(capsys, server, sys.executable)
    assert code == 3 and "--cuda N" in err and server.index.requests == []


@pytest.fixture(scope="module")
def corrupt_venv(tmp_path_factory) -> str:
    return new_venv(tmp_path_factory.mktemp("corrupt") / "venv")


LINE_EDITS = st.sampled_from(["replace", "insert", "delete", "truncate", "bytes"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edit=LINE_EDITS,
    position=st.integers(min_value=0, max_value=10_000),
    text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60),
    raw=st.binary(min_size=1, max_size=20),
)
def test_a_corrupt_file_is_a_clear_error_and_installs_nothing(isolated, project, server, capsys, corrupt_venv, edit, position, text, raw):
    content = _corrupt((project.output / "cu13.txt").read_bytes(), edit, position, text, raw)
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "cu13.txt").write_bytes(content)
        try:
            read_constraints(Path(directory) / "cu13.txt", 13)
        except ConstraintsFileError:
            pass
        else:
            return  # still a valid file (a deleted pin, a comment): not what this property is about
        code, out, err = install(capsys, server, corrupt_venv, "--cuda", "13", "--installer", "uv", "--constraints-dir", directory)
    assert code == 2, err
    assert err.startswith(f"error: {Path(directory).resolve()}/cu13.txt") and "Traceback" not in out + err and "\n" not in err.strip()
    assert server.index.requests == []
    assert not [p for p in Path(corrupt_venv).parent.parent.glob("lib/python*/site-packages/*") if p.name != "__pycache__"]


def _corrupt(content: bytes, edit: str, position: int, text: str, raw: bytes) -> bytes:
    lines = content.split(b"\n")
    where = position % len(lines)
    if edit == "replace":
        lines[where] = text.encode()
    elif edit == "insert":
        lines.insert(where, text.encode())
    elif edit == "delete":
        del lines[where]
    elif edit == "truncate":
        return content[: position % len(content)]
    else:
        offset = position % len(content)
        return content[:offset] + raw + content[offset:]
    return b"\n".join(lines)


# -- planning, without an installer --------------------------------------------------------------------------


def prepared(project: Project, major: int, directory: str = "constraints") -> Prepared:
    path = project.root / directory / f"cu{major}.txt"
    document = read_constraints(path, major)
    requirements_input = load_requirements([project.requirements], root=project.root)
    return Prepared(major, path, document, swapped_requirements(requirements_input, document), InstallSources())


def test_swaps_keep_specifier_and_the_meta_package_goes_without_dependencies(project):
    plan12 = prepared(project, 12)
    swapped = ["lmcache>=0.3.9", "cupy-cuda12x!=14.1.0", "nixl>=1.1.0", "mooncake-transfer-engine>=0.3.12"]
    assert [str(r) for r in plan12.requirements] == swapped
    assert no_deps_names(plan12.document, FAMILIES) == {"nixl"}
    pip = Tool("pip", ("python", "-m", "pip"), "python")
    plan = plan_install(plan12, pip, FAMILIES, Path("/work"))
    first, second = plan.commands
    assert first[-4:] == ("lmcache>=0.3.9", "cupy-cuda12x!=14.1.0", "mooncake-transfer-engine>=0.3.12", "nixl-cu12==1.5.1")
    assert "-c" in first and "nixl>=1.1.0" not in first
    assert second[-2:] == ("--no-deps", "nixl==1.5.1")


def test_a_package_that_needs_a_meta_package_is_installed_without_dependencies_too(project, tmp_path):
    text = (project.output / "cu13.txt").read_text()
    needed_by_lmcache = "nixl==1.5.1\n    # via\n    #   -r requirements/kv.txt\n    #   lmcache"
    text = text.replace("nixl==1.5.1\n    # via -r requirements/kv.txt", needed_by_lmcache)
    document = parse(text, "cu13.txt")
    assert no_deps_names(document, FAMILIES) == {"nixl", "lmcache"}


def test_uv_gets_the_file_itself_in_hash_checking_mode(project):
    uv = Tool("uv", ("uv", "pip"), "/venv/bin/python", system=True, sources=InstallSources(IndexUrl("http://index/simple")))
    plan = plan_install(prepared(project, 13, "hashed"), uv, FAMILIES, Path("/work"))
    (command,) = plan.commands
    assert command[:8] == ("uv", "pip", "install", "--python", "/venv/bin/python", "--system", "--default-index", "http://index/simple")
    assert command[8:] == ("--require-hashes", "-r", str(project.root / "hashed" / "cu13.txt"), "--excludes", "/work/excludes.txt")
    assert plan.files[0].text == "nixl-cu12\n"


def test_request_defaults_are_frozen():
    request = InstallRequest((), Path("."), FAMILIES, lambda major: "", Path("constraints"), sys.executable)
    with pytest.raises(AttributeError):
        request.fix = True  # type: ignore[misc]


def test_rocm_installs_the_configured_requirements_without_constraints(isolated, server, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_CONSTRAINTS_CUDA_MAJOR", "rocm")
    monkeypatch.chdir(tmp_path)
    code, _, err = install(capsys, server, sys.executable, "--installer", "uv", "--dry-run")
    assert code == 3 and "rocm-requirements" in err
    (tmp_path / "pyproject.toml").write_text('[tool.cuda-constraints]\nrocm-requirements = "requirements/rocm.txt"\n')
    code, out, _ = install(capsys, server, sys.executable, "--installer", "uv", "--dry-run")
    assert code == 0 and out.startswith("# ROCm (detected by override: CUDA_CONSTRAINTS_CUDA_MAJOR=rocm)")
    assert out.rstrip().endswith(f"-r {tmp_path / 'requirements' / 'rocm.txt'}")
