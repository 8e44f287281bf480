"""Fault injection: every broken answer, broken disk and concurrent run gives a clear message, the right
exit code, and leaves the constraints files as they were, byte for byte."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from resolver import compile as compile_module
from resolver.cli import main
from resolver.errors import LockTimeout
from resolver.locking import output_lock

from .synthetic import kv_connectors_index, served, write_project

FAST = ["--retries", "1", "--no-cache"]


@pytest.fixture
def index():  # noqa: ANN201
    with served(kv_connectors_index()) as index:
        yield index


@pytest.fixture
def repo(tmp_path: Path, inside, index) -> Path:  # noqa: ANN001
    """A repository whose constraints were compiled once; the files every fault must leave alone."""
    inside(write_project(tmp_path))
    assert main(["compile", "-q", "--no-cache"]) == 0
    # Make the next compile want to change something, so "untouched" means something.
    index.add("numpy", "2.3.0", tags=("cp312-cp312-manylinux_2_28_x86_64", "cp312-cp312-manylinux_2_28_aarch64"))
    return tmp_path


def snapshot(repo: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((repo / "constraints").iterdir())}


def assert_untouched(repo: Path, before: dict[str, bytes]) -> None:
    assert snapshot(repo) == before  # no change, and no temporary file left behind


@pytest.mark.parametrize(
    ("path", "answers", "exit_code", "words"),
    [
        ("/pypi/numpy/json", [httpx.ReadTimeout("slow")] * 2, 5, ["https://index.test/pypi/numpy/json", "timed out", "2 attempts"]),
        ("/pypi/numpy/json", [httpx.RemoteProtocolError("peer closed connection")] * 2, 5, ["connection broken"]),
        ("/pypi/numpy/json", [httpx.ConnectError("connection refused")] * 2, 5, ["cannot connect"]),
        ("/pypi/numpy/json", [httpx.Response(503)] * 2, 5, ["HTTP 503", "server error"]),
        ("/pypi/numpy/json", [httpx.Response(500)] * 2, 5, ["HTTP 500"]),
        ("/pypi/numpy/json", [httpx.Response(429)] * 2, 5, ["HTTP 429", "rate limited"]),
        ("/pypi/numpy/json", [httpx.Response(403)], 5, ["HTTP 403", "access denied"]),
        ("/pypi/numpy/json", [httpx.Response(200, content=b'{"info": {"name": "numpy"}, "releases": {"2.3.0": [{"filen')], 5, ["truncated JSON"]),
        ("/pypi/numpy/json", [httpx.Response(200, content=b"<!DOCTYPE html><title>Sign in</title>", headers={"Content-Type": "text/html"})], 5, ["answered HTML"]),
        ("/pypi/numpy/json", [httpx.Response(200, json={"info": {"name": "numpy"}, "releases": []})], 5, ["not a PyPI JSON project page"]),
        ("/pypi/numpy/json", [httpx.Response(200, json={"info": {"name": "scipy"}, "releases": {}})], 5, ["answered the page of 'scipy'"]),
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

    import resolver.cache as cache_module

    def full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "tempfile", types.SimpleNamespace(mkstemp=full))
    assert main(["compile", "-U", "-q", "--cache-dir", str(repo / ".cache2")]) == 0
    assert "No space left on device" in capsys.readouterr().err


def test_an_interrupted_write_leaves_the_old_files_byte_for_byte(repo, monkeypatch, capsys):
    before = snapshot(repo)
    real_replace = os.replace
    calls = []

    def interrupted(source, destination):  # noqa: ANN001, ANN202
        calls.append(destination)
        if str(destination).endswith(".txt"):
            raise KeyboardInterrupt  # Ctrl-C (or a kill) just before the first rename
        return real_replace(source, destination)

    monkeypatch.setattr(compile_module.os, "replace", interrupted)
    assert main(["compile", "-U", *FAST]) == 130
    assert "nothing was written" in capsys.readouterr().err
    assert calls
    assert_untouched(repo, before)


def test_a_failed_write_names_the_file_and_leaves_the_old_ones(repo, monkeypatch, capsys):
    import types

    before = snapshot(repo)

    def full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(compile_module, "tempfile", types.SimpleNamespace(mkstemp=full))
    assert main(["compile", "-U", *FAST]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "No space left on device" in err and "left as they were" in err
    assert_untouched(repo, before)


def test_a_second_compile_on_the_same_directory_waits_then_fails_clearly(repo, monkeypatch, capsys):
    before = snapshot(repo)
    monkeypatch.setenv("CUDA_CONSTRAINTS_LOCK_WAIT", "0.5")
    with output_lock(repo / "constraints"):
        started = time.monotonic()
        assert main(["compile", "-U", *FAST]) == 2
        assert time.monotonic() - started >= 0.5
    err = capsys.readouterr().err
    assert "locked by another cuda-constraints run" in err
    assert_untouched(repo, before)


def test_a_second_compile_waits_for_the_first(repo, monkeypatch):
    monkeypatch.setenv("CUDA_CONSTRAINTS_LOCK_WAIT", "30")
    released = threading.Event()

    def hold() -> None:
        with output_lock(repo / "constraints"):
            released.wait(5)
            time.sleep(0.3)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    released.set()
    assert main(["compile", "-U", *FAST]) == 0
    holder.join()
    assert "numpy==2.3.0" in (repo / "constraints" / "cu13.txt").read_text()


def test_lock_timeout_message():
    error = LockTimeout(Path("constraints"), 600)
    assert "constraints is locked by another cuda-constraints run (waited 600s)" in str(error)
    assert error.exit_code == 2


def test_a_corrupt_existing_file_is_regenerated_not_fatal(repo, capsys):
    (repo / "constraints" / "cu13.txt").write_text("garbage\n")
    assert main(["compile", "-q", *FAST]) == 0
    assert (repo / "constraints" / "cu13.txt").read_text().startswith("# Generated by cuda-constraints for CUDA 13")
    assert main(["check"]) == 0
