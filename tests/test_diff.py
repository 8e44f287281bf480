"""`diff`: git HEAD against the working tree (a real temporary git repository), two directories, two
files; text and markdown; changes across majors; errors that name what is wrong."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import Version

from resolver.cli.main import main
from resolver.commands.diff import diff_sets, render_markdown, render_text
from resolver.files.constraints import (
    ConstraintsDocument,
    ExcludedLine,
    PinLine,
    SourceBuild,
    SwapLine,
    render,
)
from resolver.files.sets import ConstraintSet, NamedDocument
from resolver.model.families import FamilyTable

KV = "requirements/kv_connectors.txt"


def document(major: int, pins: dict[str, str], options: str = "", **fields) -> ConstraintsDocument:
    lines = []
    for name, value in sorted(pins.items()):
        version, _, marker = value.partition(" ; ")
        lines.append(PinLine(name.split("#")[0], Version(version), marker, (f"-r {KV}",)))
    targets = "cp312 manylinux_2_28 x86_64, aarch64"
    return ConstraintsDocument(major, "cuda-constraints compile", (KV,), "5a08143025def01e", targets, options, pins=tuple(lines), **fields)


CU12 = {"nixl": "1.5.1", "nixl-cu12": "1.5.1", "numpy": "2.2.6", "cupy-cuda12x": "14.2.0", "lmcache": "0.4.4", "cuda-python": "12.9.4"}
CU13 = {"nixl": "1.5.1", "nixl-cu13": "1.5.1", "numpy": "2.2.6", "cupy-cuda13x": "14.2.0", "lmcache": "0.5.6", "cuda-python": "13.4.4"}
NIXL_12 = {"excluded": (ExcludedLine("nixl-cu13", "nixl==1.5.1"),)}
NIXL_13 = {"excluded": (ExcludedLine("nixl-cu12", "nixl==1.5.1"),)}


def write_set(directory: Path, cu12: ConstraintsDocument | None, cu13: ConstraintsDocument | None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for major, doc in ((12, cu12), (13, cu13)):
        path = directory / f"cu{major}.txt"
        if doc is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(render(doc))


def git(repo: Path, *arguments: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", *arguments],
        cwd=repo, check=True, capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    """A git repository with both files committed."""
    (tmp_path / "pyproject.toml").write_text("[tool.cuda-constraints]\n")
    write_set(tmp_path / "constraints", document(12, CU12, **NIXL_12), document(13, CU13, **NIXL_13))
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "constraints")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_diff(capsys, *arguments: str) -> str:
    assert main(["diff", *arguments]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.out


def test_a_pin_moved_by_hand_shows_old_and_new_on_one_line(repo, capsys):
    text = (repo / "constraints" / "cu13.txt").read_text().replace("numpy==2.2.6", "numpy==2.3.0")
    (repo / "constraints" / "cu13.txt").write_text(text)
    out = run_diff(capsys)
    assert out.splitlines()[0] == "HEAD:constraints -> constraints: CUDA 12: no changes · CUDA 13: 1 upgraded"
    assert "CUDA 13 (constraints/cu13.txt): 1 upgraded\n  upgraded    numpy 2.2.6 -> 2.3.0\n" in out
    # numpy is no variant: the majors now differ, and this change made them.
    assert re.search(r"^  numpy +cu12 2\.2\.6 \| cu13 2\.3\.0   \(changed here\)$", out, re.M)
    markdown = run_diff(capsys, "--format", "markdown")
    assert "| upgraded | `numpy` | `2.2.6` | `2.3.0` |\n" in markdown  # no marker column: no change has one
    assert "| package | cu12 | cu13 | by this change |" in markdown and "| `numpy` | `2.2.6` | `2.3.0` | yes |" in markdown


def test_changes_that_follow_a_cause_are_listed_under_it(repo, capsys):
    """A torch moved by hand: its libraries follow it (their `# via` is torch), numpy moved on its own."""
    def torch_set(torch: str, cublas: str, nccl: str, numpy: str) -> ConstraintsDocument:
        base = document(13, {**CU13, "numpy": numpy}, **NIXL_13)
        pins = (*base.pins, PinLine("torch", Version(torch), "", (f"-r {KV}",)),
                PinLine("nvidia-cublas", Version(cublas), "", ("torch",)), PinLine("nvidia-nccl-cu13", Version(nccl), "", ("torch",)))
        return replace(base, pins=tuple(sorted(pins, key=lambda p: p.name)))

    write_set(repo / "constraints", document(12, CU12, **NIXL_12), torch_set("2.15.0", "13.4.1.3", "2.30.7", "2.2.6"))
    subprocess.run(["git", "commit", "-qam", "torch 2.15"], cwd=repo, check=True)
    write_set(repo / "constraints", document(12, CU12, **NIXL_12), torch_set("2.14.1", "13.1.1.3", "2.28.9", "2.3.0"))
    out = run_diff(capsys)
    assert "  downgraded  torch 2.15.0 -> 2.14.1, and 2 packages that follow it:\n" in out
    assert "                nvidia-cublas 13.4.1.3 -> 13.1.1.3\n                nvidia-nccl-cu13 2.30.7 -> 2.28.9\n" in out
    assert "  upgraded    numpy 2.2.6 -> 2.3.0\n" in out
    markdown = run_diff(capsys, "--format", "markdown")
    assert "| downgraded | `torch` | `2.15.0` | `2.14.1` |\n| downgraded | ↳ `nvidia-cublas` | `13.4.1.3` | `13.1.1.3` |" in markdown


def test_no_changes(repo, capsys):
    out = run_diff(capsys)
    assert out.startswith("HEAD:constraints -> constraints: No changes to the constraints.\n")
    assert "CUDA 12 (constraints/cu12.txt): no changes\n" in out
    markdown = run_diff(capsys, "--format", "markdown")
    assert "**No changes to the constraints.**" in markdown and "### CUDA" not in markdown.split("Not CUDA variants")[0]


def test_every_kind_of_change_per_major(repo, capsys):
    cu12 = {**CU12, "numpy": "2.1.0", "aiohttp": "3.14.5", 'triton#x86': '3.6.0 ; platform_machine == "x86_64"'}
    del cu12["lmcache"]
    new12 = document(
        12, cu12, options="--generate-hashes",
        excluded=(ExcludedLine("nixl-cu13", "nixl==1.6.0"),),
        swapped=(SwapLine("cupy-cuda13x!=14.1.0", "cupy-cuda12x!=14.1.0", f"{KV}:6"),),
        source_builds=(SourceBuild("lmcache", "0.4.4", "manylinux_2_28_aarch64"),),
    )
    write_set(repo / "constraints", new12, document(13, CU13, **NIXL_13))
    out = run_diff(capsys)
    summary = "CUDA 12: 1 downgraded, 2 added, 1 removed, 4 other changes · CUDA 13: no changes"
    assert out.splitlines()[0] == f"HEAD:constraints -> constraints: {summary}"
    section = out.split("CUDA 12 (constraints/cu12.txt): ")[1].split("CUDA 13")[0]
    assert section.splitlines() == [
        "1 downgraded, 2 added, 1 removed, 4 other changes",
        "  downgraded  numpy 2.2.6 -> 2.1.0",
        "  added       aiohttp 3.14.5",
        '  added       triton 3.6.0  ; platform_machine == "x86_64"',
        "  removed     lmcache 0.4.4",
        "  excluded    ~ nixl-cu13 (required by nixl==1.6.0, was nixl==1.5.1)",
        f"  swapped     + cupy-cuda13x!=14.1.0 -> cupy-cuda12x!=14.1.0 ({KV}:6)",
        "  from source + lmcache==0.4.4 on manylinux_2_28_aarch64",
        "  options     --generate-hashes added",
    ]
    markdown = run_diff(capsys, "--format", "markdown")
    assert "### CUDA 12 — `constraints/cu12.txt`: 1 downgraded, 2 added, 1 removed, 4 other changes" in markdown
    assert "| removed | `lmcache` | `0.4.4` |  | |" in markdown
    assert '| added | `triton` |  | `3.6.0` | `platform_machine == "x86_64"` |' in markdown
    assert "| excluded | ~ nixl-cu13 (required by nixl==1.6.0, was nixl==1.5.1) |" in markdown
    assert "### CUDA 13" not in markdown


def test_variants_are_not_listed_across_majors_and_the_section_shows_only_when_it_changed(repo, capsys):
    assert "across majors" not in run_diff(capsys)  # lmcache differs, as before: nothing to review
    text = (repo / "constraints" / "cu13.txt").read_text().replace("lmcache==0.5.6", "lmcache==0.5.5")
    (repo / "constraints" / "cu13.txt").write_text(text)
    across = run_diff(capsys).split("Not CUDA variants, pinned differently across majors:\n")[1]
    assert [line.split()[0] for line in across.splitlines()] == ["lmcache"]  # not cupy-*, nixl-*, cuda-python


def test_a_major_added_and_one_removed(repo, capsys):
    (repo / "constraints" / "cu12.txt").unlink()
    (repo / "constraints" / "cu14.txt").write_text(render(document(14, {"nixl": "1.5.1", "nixl-cu14": "1.5.1"})))
    out = run_diff(capsys)
    assert "CUDA 12 (HEAD:constraints/cu12.txt): file removed (6 packages)\n" in out
    assert "CUDA 14 (constraints/cu14.txt): file added (2 packages)\n  added       nixl 1.5.1\n  added       nixl-cu14 1.5.1\n" in out
    markdown = run_diff(capsys, "--format", "markdown")
    assert "### CUDA 14 — `constraints/cu14.txt`: file added (2 packages)\n\n<details><summary>2 packages</summary>" in markdown


def test_head_without_the_directory_counts_every_file_as_added(repo, capsys):
    write_set(repo / "elsewhere", document(12, CU12), None)
    out = run_diff(capsys, "-o", "elsewhere")
    assert out.startswith(
        "HEAD:elsewhere -> elsewhere: CUDA 12: file added (6 packages)\n"
        "note: HEAD has no elsewhere/ directory; every file counts as added\n"
    )


def test_a_repository_without_commits(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_set(tmp_path / "constraints", document(12, CU12), None)
    git(tmp_path, "init", "-q")
    out = run_diff(capsys)
    assert "note: the repository has no commit yet; every file counts as added" in out
    assert "CUDA 12 (constraints/cu12.txt): file added (6 packages)" in out


def test_outside_a_git_repository_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    write_set(tmp_path / "constraints", document(12, CU12), None)
    assert main(["diff"]) == 2
    err = capsys.readouterr().err
    assert "error: constraints: is not inside a git repository" in err and "give OLD and NEW" in err


def test_a_subdirectory_of_the_repository(repo, capsys, monkeypatch):
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    text = (repo / "constraints" / "cu12.txt").read_text().replace("numpy==2.2.6", "numpy==2.3.0")
    (repo / "constraints" / "cu12.txt").write_text(text)
    out = run_diff(capsys)
    assert "upgraded    numpy 2.2.6 -> 2.3.0" in out


def test_two_directories_and_two_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_set(tmp_path / "old", document(12, CU12), document(13, CU13))
    write_set(tmp_path / "new", document(12, {**CU12, "numpy": "2.3.0"}), document(13, CU13))
    out = run_diff(capsys, "old", "new")
    assert out.startswith("old -> new: CUDA 12: 1 upgraded · CUDA 13: no changes\n")
    out = run_diff(capsys, "old/cu12.txt", "new/cu12.txt")
    assert out.startswith("old/cu12.txt -> new/cu12.txt: CUDA 12: 1 upgraded\n")
    assert "Not CUDA variants" not in out


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["old"], "give OLD and NEW"),
        (["old", "missing"], "missing: no such file or directory"),
        (["old", "old/cu12.txt"], "give two directories or two files"),
        (["old", "old", "-o", "x"], "-o names the directory compared with git HEAD"),
    ],
)
def test_usage_errors_exit_2(tmp_path, monkeypatch, capsys, arguments, problem):
    monkeypatch.chdir(tmp_path)
    write_set(tmp_path / "old", document(12, CU12), None)
    assert main(["diff", *arguments]) == 2
    assert problem in capsys.readouterr().err


def test_an_unknown_format_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["diff", "--format", "html"])
    assert exited.value.code == 2 and "invalid choice: 'html'" in capsys.readouterr().err


def test_a_corrupt_file_at_head_or_in_the_tree_exits_2_naming_it(repo, capsys):
    (repo / "constraints" / "cu13.txt").write_text("# Generated by hand\n" * 3)
    assert main(["diff"]) == 2
    assert "error: constraints/cu13.txt:1: '# Generated by hand': not a cuda-constraints file" in capsys.readouterr().err
    git(repo, "commit", "-q", "-am", "broken")
    write_set(repo / "constraints", document(12, CU12), document(13, CU13))
    assert main(["diff"]) == 2
    assert "error: HEAD:constraints/cu13.txt:1: '# Generated by hand'" in capsys.readouterr().err


def test_output_is_deterministic():
    old = ConstraintSet("a", {12: NamedDocument("a/cu12.txt", document(12, CU12)), 13: NamedDocument("a/cu13.txt", document(13, CU13))})
    moved = document(13, {**CU13, "numpy": "2.3.0"})
    new = ConstraintSet("b", {13: NamedDocument("b/cu13.txt", moved), 12: NamedDocument("b/cu12.txt", document(12, CU12))})
    diff = diff_sets(old, new, FamilyTable())
    assert render_text(diff) == render_text(diff_sets(old, new, FamilyTable()))
    assert [m.major for m in diff.majors] == [12, 13]
    assert render_markdown(diff).startswith("## Constraints changes\n\n`a` → `b`: **CUDA 12: no changes · CUDA 13: 1 upgraded**\n")


@st.composite
def damaged(draw, text: str) -> bytes:
    """One line replaced by noise, noise inserted, or bytes that are not UTF-8 put in."""
    lines = [line.encode() for line in text.splitlines(keepends=True)]
    number = draw(st.integers(0, len(lines) - 1))
    how = draw(st.sampled_from(["line", "insert", "bytes"]))
    if how == "bytes":
        lines.insert(number, draw(st.binary(min_size=1, max_size=8)))
    else:
        noise = draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)).encode()
        lines[number : number + (how == "line")] = [noise + b"\n"]
    return b"".join(lines)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_any_damage_to_a_file_is_a_clear_error_never_a_traceback(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("damaged")
    text = render(document(13, CU13, **NIXL_13))
    (root / "old.txt").write_text(text)
    (root / "new.txt").write_bytes(data.draw(damaged(text)))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(["diff", str(root / "old.txt"), str(root / "new.txt")])
    assert status in (0, 2) and "Traceback" not in err.getvalue()
    if status == 2:
        assert err.getvalue().startswith(f"error: {(root / 'new.txt').as_posix()}")


def test_a_one_line_bump_counts_each_change_once_and_names_the_input(tmp_path, inside, capsys):
    """Compiled, committed, one requirement moved, compiled again: the exclusion that follows nixl is one
    change, and the header change names the file, not two digests."""
    from .synthetic import KV_REQUIREMENTS, kv_connectors_index, served, write_project

    with served(kv_connectors_index()):
        inside(write_project(tmp_path))
        assert main(["compile", "-q", "--no-cache"]) == 0
        git(tmp_path, "init", "-q")
        git(tmp_path, "add", "constraints", "requirements", "pyproject.toml")
        git(tmp_path, "commit", "-q", "-m", "constraints")
        (tmp_path / "requirements" / "kv.txt").write_text(KV_REQUIREMENTS.replace("nixl >= 1.1.0", "nixl == 1.4.0"))
        assert main(["compile", "-q", "--no-cache"]) == 0
    capsys.readouterr()
    out = run_diff(capsys)
    section = out.split("CUDA 13 (constraints/cu13.txt): ")[1]
    assert section.splitlines()[0] == "2 downgraded, 2 other changes"
    assert "  excluded    ~ nixl-cu12 (required by nixl==1.4.0, was nixl==1.5.1)\n" in section
    assert "  inputs      requirements/kv.txt changed\n" in section and "sha256" not in out
