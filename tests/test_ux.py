"""As CI maintainers meet the tool: each rough edge a new user reported, and what they see now."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from resolver.cli.main import main
from resolver.files.constraints import parse

from .synthetic import (
    BOTH_ARCHES,
    KV_REQUIREMENTS,
    PYPROJECT,
    THIS_PYTHON,
    for_this_python,
    kv_connectors_index,
    served,
    write_project,
)

FAST = ["--no-cache", "--retries", "0"]


@pytest.fixture
def index():
    with served(kv_connectors_index()) as index:
        yield index


@pytest.fixture
def repo(tmp_path, inside, index) -> Path:
    inside(write_project(tmp_path))
    assert main(["compile", "-q", *FAST]) == 0
    return tmp_path


# -- install on any Python ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", [["--dry-run"], ["--print-excludes"], []])
def test_install_refuses_an_interpreter_the_files_were_not_compiled_for(tmp_path, inside, capsys, how):
    other = "3.12" if THIS_PYTHON != "3.12" else "3.11"
    with served(for_this_python(kv_connectors_index(), other)):
        inside(write_project(tmp_path))
        config = tmp_path / "pyproject.toml"
        config.write_text(config.read_text() + f'python-versions = ["{other}"]\n')
        assert main(["compile", "-q", *FAST]) == 0
        capsys.readouterr()
        assert main(["install", "--cuda", "13", *how]) == 2
    err = capsys.readouterr().err
    assert f"is Python {THIS_PYTHON}, but constraints/cu13.txt was compiled for cp{other.replace('.', '')} " in err
    assert f'Add "{THIS_PYTHON}" to python-versions in [tool.cuda-constraints]' in err


# -- an honest check ----------------------------------------------------------------------------------------


def test_a_hand_edit_of_a_pin_is_stale(repo, capsys):
    path = repo / "constraints" / "cu13.txt"
    path.write_text(path.read_text().replace("numpy==2.2.6", "numpy==2.2.5"))
    assert main(["check"]) == 1
    err = capsys.readouterr().err
    assert "constraints/cu13.txt is out of date:\n  - was edited by hand" in err and "fix: cuda-constraints compile" in err


def test_a_comment_or_spacing_in_the_requirements_is_not_a_change(repo, capsys):
    requirements = repo / "requirements" / "kv.txt"
    requirements.write_text("# KV connectors, reviewed 2026-11\n\n" + KV_REQUIREMENTS.replace(">=", " >= ") + "   # end\n")
    assert main(["check"]) == 0
    requirements.write_text(KV_REQUIREMENTS + "numpy\n")
    assert main(["check"]) == 1


# -- the command line -----------------------------------------------------------------------------------------


def test_requirement_files_may_be_given_positionally(tmp_path, inside, index):
    inside(write_project(tmp_path))
    assert main(["compile", "-q", *FAST, "requirements/kv.txt"]) == 0
    assert parse((tmp_path / "constraints" / "cu12.txt").read_text(), "cu12.txt").command == "cuda-constraints compile -r requirements/kv.txt"


@pytest.mark.parametrize("output", ["constraints.txt", "pyproject.toml"])
def test_output_must_be_a_directory(repo, capsys, output):
    assert main(["compile", *FAST, "-o", output]) == 2
    assert f"-o {output}: give a directory; the files are written as cuNN.txt inside it" in capsys.readouterr().err
    assert not (repo / "constraints.txt").exists()


def test_an_unknown_argument_shows_the_usage_of_its_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--bogus"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: cuda-constraints check") and "error: unrecognized arguments: --bogus" in err


# -- progress ---------------------------------------------------------------------------------------------------


def test_targets_are_reported_in_a_fixed_order_and_the_network_line_on_stderr(tmp_path, inside, index, capsys):
    inside(write_project(tmp_path))
    assert main(["compile", *FAST]) == 0
    out, err = capsys.readouterr()
    targets = [line.split(":")[0] for line in err.splitlines() if re.match(r"^CUDA 1[23] cp312", line)]
    assert targets == [f"CUDA {major} cp312 manylinux_2_28_{arch}" for major in (12, 13) for arch in ("x86_64", "aarch64")]
    assert re.search(r"^\d+ requests, [\d.]+ MB, \d+ metadata reads in [\d.]+s$", err, re.M) and "requests" not in out
    assert main(["compile", "-q", *FAST, "-U"]) == 0
    out, err = capsys.readouterr()
    assert "requests" not in err and "CUDA 12 cp312" not in err


# -- errors ------------------------------------------------------------------------------------------------------


def test_a_misspelt_project_is_one_error_naming_its_line(repo, capsys):
    (repo / "requirements" / "kv.txt").write_text(KV_REQUIREMENTS + "numpyy\n")
    assert main(["compile", *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("no project named 'numpyy'") == 1 and "requirements/kv.txt:5: numpyy: no project named 'numpyy'" in err


def test_detect_on_something_that_is_not_python(capsys):
    assert main(["detect", "--python", "/bin/ls"]) == 2
    err = capsys.readouterr().err
    assert "--python /bin/ls: /bin/ls is not a Python 3 interpreter" in err and "import" not in err


@pytest.mark.parametrize("value", ["99", "10", "abc"])
def test_an_override_outside_the_majors_is_a_usage_error(monkeypatch, capsys, value):
    monkeypatch.setenv("CUDA_CONSTRAINTS_CUDA_MAJOR", value)
    assert main(["detect"]) == 2
    assert "give a CUDA major such as 13 (11 to 19" in capsys.readouterr().err


def test_upgrade_package_must_name_a_pinned_project(repo, capsys):
    assert main(["compile", *FAST, "-P", "notapkg"]) == 2
    assert "--upgrade-package notapkg: no constraints file pins notapkg" in capsys.readouterr().err


def test_duplicate_majors_collapse(tmp_path, inside, index):
    inside(write_project(tmp_path))
    assert main(["compile", "-q", *FAST, "--cuda", "13,13"]) == 0
    assert parse((tmp_path / "constraints" / "cu13.txt").read_text(), "cu13.txt").command == "cuda-constraints compile --cuda 13"


def test_outside_a_project_the_defaults_are_named(tmp_path, inside, capsys):
    inside(tmp_path)
    assert main(["check"]) == 2  # a usage error: nothing here is stale
    err = capsys.readouterr().err
    assert err == (f"error: no project here to check: no pyproject.toml in {tmp_path} or above, and constraints/ holds no "
                   "cuNN.txt file. check looked for the defaults (requirements requirements/kv_connectors.txt; CUDA 12, 13; "
                   "Python 3.12; manylinux_2_28_x86_64, manylinux_2_28_aarch64; output constraints/); run it in the "
                   "project's directory, or give -o DIR\n")
    (tmp_path / "constraints").mkdir()
    (tmp_path / "constraints" / "cu13.txt").write_text("# not ours\n")
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert f"warning: no pyproject.toml in {tmp_path} or above: the defaults apply (requirements requirements/kv_connectors.txt;" in err
    assert "constraints/cu13.txt:1: '# not ours': not a cuda-constraints file" in err


def test_a_failure_names_the_releases_passed_over_and_the_flag_that_admits_them(tmp_path, inside, capsys):
    index = kv_connectors_index()
    index.add("kvlib", "2.0", ["cupy-cuda13x"], tags=BOTH_ARCHES)
    index.add("kvlib", "1.0", ["cupy-cuda12x"], tags=("cp312-cp312-manylinux_2_28_x86_64",), sdist=True)  # no aarch64 wheel
    with served(index):
        inside(write_project(tmp_path, requirements={"kv.txt": "kvlib\n"}))
        assert main(["compile", *FAST, "--cuda", "12"]) == 4
        err = capsys.readouterr().err
        assert ("kvlib: passed over 1 (1.0): unusable here: no wheel for cp312 manylinux_2_28_aarch64 "
                "(only an sdist: --allow-sdist-package kvlib would admit it)") in err
        assert main(["compile", "-q", *FAST, "--cuda", "12", "--allow-sdist-package", "kvlib"]) == 0


# -- configuration errors say the key, the file, the line and the fix ------------------------------------------


def test_majors_as_a_list_and_as_tables_is_one_clear_error(tmp_path, inside, capsys):
    """Both forms appear in the README; together they are a TOML error the parser words for itself."""
    inside(write_project(tmp_path, PYPROJECT + "cuda = [12, 13]\n\n[tool.cuda-constraints.cuda.12]\ntorch-backend = \"cu129\"\n"))
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'pyproject.toml'}:6: [tool.cuda-constraints] cuda: "
                          "[tool.cuda-constraints.cuda.12] cannot be declared here, because `cuda` is already a list of majors (line 4). ")
    assert "either `cuda = [12, 13]`, or one [tool.cuda-constraints.cuda.N] table per major" in err
    assert "Cannot declare" not in err and "Traceback" not in err


@pytest.mark.parametrize(("text", "said"), [
    ('pre = true\npre = false\n', ":5: a key set twice in one table (TOML allows each once) (column 12): 'pre = false' "
                                  "(the TOML parser says: Cannot overwrite a value)"),
    ('platforms = ["manylinux_2_28_x86_64"\n', ": not valid TOML at the end of the file (the TOML parser says: Unclosed array)"),
    ('pre = yes\n', ":4: not valid TOML (column 7): 'pre = yes' (the TOML parser says: Invalid value)"),
    ("[tool.cuda-constraints.verify]\n[tool.cuda-constraints.verify]\n",
     ":5: [tool.cuda-constraints] verify: [tool.cuda-constraints.verify] is declared twice, or set above as a value"),
])
def test_any_toml_error_names_the_file_line_and_key(tmp_path, inside, capsys, text, said):
    inside(write_project(tmp_path, PYPROJECT + text))
    assert main(["compile", *FAST]) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'pyproject.toml'}{said}" in err, err


# -- guidance instead of raw errors ------------------------------------------------------------------------------


def test_a_misspelt_project_gets_the_close_names_the_inputs_and_families_know(tmp_path, inside, index, capsys):
    inside(write_project(tmp_path, requirements={"kv.txt": KV_REQUIREMENTS.replace("nixl >=", "nixll >=")}))
    assert main(["compile", *FAST]) == 2
    err = capsys.readouterr().err
    assert "requirements/kv.txt:3: nixll>=1.1.0: no project named 'nixll' on https://index.test/simple. Did you mean nixl? " in err


def test_a_misspelt_dependency_of_nothing_is_suggested_from_the_cache(tmp_path, inside, index, capsys):
    """aiohttp is in no input, no family and (written elsewhere) no existing file: only the cache knows it."""
    inside(write_project(tmp_path))
    assert main(["compile", "-q", "-o", "elsewhere"]) == 0
    (tmp_path / "requirements" / "kv.txt").write_text(KV_REQUIREMENTS + "aiohtp\n")
    assert main(["compile", "-q"]) == 2
    assert "no project named 'aiohtp' on https://index.test/simple. Did you mean aiohttp? " in capsys.readouterr().err


@pytest.mark.parametrize(("wanted", "said"), [
    ("nixl==9.9.9", "nixl: no release matches ==9.9.9 (releases, newest first: 1.5.1, 1.4.0, 1.0.0, 0.9.0; nearest to 9.9.9: 1.5.1)"),
    ("nixl==1.2", "nixl: no release matches ==1.2 (releases, newest first: 1.5.1, 1.4.0, 1.0.0, 0.9.0; nearest to 1.2: 1.0.0 and 1.4.0)"),
])
def test_a_version_that_does_not_exist_lists_those_that_do(tmp_path, inside, index, capsys, wanted, said):
    inside(write_project(tmp_path, requirements={"kv.txt": wanted + "\n"}))
    assert main(["compile", *FAST, "--cuda", "13"]) == 4
    assert f"\n  {said}\n" in capsys.readouterr().err + "\n"


def test_releases_for_newer_pythons_say_requires_python_not_no_wheel(tmp_path, inside, capsys):
    index = kv_connectors_index()
    tags = tuple(f"cp3{minor}-cp3{minor}-manylinux_2_28_{arch}" for minor in (11, 12, 13) for arch in ("x86_64", "aarch64"))
    for version in ("2.3.0", "2.3.1"):
        index.add("numpy", version, tags=tags, requires_python=">=3.11", sdist=True)
    with served(index):
        inside(write_project(tmp_path, requirements={"kv.txt": "numpy>=2.3\n"}))
        assert main(["compile", *FAST, "--cuda", "13", "--python-version", "3.9"]) == 4
    err = capsys.readouterr().err
    assert "numpy: no release can be installed on Python 3.9: every matching release is unusable here: requires Python >=3.11 (target 3.9)" in err
    assert "no wheel" not in err


# -- help and the README show what the command line takes -------------------------------------------------------


def help_text(capsys, *arguments: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*arguments, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines where it likes


def test_help_inside_a_project_shows_its_values_beside_the_defaults(tmp_path, inside, capsys):
    inside(write_project(tmp_path, PYPROJECT.replace("https://index.test/simple", "https://ci:s3cret@index.test/simple")
                         + 'cuda = [13]\noutput-dir = "locks"\n'))
    text = help_text(capsys, "compile")
    assert "(default: from [tool.cuda-constraints], requirements/kv_connectors.txt) [this project: requirements/kv.txt]" in text
    assert "CUDA majors to resolve (default: 12,13) [this project: 13]" in text
    assert "[this project: https://ci:****@index.test/simple]" in text and "s3cret" not in text
    assert "the directory to check (default: constraints) [this project: locks]" in help_text(capsys, "check")
    inside(tmp_path / "requirements")  # the same project, from a folder below it
    assert "[this project: 13]" in help_text(capsys, "compile")


def test_help_outside_a_project_shows_the_built_in_defaults(tmp_path, inside, capsys):
    inside(tmp_path)
    assert "[this project" not in help_text(capsys, "compile")


def test_the_command_reference_lists_every_flag_of_compile(capsys):
    with pytest.raises(SystemExit):
        main(["compile", "--help"])
    defined = [line.split("  ")[1] for line in capsys.readouterr().out.splitlines() if re.match(r"^  -", line)]
    flags = {word.rstrip(",") for line in defined for word in line.split() if word.startswith("-")} - {"-h", "--help"}
    assert {"-v", "-c", "--exclude-dependency", "--keep-going"} <= flags
    reference = (Path(__file__).resolve().parents[1] / "docs" / "commands.md").read_text()
    table = reference.split("### `cuda-constraints compile`", 1)[1].split("\n### ", 1)[0]
    rows = " ".join(line.split("|")[1] for line in table.splitlines() if line.startswith("| `"))
    listed = set(re.findall(r"(?<![\w\[-])(--?[a-zA-Z][\w-]*)", rows))
    assert flags - listed == set()
    assert "`REQUIREMENTS ...`" in rows  # the positional inputs


@pytest.mark.parametrize(
    ("requirement", "release", "expected"),
    [
        ("gpustat", {"tags": (), "sdist": True},
         "gpustat: no release can be installed on cp312 manylinux_2_28_x86_64: every matching release is unusable here: no wheel "
         "for cp312 manylinux_2_28_x86_64 (only an sdist: --allow-sdist-package gpustat would admit it)"),
        ("gpustat>=1.0,<1.2", {"tags": BOTH_ARCHES, "yanked": True},
         "gpustat: no release can be installed on cp312 manylinux_2_28_x86_64: every matching release is yanked (a yanked "
         "release is used only where a requirement pins it with ==, as pip and uv do)"),
        ("lmcache==0.4.4", None, "cupy-cuda12x: no release fits CUDA 13: it is a CUDA 12 package"),
    ],
    ids=["sdist only", "yanked", "another major"],
)
def test_no_release_fits_cuda_only_where_cuda_is_why(tmp_path, inside, capsys, requirement, release, expected):
    index = kv_connectors_index()
    if release is not None:
        index.add("gpustat", "1.1", **release)
    with served(index):
        inside(write_project(tmp_path, requirements={"kv.txt": requirement + "\n"}))
        assert main(["compile", *FAST, "--cuda", "13", "--platform", "manylinux_2_28_x86_64"]) == 4
    err = capsys.readouterr().err
    assert expected in err
    assert ("no release fits CUDA" in err) == (release is None)
