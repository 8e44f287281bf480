"""Fault injection: every broken answer, broken disk and concurrent run gives a clear message, the right
exit code, and leaves the constraints files as they were, byte for byte."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from resolver.cli.main import main

from .conftest import snapshot as snapshot_of
from .synthetic import kv_connectors_index, served, write_project

FAST = ["--retries", "1", "--no-cache"]
JSON = {"Content-Type": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture
def index():
    with served(kv_connectors_index()) as index:
        yield index


@pytest.fixture
def repo(tmp_path: Path, inside, index) -> Path:
    """A repository whose constraints were compiled once; the files every fault must leave alone."""
    inside(write_project(tmp_path))
    assert main(["compile", "-q", "--no-cache"]) == 0
    # Make the next compile want to change something, so "untouched" means something.
    index.add("numpy", "2.3.0", tags=("cp312-cp312-manylinux_2_28_x86_64", "cp312-cp312-manylinux_2_28_aarch64"))
    return tmp_path


def snapshot(repo: Path) -> dict[str, bytes]:
    return snapshot_of(repo / "constraints")


def assert_untouched(repo: Path, before: dict[str, bytes]) -> None:
    assert snapshot(repo) == before  # no change, and no temporary file left behind


@pytest.mark.parametrize(
    ("path", "answers", "exit_code", "words"),
    [
        ("/simple/numpy/", [httpx.ReadTimeout("slow")] * 2, 5, ["https://index.test/simple/numpy/", "timed out", "2 attempts"]),
        ("/simple/numpy/", [httpx.RemoteProtocolError("peer closed connection")] * 2, 5, ["connection broken"]),
        ("/simple/numpy/", [httpx.ConnectError("connection refused")] * 2, 5, ["cannot connect"]),
        ("/simple/numpy/", [httpx.Response(503)] * 2, 5, ["HTTP 503", "server error"]),
        ("/simple/numpy/", [httpx.Response(500)] * 2, 5, ["HTTP 500"]),
        ("/simple/numpy/", [httpx.Response(429)] * 2, 5, ["HTTP 429", "rate limited"]),
        ("/simple/numpy/", [httpx.Response(403)], 5, ["HTTP 403", "access denied"]),
        ("/simple/numpy/", [httpx.Response(200, content=b'{"name": "numpy", "files": [{"filen', headers=JSON)], 5, ["truncated JSON"]),
        ("/simple/numpy/", [httpx.Response(200, content=b"<!DOCTYPE html><title>Sign in</title>", headers={"Content-Type": "text/html"})],
         4, ["no project named 'numpy'", "https://index.test/simple answered a page that lists no files of it"]),
        ("/simple/numpy/", [httpx.Response(200, content=b'{"name": "numpy", "files": {}}', headers=JSON)], 5, ["not a PEP 691 project page"]),
        ("/simple/numpy/", [httpx.Response(200, content=b'{"name": "scipy", "files": []}', headers=JSON)], 5, ["answered the page of 'scipy'"]),
        ("/simple/numpy/", [httpx.Response(200, content=b"numpy 2.3.0", headers={"Content-Type": "text/plain"})], 5, ["answered text/plain"]),
    ],
)
def test_broken_index_answers(repo, index, capsys, path, answers, exit_code, words):
    before = snapshot(repo)
    index.override(path, *answers)
    assert main(["compile", "-U", *FAST]) == exit_code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for word in words:
        assert word in err
    assert_untouched(repo, before)


def test_a_wheel_whose_bytes_do_not_match_the_listed_hash_is_an_index_error(repo, index, capsys):
    before = snapshot(repo)
    filename = "numpy-2.3.0-cp312-cp312-manylinux_2_28_x86_64.whl"
    garbage = b"not a zip at all"

    def corrupt(request: httpx.Request) -> httpx.Response:
        if request.headers.get("range"):
            return httpx.Response(206, content=garbage, headers={"Content-Range": f"bytes 0-15/{len(garbage)}"})
        return httpx.Response(200, content=garbage)

    index.override(f"/packages/{filename}", corrupt)
    assert main(["compile", "-U", *FAST]) == 5
    err = capsys.readouterr().err
    assert filename in err and "has sha256" in err and "but the index lists" in err
    assert_untouched(repo, before)


def test_a_truncated_wheel_is_an_index_error(repo, index, capsys):
    before = snapshot(repo)
    filename = "numpy-2.3.0-cp312-cp312-manylinux_2_28_x86_64.whl"
    content = index.file_bytes(filename)
    truncated = content[: len(content) - 40]  # the end-of-central-directory record is cut off
    index.override(f"/packages/{filename}", lambda request: httpx.Response(200, content=truncated))
    assert main(["compile", "-U", *FAST]) == 5
    assert filename in capsys.readouterr().err
    assert_untouched(repo, before)


def test_metadata_of_another_project_makes_the_release_unusable_with_a_warning(repo, index, capsys):
    index.add("numpy", "2.4.0", tags=("cp312-cp312-manylinux_2_28_x86_64", "cp312-cp312-manylinux_2_28_aarch64"), claimed_name="numpy-evil")
    assert main(["compile", "-U", *FAST]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1  # once, though every target met it
    assert "numpy-2.4.0-cp312-cp312-manylinux_2_28_x86_64.whl" in warnings[0]
    assert "it names numpy-evil 2.4.0, the index lists the file as numpy 2.4.0" in warnings[0]
    assert "numpy==2.3.0" in (repo / "constraints" / "cu13.txt").read_text()


def test_a_cache_directory_that_is_a_file_degrades_to_no_cache(repo, capsys):
    blocker = repo / "not-a-directory"
    blocker.write_text("")
    assert main(["compile", "-U", "-q", "--cache-dir", str(blocker / "cache")]) == 0
    err = capsys.readouterr().err
    assert err.count("cannot be written") == 1 and "continuing without caching" in err


def test_a_full_disk_for_the_cache_degrades_to_no_cache(repo, capsys, monkeypatch):
    import types

    import resolver.index.cache as cache_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "tempfile", types.SimpleNamespace(mkstemp=full))
    assert main(["compile", "-U", "-q", "--cache-dir", str(repo / ".cache2")]) == 0
    assert "No space left on device" in capsys.readouterr().err


def test_a_failed_write_names_the_file_and_leaves_the_old_ones(repo, monkeypatch, capsys):
    from resolver.files import output_dir

    before = snapshot(repo)
    real = output_dir._write_durably
    written = []

    def full(path, content, mode):
        if written:  # the second file: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        return real(path, content, mode)

    monkeypatch.setattr(output_dir, "_write_durably", full)
    assert main(["compile", "-U", *FAST]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "No space left on device" in err and "left as they were" in err
    assert written and written[0].parent.name == "new"
    assert_untouched(repo, before)


def test_a_damaged_constraints_file_is_regenerated_with_a_warning(repo, capsys):
    path = repo / "constraints" / "cu13.txt"
    path.write_text(path.read_text() + "garbage\n")
    assert main(["compile", "-q", *FAST]) == 0
    assert "warning: constraints/cu13.txt: its pins are not kept" in capsys.readouterr().err
    assert path.read_text().startswith("# Generated by cuda-constraints for CUDA 13") and "garbage" not in path.read_text()
    assert main(["check"]) == 0


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"garbage\n", "constraints/cu13.txt:1: not a cuda-constraints file"),
        (b"# Generated by cuda-constraints for CUDA 13\n\xff\xfe\n", "constraints/cu13.txt:2: not UTF-8 text"),
    ],
)
def test_a_file_that_is_not_ours_is_never_overwritten(repo, capsys, content, words):
    (repo / "constraints" / "cu13.txt").write_bytes(content)
    before = snapshot(repo)
    assert main(["compile", "-q", *FAST]) == 2
    err = capsys.readouterr().err
    assert words in err and "refuses to overwrite" in err and "Traceback" not in err
    assert_untouched(repo, before)


def test_an_input_without_requirements_is_refused(repo, capsys):
    before = snapshot(repo)
    (repo / "requirements" / "kv.txt").write_text("# everything was commented out\n")
    assert main(["compile", *FAST]) == 2
    assert "requirements/kv.txt: names no requirement" in capsys.readouterr().err
    assert_untouched(repo, before)


def test_paths_with_spaces_and_semicolons_round_trip_through_the_header(repo, capsys):
    odd = repo / "requirements" / "a;b c.txt"
    odd.write_text((repo / "requirements" / "kv.txt").read_text())
    assert main(["compile", "-q", *FAST, "-r", str(odd), "-o", str(repo / "out put;touch pwned")]) == 0
    header = (repo / "out put;touch pwned" / "cu13.txt").read_text().splitlines()[1]
    assert header == "#   cuda-constraints compile -r 'requirements/a;b c.txt' -o 'out put;touch pwned'"
    assert main(["check", "-o", str(repo / "out put;touch pwned")]) == 0
    odd.write_text(odd.read_text() + "numpy\n")
    capsys.readouterr()
    assert main(["check", "-o", str(repo / "out put;touch pwned")]) == 1
    assert "fix: cuda-constraints compile -r 'requirements/a;b c.txt' -o 'out put;touch pwned'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("pyproject", "words"),
    [
        ('[tool]\ncuda-constraints = 5\n', "pyproject.toml:2: tool.cuda-constraints must be a table"),
        ("tool = 5\n", "pyproject.toml: [tool] must be a table"),
        ('[tool.cuda-constraints]\npython-versions = "3.12"\n', "pyproject.toml:2: [tool.cuda-constraints] python-versions:"),
    ],
)
@pytest.mark.parametrize("command", [["compile"], ["check"], ["detect"], ["diff"]])
def test_a_bad_configuration_is_one_clear_error_for_every_command(tmp_path, inside, capsys, pyproject, words, command):
    inside(tmp_path)
    (tmp_path / "pyproject.toml").write_text(pyproject)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("url", "why"),
    [("http://no-such-host.invalid/simple", "the host name does not resolve"), (None, "the host refuses connections")],
    ids=["unresolvable", "refused"],
)
def test_an_unreachable_index_fails_after_one_retry_with_what_to_do(tmp_path, url, why):
    """A host that does not resolve or refuses connections is not asked five times over seconds of backoff."""
    if url is None:
        with socket.socket() as closed:  # a port nothing listens on
            closed.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{closed.getsockname()[1]}/simple"
    (tmp_path / "r.txt").write_text("nixl\n")
    completed = subprocess.run(
        [sys.executable, "-m", "resolver", "compile", "r.txt", "--dry-run", "--no-cache", "--index-url", url],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60, env={**os.environ, "NETRC": "/nonexistent"},
    )
    assert completed.returncode == 5, completed.stderr
    assert f"cannot connect: {why}" in completed.stderr and "(gave up after 2 attempts)" in completed.stderr
    assert "--offline compiles from the cache, --find-links DIR" in completed.stderr and "pytorch-index" in completed.stderr
    assert "Traceback" not in completed.stderr
