"""The state folder (`<output-dir>/.cuda-constraints/`) is private: nothing in it that a commit supplies makes a
command write anywhere. Commands that only read never replay a journal; compile replays only one its user's
compile wrote, naming the tool's own files. Real git repositories, a real index server on 127.0.0.1 and the
tool as a real subprocess (`python -m resolver`), as a pre-commit hook runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
HOOK = "#!/bin/sh\ntouch \"$(git rev-parse --show-toplevel)/../hook-ran\"\n"


def git(directory: Path, *arguments: str) -> str:
    environment = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *arguments], cwd=directory, capture_output=True, text=True, check=True, env=environment).stdout


def run(root: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resolver", *arguments], cwd=root, capture_output=True, text=True, check=False,
        env={**os.environ, "CUDA_CONSTRAINTS_CACHE_DIR": str(root.parent / "cache"), "NETRC": "/nonexistent"},
    )


def project(root: Path, url: str, config: str = "") -> Path:
    """A project compiled against the local index and committed: pyproject, requirements, constraints/cu13.txt."""
    root.mkdir()
    (root / "pyproject.toml").write_text(
        f'[tool.cuda-constraints]\nrequirements = ["requirements.txt"]\ncuda = [13]\nplatforms = ["manylinux_2_28_x86_64"]\n'
        f'index-url = "{url}"\ncanaries = []\n{config}'
    )
    (root / "requirements.txt").write_text("goodpkg\n")
    git(root, "init", "-q")
    assert run(root, "compile", "-q").returncode == 0
    (root / "constraints" / "x.txt").write_text("a file of the project\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "project")
    return root


def hostile_commit(root: Path, names: list[str]) -> None:
    """What the reported commit adds: a journal, staged files under new/ and a link into .git/hooks."""
    state = root / "constraints" / ".cuda-constraints"
    (state / "new" / "hooks").mkdir(parents=True, exist_ok=True)
    (state / "new" / "hooks" / "pre-commit").write_text(HOOK)
    (state / "new" / "hooks" / "pre-commit").chmod(0o755)
    (state / "journal").write_text(json.dumps({"files": names}))
    (root / "constraints" / "hooks").symlink_to("../.git/hooks")
    git(root, "add", "-f", "-A")
    git(root, "commit", "-qm", "hostile")


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every file and link under the work tree and .git/hooks (the objects git writes itself left out)."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.parent.rglob("*")):
        relative = path.relative_to(root.parent).as_posix()
        if "/.git/" in f"/{relative}/" and "/.git/hooks" not in f"/{relative}":
            continue
        if relative.startswith("cache"):
            continue
        found[relative] = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else "dir"
    return found


def test_a_committed_journal_makes_no_read_only_command_write_anything(tmp_path, goodpkg_server):
    """The pre-commit hook's case: `check`, `diff`, `install --dry-run` and `verify` on a clone of a commit
    that plants a journal moving a hook into .git/hooks and a file two levels up."""
    origin = project(tmp_path / "origin", goodpkg_server.simple_url)
    hostile_commit(origin, ["hooks/pre-commit", "../../x.txt", "cu13.txt"])
    git(tmp_path, "clone", "-q", str(origin), "clone")
    clone = tmp_path / "clone"
    before = snapshot(clone)
    for command in (["check"], ["diff"], ["install", "--dry-run", "--cuda", "13"], ["verify", "--cuda", "13"]):
        done = run(clone, *command)
        assert "Traceback" not in done.stderr, done.stderr
        assert "a compile was interrupted while it replaced these files" in done.stderr, (command, done.stderr)
        assert snapshot(clone) == before, command
    assert not (clone / ".git" / "hooks" / "pre-commit").exists()
    git(clone, "commit", "-q", "--allow-empty", "-m", "next")
    assert not (tmp_path / "hook-ran").exists()


def test_compile_discards_a_committed_journal_and_moves_nothing_it_lists(tmp_path, goodpkg_server):
    origin = project(tmp_path / "origin", goodpkg_server.simple_url)
    hostile_commit(origin, ["hooks/pre-commit", "../../x.txt"])
    git(tmp_path, "clone", "-q", str(origin), "clone")
    clone = tmp_path / "clone"
    (clone / "constraints" / ".cuda-constraints" / "journal").chmod(0o600)  # as this user's compile writes it: git alone tells
    done = run(clone, "compile")
    assert done.returncode == 0, done.stderr
    assert "constraints/.cuda-constraints/journal was not written by a compile of this user (git tracks it)" in done.stderr
    assert not (clone / ".git" / "hooks" / "pre-commit").exists() and (clone / "constraints" / "x.txt").exists()
    assert not (tmp_path / "x.txt").exists()
    assert not (clone / "constraints" / ".cuda-constraints" / "journal").exists()
    assert not (clone / "constraints" / ".cuda-constraints" / "new").exists()


def planted(root: Path, names: list[str], mode: int = 0o600) -> Path:
    """A journal in the state folder that git does not track, as a compile would leave it but for `names`."""
    state = root / "constraints" / ".cuda-constraints"
    (state / "new").mkdir(parents=True, exist_ok=True)
    journal = state / "journal"
    journal.write_text(json.dumps({"files": names}))
    journal.chmod(mode)
    return state


@pytest.mark.parametrize(
    ("plant", "why"),
    [
        (lambda root: planted(root, ["hooks/pre-commit"]), "it lists a file that is not one the tool writes"),
        (lambda root: planted(root, ["../cu13.txt"]), "it lists a file that is not one the tool writes"),
        (lambda root: planted(root, ["cu13.txt"], mode=0o644), "others may read or write it"),
        (lambda root: (planted(root, ["cu13.txt"]) / "new" / "cu13.txt").symlink_to("/etc/passwd"), "is a symbolic link"),
        (lambda root: _linked_target(planted(root, ["cu12.txt"])), "is a symbolic link"),
    ],
    ids=["a path", "a parent", "readable by others", "a linked staged file", "a linked target"],
)
def test_compile_replays_only_a_journal_of_its_own_naming_its_own_files(tmp_path, goodpkg_server, plant, why):
    root = project(tmp_path / "project", goodpkg_server.simple_url)
    plant(root)
    before = {path: path.read_bytes() for path in (tmp_path / "outside").rglob("*")} if (tmp_path / "outside").exists() else {}
    done = run(root, "compile")
    assert done.returncode == 0, done.stderr
    assert "was not written by a compile of this user" in done.stderr and why in done.stderr, done.stderr
    assert not (root / ".git" / "hooks" / "pre-commit").exists()
    assert {path: path.read_bytes() for path in (tmp_path / "outside").rglob("*")} == before
    assert sorted(p.name for p in (root / "constraints" / ".cuda-constraints").iterdir()) == [".gitignore", "lock"]


def _linked_target(state: Path) -> None:
    outside = state.parents[2] / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("not the tool's\n")
    (state / "new" / "cu12.txt").write_text("# replaced\n")
    (state.parent / "cu12.txt").symlink_to(outside / "victim.txt")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give the journal to another user")
def test_a_journal_of_another_user_is_not_replayed(tmp_path, goodpkg_server):
    root = project(tmp_path / "project", goodpkg_server.simple_url)
    state = planted(root, ["cu13.txt"])
    (state / "new" / "cu13.txt").write_text("# another user's\n")
    os.chown(state / "journal", 12345, 12345)
    done = run(root, "compile")
    assert done.returncode == 0 and "another user owns it" in done.stderr, done.stderr
    assert "another user's" not in (root / "constraints" / "cu13.txt").read_text()


def test_this_users_interrupted_compile_is_still_finished(tmp_path, goodpkg_server):
    """The journal a compile writes itself is replayed: the new file replaces the old one."""
    root = project(tmp_path / "project", goodpkg_server.simple_url)
    state = planted(root, ["cu13.txt"])
    new = (root / "constraints" / "cu13.txt").read_text().replace("goodpkg==1.0", "goodpkg==1.0 ; python_version >= '3'")
    (state / "new" / "cu13.txt").write_text(new)
    done = run(root, "compile", "--offline", "--cache-dir", str(tmp_path / "empty"))
    assert done.returncode == 5, done.stderr  # offline with no cache: it stops after finishing the replacement
    assert "not written by a compile" not in done.stderr
    assert (root / "constraints" / "cu13.txt").read_text() == new


@pytest.mark.parametrize("link", ["state folder", "gitignore"])
def test_the_state_folder_and_its_gitignore_are_never_followed(tmp_path, goodpkg_server, link):
    root = project(tmp_path / "project", goodpkg_server.simple_url)
    shutil.rmtree(root / "constraints" / ".cuda-constraints")
    hooks = root / ".git" / "hooks"
    if link == "state folder":
        (root / "constraints" / ".cuda-constraints").symlink_to("../.git/hooks")
    else:
        (root / "constraints" / ".cuda-constraints").mkdir()
        (root / "constraints" / ".cuda-constraints" / ".gitignore").symlink_to(hooks / "pre-commit")
    before = sorted(p.name for p in hooks.iterdir())
    done = run(root, "compile", "--upgrade")
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in hooks.iterdir()) == before
    if link == "state folder":
        assert done.returncode == 2 and "state folder is a symbolic link or not a folder; remove it" in done.stderr


@pytest.mark.parametrize("content", ["precious\n", None], ids=["a foreign file", "a copy of the file"])
def test_a_constraints_file_that_is_a_link_is_replaced_never_written_through(tmp_path, goodpkg_server, content):
    root = project(tmp_path / "project", goodpkg_server.simple_url)
    outside = tmp_path / "outside.txt"
    written = root / "constraints" / "cu13.txt"
    outside.write_text(content if content is not None else written.read_text())
    written.unlink()
    written.symlink_to(outside)
    before = outside.read_text()
    (root / "requirements.txt").write_text("goodpkg>=1.0\n")  # a new input: the file is rewritten
    done = run(root, "compile")
    assert "Traceback" not in done.stderr
    assert outside.read_text() == before
    if content is None:
        assert done.returncode == 0 and not written.is_symlink() and "goodpkg==1.0" in written.read_text()
    else:
        assert done.returncode == 2 and written.is_symlink()  # not a file of the tool's: never overwritten
