"""Robustness against a hostile index and against signals, with a real server on 127.0.0.1 and the tool in a
real subprocess under a memory limit (a regression fails cleanly instead of eating the machine); its peak
RSS is measured by the kernel."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .hostile_server import (
    SIMPLE_JSON,
    HostileServer,
    deflated,
    end_record,
    endless,
    file_entry,
    serve_ranges,
    zip_with_member,
)
from .index_server import IndexServer, ServedIndex
from .synthetic import BOTH_ARCHES, KV_REQUIREMENTS, kv_connectors_index

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals, rlimits and /proc as on Linux")
ADDRESS_SPACE = 2 << 30  # virtual memory: threads reserve much more than they use
PEAK_RSS_MB = 300
ONE_TARGET = ["--cuda", "13", "--platform", "manylinux_2_28_x86_64", "--no-cache", "--retries", "0"]
WHEEL = "bomb-1.0-py3-none-any.whl"


@dataclass
class Finished:
    code: int
    out: str
    err: str
    seconds: float
    peak_rss_mb: float


def start(arguments: list[str], cwd: Path, **environment: str) -> tuple[subprocess.Popen[bytes], Path]:
    logs = cwd / f"run-{time.monotonic_ns()}"
    logs.mkdir()

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    process = subprocess.Popen(
        [sys.executable, "-m", "resolver", *arguments],
        cwd=cwd,
        stdout=(logs / "out").open("wb"),
        stderr=(logs / "err").open("wb"),
        env={**os.environ, "MALLOC_ARENA_MAX": "2", "NETRC": "/nonexistent", "PYTHONPATH": str(Path(__file__).parents[1]), **environment},
        preexec_fn=limit_memory,
    )
    return process, logs


def finish(process: subprocess.Popen[bytes], logs: Path, started: float, timeout: float = 120) -> Finished:
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"still running after {timeout}s")
        time.sleep(0.02)
    process.returncode = os.waitstatus_to_exitcode(status)
    return Finished(
        process.returncode,
        (logs / "out").read_text(errors="replace"),
        (logs / "err").read_text(errors="replace"),
        time.monotonic() - started,
        usage.ru_maxrss / 1024,
    )


def run(arguments: list[str], cwd: Path, timeout: float = 120, **environment: str) -> Finished:
    started = time.monotonic()
    process, logs = start(arguments, cwd, **environment)
    return finish(process, logs, started, timeout)


def project(root: Path, requirements: str) -> Path:
    (root / "pyproject.toml").write_text('[tool.cuda-constraints]\nrequirements = ["requirements.txt"]\n')
    (root / "requirements.txt").write_text(requirements)
    return root


def one_clear_error(finished: Finished, *words: str) -> None:
    assert finished.code == 5, finished.err
    assert "Traceback" not in finished.err and "MemoryError" not in finished.err
    errors = [line for line in finished.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, finished.err
    for word in words:
        assert word in errors[0], errors[0]
    assert finished.peak_rss_mb < PEAK_RSS_MB, finished.peak_rss_mb


# -- bounded reads ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """1 GiB of METADATA, deflated to about 1 MB."""
    return deflated(b"Metadata-Version: 2.1\nName: bomb\nVersion: 1.0\nLicense: " if n == 0 else b" " * (1 << 20) for n in range(1024))


@pytest.mark.parametrize("declared", ["honestly", "small"])
def test_a_zip_bomb_metadata_member_is_cut_off(tmp_path, zip_bomb, declared):
    size = (1 << 30) + 60 if declared == "honestly" else 400
    wheel = zip_with_member("bomb-1.0.dist-info/METADATA", zip_bomb, 8, size)
    with HostileServer() as server:
        server.page("bomb", [file_entry(WHEEL, wheel)])
        server.answers[f"/packages/{WHEEL}"] = serve_ranges(wheel)
        finished = run(["compile", *ONE_TARGET, "--index-url", f"{server.url}/simple"], project(tmp_path, "bomb\n"))
    one_clear_error(finished, WHEEL, "allowed for a METADATA file", "16 MiB")


def test_a_range_answer_larger_than_asked_is_cut_off(tmp_path):
    with HostileServer() as server:
        server.page("bomb", [file_entry(WHEEL, size=500_000_000, sha256="0" * 64)])
        server.answers[f"/packages/{WHEEL}"] = lambda c: c.stream(206, endless(), **{"Content-Range": "bytes 0-65535/500000000"})
        finished = run(["compile", *ONE_TARGET, "--index-url", f"{server.url}/simple"], project(tmp_path, "bomb\n"))
        sent = server.sent.get(f"/packages/{WHEEL}", 0)
    one_clear_error(finished, WHEEL, "sent more", "the range asked for")
    assert sent < 64 << 20  # the client hung up; the server did not get to send its gigabyte


def test_a_file_whose_listed_size_lies_is_downloaded_no_further_than_the_limit(tmp_path):
    """The page says 500 bytes; the server ignores Range and sends without end."""
    with HostileServer() as server:
        server.page("bomb", [file_entry(WHEEL, size=500, sha256="0" * 64)])
        server.answers[f"/packages/{WHEEL}"] = lambda c: c.stream(200, endless())
        finished = run(["compile", *ONE_TARGET, "--index-url", f"{server.url}/simple"], project(tmp_path, "bomb\n"))
        sent = server.sent.get(f"/packages/{WHEEL}", 0)
    one_clear_error(finished, WHEEL, "sent more", "1 MiB")
    assert sent < 64 << 20


@pytest.mark.parametrize("declared", [True, False])
def test_an_sdist_an_html_page_lists_without_a_size_is_downloaded_no_further_than_the_limit(tmp_path, declared):
    """A PEP 503 page lists no sizes, so an sdist is downloaded for its metadata; one that is larger (it says
    so, or it streams without end) is cut off at 1 MiB, and only that release is unusable."""
    sdist = "bomb-1.0.tar.gz"
    page = f'<html><body><a href="/packages/{sdist}#sha256={"0" * 64}">{sdist}</a></body></html>'.encode()
    length = {"Content-Length": str(1 << 30)} if declared else {}
    with HostileServer() as server:
        server.answers["/simple/bomb/"] = lambda c: c.whole(200, page, "text/html")
        server.answers[f"/packages/{sdist}"] = lambda c: c.stream(200, endless(), **length)
        finished = run(["compile", *ONE_TARGET, "--allow-sdist", "--index-url", f"{server.url}/simple"], project(tmp_path, "bomb\n"))
        sent = server.sent.get(f"/packages/{sdist}", 0)
    assert finished.code == 4, finished.err
    assert "Traceback" not in finished.err
    assert f"warning: skipping bomb 1.0: cannot read the dependencies of {sdist}" in finished.err
    assert "the file is over 1024 KiB" in finished.err
    assert sent < 64 << 20, sent
    assert finished.peak_rss_mb < PEAK_RSS_MB, finished.peak_rss_mb


def test_a_damaged_end_record_cannot_ask_for_a_huge_directory(tmp_path):
    total = 400_000_000
    tail = b"\0" * 1000 + end_record(directory_offset=80_000_000, directory_size=315_000_000)
    with HostileServer() as server:
        server.page("bomb", [file_entry(WHEEL, size=total, sha256="0" * 64)])
        server.answers[f"/packages/{WHEEL}"] = serve_ranges(tail, total)
        finished = run(["compile", *ONE_TARGET, "--index-url", f"{server.url}/simple"], project(tmp_path, "bomb\n"))
        asked = [path for _, path in server.requests if path.startswith("/packages/")]
    one_clear_error(finished, WHEEL, "central directory declares 315,000,000 bytes", "32 MiB")
    assert len(asked) == 1  # the tail only


def test_a_page_that_never_ends_is_cut_off_at_the_page_limit(tmp_path):
    with HostileServer() as server:
        server.answers["/simple/bomb/"] = lambda c: c.stream(200, endless(b'{"name": "bomb", "files": [' + b" " * 65000), **{"Content-Type": SIMPLE_JSON})
        finished = run(["compile", *ONE_TARGET, "--max-page-size", "8", "--index-url", f"{server.url}/simple"], project(tmp_path, "bomb\n"))
    one_clear_error(finished, "/simple/bomb/", "sent more", "8 MiB")


def test_a_page_that_declares_too_much_is_not_read(tmp_path):
    with HostileServer() as server:
        server.answers["/simple/bomb/"] = lambda c: c.head(200, {"Content-Length": str(1 << 30)}) or c.send(b"{" * 1000)
        finished = run(["compile", *ONE_TARGET, "--index-url", f"{server.url}/simple"], project(tmp_path, "bomb\n"))
    one_clear_error(finished, "declares 1,073,741,824 bytes", "64 MiB")


@pytest.mark.parametrize("command", ["compile", "inspect"])
def test_json_nested_200000_deep_is_a_clear_error(tmp_path, command):
    deep = b'{"info": {"name": "bomb"}, "releases": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with HostileServer() as server:
        server.answers["/simple/bomb/"] = lambda c: c.whole(200, deep, SIMPLE_JSON)
        arguments = ["compile", *ONE_TARGET] if command == "compile" else ["inspect", "bomb", "--no-cache", "--retries", "0"]
        finished = run([*arguments, "--index-url", f"{server.url}/simple"], project(tmp_path, "bomb\n"))
    one_clear_error(finished, "/simple/bomb/", "nested more than")


def test_a_server_that_drips_is_cut_off_at_the_deadline(tmp_path):
    with HostileServer() as server:
        server.answers["/simple/bomb/"] = lambda c: c.stream(200, endless(b"[", delay=0.5), **{"Content-Type": SIMPLE_JSON})
        arguments = ["compile", *ONE_TARGET, "--timeout", "2", "--deadline", "3", "--index-url", f"{server.url}/simple"]
        finished = run(arguments, project(tmp_path, "bomb\n"))
    one_clear_error(finished, "/simple/bomb/", "did not finish within 3s")
    assert finished.seconds < 15


def test_the_deadline_follows_the_timeout_by_default(tmp_path):
    with HostileServer() as server:
        server.answers["/simple/bomb/"] = lambda c: c.stream(200, endless(b"[", delay=0.2), **{"Content-Type": SIMPLE_JSON})
        finished = run(["compile", *ONE_TARGET, "--timeout", "0.5", "--index-url", f"{server.url}/simple"], project(tmp_path, "bomb\n"))
    one_clear_error(finished, "did not finish within 5s")


def test_a_server_that_ignores_range_on_a_large_file_is_not_read(tmp_path):
    """A 200 MB wheel answered whole: the client reads none of its body (the listed size is over 1 MiB)."""
    size = 200 << 20
    with HostileServer() as server:
        server.page("bomb", [file_entry(WHEEL, size=size, sha256="0" * 64)])
        server.answers[f"/packages/{WHEEL}"] = lambda c: c.head(200, {"Content-Length": str(size)}) or [c.send(b"\0" * (1 << 20)) for _ in range(200)]
        (tmp_path / "requirements.txt")
        finished = run(["compile", *ONE_TARGET, "--index-url", f"{server.url}/simple"], project(tmp_path, "bomb\n"))
        sent = server.sent.get(f"/packages/{WHEEL}", 0)
    assert finished.code == 4 and "ignores Range" in finished.err and "Traceback" not in finished.err
    assert sent < 32 << 20, sent


# -- local files a page names ----------------------------------------------------------------------------


@pytest.mark.parametrize("local", ["/dev/zero", "fifo"])
def test_a_local_file_named_by_a_fetched_page_is_refused(tmp_path, local):
    """/dev/zero never ends and opening a FIFO waits for a writer: only a find-links directory's regular
    files are read from disk."""
    if local == "fifo":
        os.mkfifo(tmp_path / "fifo.whl")
        local = str(tmp_path / "fifo.whl")
    entry = file_entry(WHEEL, b"wheel")
    entry["url"] = f"file://{local}"
    with HostileServer() as server:
        server.page("bomb", [entry])
        finished = run(["compile", *ONE_TARGET, "--deadline", "5", "--index-url", f"{server.url}/simple"], project(tmp_path, "bomb\n"), timeout=60)
    one_clear_error(finished, f"file://{local}", WHEEL, "names a local file")
    assert finished.seconds < 30


def test_only_regular_files_of_a_find_links_directory_are_read(tmp_path):
    """A FIFO and a link to /dev/zero named like newer wheels are passed over; the real wheel is taken."""
    from .synthetic import SyntheticIndex

    index = SyntheticIndex()
    release = index.add("bomb", "1.0")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / WHEEL).write_bytes(release.wheel_bytes("py3-none-any"))
    os.mkfifo(wheels / "bomb-3.0-py3-none-any.whl")
    (wheels / "bomb-2.0-py3-none-any.whl").symlink_to("/dev/zero")
    (tmp_path / "project").mkdir()
    root = project(tmp_path / "project", "bomb\n")
    finished = run(["compile", *ONE_TARGET, "--no-index", "--find-links", str(wheels)], root, timeout=60)
    assert finished.code == 0, finished.err
    assert "bomb==1.0" in (root / "constraints" / "cu13.txt").read_text()


# -- hostile page values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("requires-python", [">=3"], ["/simple/bomb/", WHEEL, "requires-python that is not a string"]),
        ("url", "http://127.0.0.1:99999/bomb.whl", ["http://127.0.0.1:99999/bomb.whl", "not a usable URL", "Port out of range"]),
    ],
)
def test_a_page_value_of_the_wrong_kind_is_a_clear_error(tmp_path, field, value, words):
    entry = file_entry(WHEEL, b"wheel")
    entry[field] = value
    with HostileServer() as server:
        server.page("bomb", [entry])
        finished = run(["compile", *ONE_TARGET, "--index-url", f"{server.url}/simple"], project(tmp_path, "bomb\n"))
    one_clear_error(finished, *words)


def test_a_wheel_whose_build_tag_has_thousands_of_digits_is_passed_over(tmp_path):
    """int() refuses more than 4,300 digits: such a name is malformed, as pip and packaging read it."""
    from .synthetic import SyntheticRelease

    good = SyntheticRelease("bomb", "1.0").wheel_bytes("py3-none-any")
    hostile = "bomb-1.0-1" + "7" * 5000 + "-py3-none-any.whl"
    with HostileServer() as server:
        server.page("bomb", [file_entry(hostile, good), file_entry(WHEEL, good)])
        server.answers[f"/packages/{WHEEL}"] = serve_ranges(good)
        finished = run(["compile", *ONE_TARGET, "--index-url", f"{server.url}/simple"], project(tmp_path, "bomb\n"))
        asked = [path for _, path in server.requests if path.startswith("/packages/")]
    assert finished.code == 0, finished.err
    assert asked and all(path == f"/packages/{WHEEL}" for path in asked)


# -- counts and breadth -----------------------------------------------------------------------------------


def served_project(tmp_path: Path, index: ServedIndex, requirements: str, *arguments: str, timeout: float = 300) -> Finished:
    with IndexServer(index) as server:
        return run(["compile", *ONE_TARGET, *arguments, "--index-url", f"{server.url}/simple"], project(tmp_path, requirements), timeout)


def test_many_requirement_lines_on_one_project_resolve(tmp_path):
    """4,000 lines naming one project (a quadratic resolution took 4 s, 16,000 a minute: benchmarks/README.md)."""
    index = ServedIndex()
    index.add("big", "1.0", [f"dep!=0.{n}" for n in range(4000)] + ["dep<3"], core_metadata=True)
    index.add("dep", "1.0", core_metadata=True)
    index.add("dep", "3.0", core_metadata=True)
    finished = served_project(tmp_path, index, "big\n", timeout=60)
    assert finished.code == 0, finished.err
    text = (tmp_path / "constraints" / "cu13.txt").read_text()
    assert "dep==1.0" in text and "big==1.0" in text


def test_more_requirement_lines_than_the_limit_is_a_clear_error(tmp_path):
    index = ServedIndex()
    index.add("big", "1.0", ["dep"] * 20_001, core_metadata=True)
    finished = served_project(tmp_path, index, "big\n", timeout=60)
    one_clear_error(finished, "big-1.0-py3-none-any.whl", "20,001 Requires-Dist lines", "20,000 lines allowed")


def test_a_fan_out_to_3000_projects_stays_within_the_memory_bound(tmp_path):
    """resolvelib keeps a copy of its state per pinned project: 3,000 projects took 725 MB."""
    index = ServedIndex()
    index.add("big", "1.0", [f"tiny{n}" for n in range(3000)], core_metadata=True)
    for n in range(3000):
        index.add(f"tiny{n}", "1.0", core_metadata=True)
    finished = served_project(tmp_path, index, "big\n")
    assert finished.code == 0, finished.err
    assert (tmp_path / "constraints" / "cu13.txt").read_text().count("==1.0\n") == 3001
    assert finished.peak_rss_mb < PEAK_RSS_MB, finished.peak_rss_mb


def test_a_fan_out_too_wide_for_backtracking_is_a_clear_error(tmp_path):
    """1,200 projects, and a conflict only backtracking settles (tiny0 2.0 needs an older `pinned`)."""
    index = ServedIndex()
    index.add("big", "1.0", [f"tiny{n}" for n in range(1200)] + ["pinned>=2"], core_metadata=True)
    index.add("tiny0", "2.0", ["pinned<2"], core_metadata=True)
    for n in range(1200):
        index.add(f"tiny{n}", "1.0", core_metadata=True)
    index.add("pinned", "2.0", core_metadata=True)
    finished = served_project(tmp_path, index, "big\n")
    assert finished.code == 4, finished.err
    assert "more than 1,000 projects" in finished.err and "Traceback" not in finished.err
    assert finished.peak_rss_mb < PEAK_RSS_MB, finished.peak_rss_mb
    assert not (tmp_path / "constraints").exists()


# -- local reads ------------------------------------------------------------------------------------------


def one_input_error(finished: Finished, code: int, *words: str) -> None:
    assert finished.code == code, finished.err
    assert "Traceback" not in finished.err and "MemoryError" not in finished.err
    for word in words:
        assert word in finished.err, finished.err
    assert finished.peak_rss_mb < PEAK_RSS_MB, finished.peak_rss_mb


def test_requirements_files_including_each_other_3000_deep_are_a_clear_error(tmp_path):
    for number in range(3000):
        (tmp_path / f"r{number}.txt").write_text(f"-r r{number + 1}.txt\n")
    (tmp_path / "r3000.txt").write_text("numpy\n")
    finished = run(["compile", *ONE_TARGET, "--offline"], project(tmp_path, "-r r0.txt\n"))
    one_input_error(finished, 2, "r98.txt:1: '-r r99.txt': files include each other more than 100 deep")


@pytest.mark.parametrize("command", ["compile", "check"])
def test_a_requirements_line_naming_a_device_is_a_clear_error(tmp_path, command):
    """`-r /dev/zero` in a committed requirements file, met by an offline `check` of its constraints too."""
    index = ServedIndex()
    index.add("numpy", "2.0", core_metadata=True)
    (tmp_path / "requirements.txt").write_text("numpy\n")
    with IndexServer(index) as server:
        (tmp_path / "pyproject.toml").write_text(
            f'[tool.cuda-constraints]\nrequirements = ["requirements.txt"]\ncuda = [13]\nindex-url = "{server.url}/simple"\n'
            'platforms = ["manylinux_2_28_x86_64"]\n'
        )
        assert run(["compile"], tmp_path).code == 0
    (tmp_path / "requirements.txt").write_text("-r /dev/zero\n")
    arguments = ["compile", "--offline"] if command == "compile" else ["check"]
    finished = run(arguments, tmp_path)
    one_input_error(finished, 2, "/dev/zero", "not a regular file")


def test_requirements_larger_than_the_limit_are_a_clear_error(tmp_path):
    (tmp_path / "more.txt").write_text("numpy\n" * 200_000)
    finished = run(["compile", *ONE_TARGET, "--offline"], project(tmp_path, "-r more.txt\n"))
    one_input_error(finished, 2, "more.txt", "larger than 1 MiB")


def test_a_program_that_prints_without_end_is_read_no_further_than_the_limit(tmp_path):
    """A fake `nvcc` printing 1.5 GB: detect reads 16 MiB of it and says so."""
    bin_directory = tmp_path / "bin"
    bin_directory.mkdir()
    nvcc = bin_directory / "nvcc"
    nvcc.write_text("#!/bin/sh\nexec head -c 1500000000 /dev/zero\n")
    nvcc.chmod(0o755)
    environment = {"PATH": f"{bin_directory}:/usr/bin:/bin", "CUDA_CONSTRAINTS_CUDA_MAJOR": "", "CUDA_VERSION": "", "LD_LIBRARY_PATH": ""}
    finished = run(["detect", "--json"], tmp_path, **environment)
    assert "Traceback" not in finished.err and "MemoryError" not in finished.err
    probes = {probe["name"]: probe for probe in json.loads(finished.out)["probes"]}
    assert "printed more than 16 MiB" in probes["nvcc"]["detail"], probes["nvcc"]
    assert finished.peak_rss_mb < PEAK_RSS_MB, finished.peak_rss_mb


# -- signals ----------------------------------------------------------------------------------------------


class Slow(ServedIndex):
    """The KV index, answering each request after a pause: a cold compile that takes many seconds."""


def slow_server(delay: float) -> IndexServer:
    index = Slow()
    index.releases.update(kv_connectors_index().releases)
    for number in range(40):  # more to fetch, so the run is mid-way when the signal comes
        index.add("numpy", f"1.{number}.0", tags=BOTH_ARCHES)
    server = IndexServer(index)
    respond = server._respond

    def slowly(*arguments):
        time.sleep(delay)
        return respond(*arguments)

    server._respond = slowly  # type: ignore[method-assign]
    return server


def kv_project(root: Path, url: str) -> Path:
    (root / "pyproject.toml").write_text(f'[tool.cuda-constraints]\nrequirements = ["requirements.txt"]\nindex-url = "{url}/simple"\n')
    (root / "requirements.txt").write_text(KV_REQUIREMENTS)
    return root


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_within_a_second_with_one_line(tmp_path, signum, code):
    with slow_server(0.3) as server:
        root = kv_project(tmp_path, server.url)
        started = time.monotonic()
        process, logs = start(["compile", "--no-cache"], root)
        while len(server.index.requests) < 12:
            assert process.poll() is None, (logs / "err").read_text()
            time.sleep(0.05)
        process.send_signal(signum)
        signalled, asked = time.monotonic(), len(server.index.requests)
        finished = finish(process, logs, started, timeout=30)
        stopped = time.monotonic() - signalled
        time.sleep(0.5)
        later = len(server.index.requests) - asked
    assert finished.code == code
    assert stopped < 1.5, stopped
    lines = finished.err.strip().splitlines()
    assert lines[-1] == f"interrupted ({signal.Signals(signum).name}); nothing was written", finished.err
    assert "Traceback" not in finished.err
    assert later <= 20  # what was in flight, not the rest of the resolution
    assert not (root / "constraints" / "cu12.txt").exists()


def test_ctrl_c_in_a_terminal_with_a_page_worker_running_is_one_line_and_stops_the_worker(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group, the worker that parsed a large page included:
    the tool reports it once, and the worker does not outlive it."""
    files = [file_entry(f"big-1.{n}.0-cp312-cp312-manylinux_2_17_{arch}.whl", size=1000, sha256=f"{n:064x}")
             for n in range(2500) for arch in ("x86_64", "aarch64")]
    with HostileServer() as server:
        server.page("big", files)
        server.answers["/packages/big-1.2499.0-cp312-cp312-manylinux_2_17_x86_64.whl"] = lambda c: c.stream(200, endless(b" ", 0.05))
        root = project(tmp_path, "big\n")
        logs = tmp_path / "logs"
        logs.mkdir()
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "resolver", "compile", *ONE_TARGET, "--index-url", f"{server.url}/simple"], cwd=root,
            stdout=(logs / "out").open("wb"), stderr=(logs / "err").open("wb"), start_new_session=True,
            env={**os.environ, "NETRC": "/nonexistent", "PYTHONPATH": str(Path(__file__).parents[1])},
        )
        while not any(path.startswith("/packages/") for _, path in server.requests):  # the page was parsed
            assert process.poll() is None and time.monotonic() - started < 30, (logs / "err").read_text()
            time.sleep(0.05)
        workers = [int(pid) for task in Path(f"/proc/{process.pid}/task").iterdir() for pid in (task / "children").read_text().split()]
        assert workers, "no page worker was started"
        os.killpg(process.pid, signal.SIGINT)
        finished = finish(process, logs, started, timeout=30)
    assert finished.code == 130, finished.err
    assert "Traceback" not in finished.err
    assert finished.err.strip().splitlines()[-1] == "interrupted (SIGINT); nothing was written", finished.err
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2] for pid in workers):
        assert time.monotonic() < deadline, "the page worker outlived the tool"
        time.sleep(0.05)


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.05, 0.1, 0.2, 0.35])
def test_a_ctrl_c_while_starting_is_one_line_too(tmp_path, delay):
    with slow_server(0.3) as server:
        root = kv_project(tmp_path, server.url)
        started = time.monotonic()
        process, logs = start(["compile", "--no-cache"], root)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        finished = finish(process, logs, started, timeout=30)
    if finished.code == -signal.SIGINT or "Fatal Python error: init_import_site" in finished.err:
        return  # so early that the interpreter itself was still starting: none of the tool's code had run
    if finished.err.startswith("Error processing line "):
        # Still the interpreter's start: `site` was running a .pth file's import line (an editable install's
        # finder), caught the interrupt (wrapped by Python 3.11 in a RuntimeError) and printed it itself.
        return
    assert "Traceback" not in finished.err
    assert finished.code == 130, finished.err
    assert finished.err.strip().splitlines()[-1] in ("interrupted (SIGINT); nothing was written", "interrupted (SIGINT)")


# A Ctrl-C while a class with a descriptor is being defined (a module imported on the way, at start or by a
# command's first use): Python 3.11 hands it on wrapped in a RuntimeError ("Error calling __set_name__").
INTERRUPTED_CLASS = """
import os, signal, sys

def defining_a_class(*args):
    class Descriptor:
        def __set_name__(self, owner, name):
            os.kill(os.getpid(), signal.SIGINT)
    class Defined:
        a = Descriptor()
    return 0

import resolver.cli.main, resolver.cli.parser
if sys.argv[1] == "start":
    resolver.cli.main.main = defining_a_class
else:
    resolver.cli.parser.run_check = defining_a_class
sys.argv[1:] = ["check"]
from resolver.__main__ import run
run()
"""


@pytest.mark.parametrize("where", ["start", "command"])
def test_a_ctrl_c_while_a_module_defines_a_class_is_one_line(tmp_path, where):
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_CLASS, where], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}, check=False)
    assert done.returncode == 130 and done.stderr == "interrupted (SIGINT)\n", done.stderr


# -- all or nothing ---------------------------------------------------------------------------------------

# Runs compile in a child that kills itself (SIGKILL: no cleanup at all) or interrupts itself (SIGINT) at a
# chosen step of replacing the files.
CHILD = """
import os, signal, sys
from pathlib import Path
from resolver.files import output_dir
from resolver.cli.main import main
from tests.synthetic import served, kv_connectors_index, BOTH_ARCHES

step, signum = sys.argv[1], int(sys.argv[2])
real_replace, real_write = os.replace, output_dir._write_durably

def replace(source, destination):
    real_replace(source, destination)
    if step == "between-renames" and Path(destination).name == "cu12.txt":
        os.kill(os.getpid(), signum)

def write(path, content, mode):
    real_write(path, content, mode)
    if step == "staging" and path.name == "cu12.txt":
        os.kill(os.getpid(), signum)

output_dir.os = type(os)("os_with_hooks")
output_dir.os.__dict__.update(os.__dict__)
output_dir.os.replace = replace
output_dir._write_durably = write
index = kv_connectors_index()
index.add("numpy", "2.3.0", tags=BOTH_ARCHES)
with served(index):
    sys.exit(main(["compile", "-U", "--no-cache"]))
"""


@pytest.fixture
def compiled(tmp_path, inside):
    from resolver.cli.main import main

    from .synthetic import served, write_project

    root = inside(write_project(tmp_path))
    with served(kv_connectors_index()):
        assert main(["compile", "-q", "--no-cache"]) == 0
    return root


def child(root: Path, step: str, signum: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, step, str(signum)], cwd=root, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "NETRC": "/nonexistent"}, check=False,
    )


def files(root: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in (root / "constraints").glob("cu*.txt")}


def leftovers(root: Path) -> list[str]:
    state = root / "constraints" / ".cuda-constraints"
    return sorted(p.relative_to(root).as_posix() for p in state.rglob("*") if p.name not in ("lock", ".gitignore"))


def test_the_helpers_see_leftovers(tmp_path):
    (tmp_path / "constraints" / ".cuda-constraints" / "new").mkdir(parents=True)
    assert leftovers(tmp_path) == ["constraints/.cuda-constraints/new"]


@pytest.mark.parametrize(("step", "expected"), [("staging", "old"), ("between-renames", "new")])
def test_after_sigkill_the_next_run_sees_all_old_or_all_new_files(compiled, step, expected, capsys):
    from resolver.cli.main import main

    old = files(compiled)
    killed = child(compiled, step, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert leftovers(compiled)  # the interrupted replacement is on disk (in a folder git ignores)
    assert "*" in (compiled / "constraints" / ".cuda-constraints" / ".gitignore").read_text().splitlines()
    after_kill, left = files(compiled), leftovers(compiled)
    for command in (["check"], ["diff"], ["install", "--dry-run", "--cuda", "13"]):
        main(command)  # commands that read say so, and change nothing
        assert "a compile was interrupted while it replaced these files" in capsys.readouterr().err
        assert files(compiled) == after_kill and leftovers(compiled) == left
    assert main(["compile", "--offline", "--cache-dir", str(compiled / "empty")]) == 5  # the next compile finishes or undoes it first
    now = files(compiled)
    assert leftovers(compiled) == []
    if expected == "old":
        assert now == old
    else:
        assert all("numpy==2.3.0" in text for text in now.values()) and now != old
    capsys.readouterr()
    assert main(["check"]) == 0  # consistent, and it says so truthfully


def test_a_signal_while_files_move_is_held_until_all_moved_and_the_message_says_so(compiled):
    interrupted = child(compiled, "between-renames", signal.SIGINT)
    assert interrupted.returncode == 130
    assert interrupted.stderr.strip().splitlines()[-1] == (
        "interrupted (SIGINT); constraints/cu12.txt, constraints/cu13.txt were written"
    )
    assert all("numpy==2.3.0" in text for text in files(compiled).values())
    assert leftovers(compiled) == []


def test_a_signal_while_staging_writes_nothing(compiled):
    old = files(compiled)
    interrupted = child(compiled, "staging", signal.SIGINT)
    assert interrupted.returncode == 130, interrupted.stderr
    assert interrupted.stderr.strip().splitlines()[-1] == "interrupted (SIGINT); nothing was written"
    assert files(compiled) == old and leftovers(compiled) == []


# -- modes and the lock -----------------------------------------------------------------------------------


def test_files_get_the_mode_an_ordinary_write_gives(compiled):
    from resolver.cli.main import main

    from .synthetic import served

    cu12, cu13 = compiled / "constraints" / "cu12.txt", compiled / "constraints" / "cu13.txt"
    cu12.chmod(0o640)
    cu13.unlink()
    previous = os.umask(0o022)
    try:
        index = kv_connectors_index()
        index.add("numpy", "2.3.0", tags=BOTH_ARCHES)
        with served(index):
            assert main(["compile", "-q", "-U", "--no-cache"]) == 0
    finally:
        os.umask(previous)
    assert "numpy==2.3.0" in cu12.read_text()
    assert (cu12.stat().st_mode & 0o777, cu13.stat().st_mode & 0o777) == (0o640, 0o644)
    lock = compiled / "constraints" / ".cuda-constraints" / "lock"
    assert lock.stat().st_mode & 0o777 == 0o600


def test_no_lock_file_outside_the_output_directory(tmp_path, inside):
    import tempfile

    from resolver.cli.main import main

    from .synthetic import served, write_project

    before = set(Path(tempfile.gettempdir()).iterdir())
    for number in range(3):
        (tmp_path / str(number)).mkdir()
        inside(write_project(tmp_path / str(number)))
        with served(kv_connectors_index()):
            assert main(["compile", "-q", "--no-cache"]) == 0
    assert set(Path(tempfile.gettempdir()).iterdir()) - before == set()


@pytest.mark.parametrize("planted", ["symlink", "directory"])
def test_a_planted_lock_is_a_clear_error_and_followed_nowhere(compiled, planted, tmp_path_factory, capsys):
    from resolver.cli.main import main

    from .synthetic import served

    target = tmp_path_factory.mktemp("elsewhere") / "precious"
    target.write_text("keep me")
    lock = compiled / "constraints" / ".cuda-constraints" / "lock"
    lock.unlink()
    if planted == "symlink":
        lock.symlink_to(target)
    else:
        lock.mkdir()
    with served(kv_connectors_index()):
        assert main(["compile", "-q", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "lock" in err and "remove it" in err and "Traceback" not in err
    assert target.read_text() == "keep me"


HOLD = """
import fcntl, os, sys, time
descriptor = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(descriptor, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold_lock(root: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root / "constraints" / ".cuda-constraints" / "lock"), str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_a_second_compile_waits_for_the_first(compiled, monkeypatch):
    from resolver.cli.main import main

    from .synthetic import served

    monkeypatch.setenv("CUDA_CONSTRAINTS_LOCK_WAIT", "30")
    holder = hold_lock(compiled, 1.5)
    started = time.monotonic()
    index = kv_connectors_index()
    index.add("numpy", "2.3.0", tags=BOTH_ARCHES)
    with served(index):
        assert main(["compile", "-q", "-U", "--no-cache"]) == 0
    assert time.monotonic() - started >= 1.3  # it waited for the other run
    assert holder.wait(5) == 0
    assert "numpy==2.3.0" in (compiled / "constraints" / "cu13.txt").read_text()


def test_a_lock_held_too_long_is_a_clear_error_and_nothing_changes(compiled, monkeypatch, capsys):
    from resolver.cli.main import main

    from .conftest import snapshot
    from .synthetic import served

    before = snapshot(compiled / "constraints")
    monkeypatch.setenv("CUDA_CONSTRAINTS_LOCK_WAIT", "0.5")
    holder = hold_lock(compiled, 5)
    started = time.monotonic()
    try:
        with served(kv_connectors_index()):
            assert main(["compile", "-q", "-U", "--no-cache"]) == 2
    finally:
        holder.kill()
    assert 0.5 <= time.monotonic() - started < 4
    err = capsys.readouterr().err
    assert "error: constraints is locked by another cuda-constraints run" in err and "Traceback" not in err
    assert snapshot(compiled / "constraints") == before


def test_a_failed_first_compile_leaves_no_directory(tmp_path, inside, capsys):
    from resolver.cli.main import main

    from .synthetic import served, write_project

    root = inside(write_project(tmp_path, requirements={"kv.txt": "no-such-project\n"}))
    with served(kv_connectors_index()):
        assert main(["compile", "-q", "--no-cache", "--retries", "0"]) == 2
    assert not (root / "constraints").exists()


def test_stats_and_json_answers_are_json(tmp_path):
    """The figures file of a run under the memory limit is valid JSON (no partial write)."""
    with IndexServer(ServedIndex()) as server:
        server.index.releases.update(kv_connectors_index().releases)
        root = kv_project(tmp_path, server.url)
        finished = run(["compile", "-q", "--no-cache", "--stats-json", str(root / "stats.json")], root)
    assert finished.code == 0, finished.err
    assert json.loads((root / "stats.json").read_text())["requests"] > 0
    assert finished.peak_rss_mb < PEAK_RSS_MB


def test_a_finished_run_ends_with_all_it_printed(tmp_path):
    """What a finished run printed is all there when the process has ended (a pipe, a CI log)."""
    with IndexServer(ServedIndex()) as server:
        server.index.releases.update(kv_connectors_index().releases)
        root = kv_project(tmp_path, server.url)
        compiled = run(["compile", "--no-cache"], root, PYTHONUNBUFFERED="")  # as a CI log or a pipe has it
        checked = run(["check"], root, PYTHONUNBUFFERED="")
    assert compiled.code == 0, compiled.err
    assert "CUDA 12: constraints/cu12.txt created" in compiled.out
    assert checked.code == 0, checked.err
    assert checked.out.splitlines()[-1].startswith("constraints/cu13.txt: up to date (CUDA 13, "), checked.out
    # A reader that went away before the output was flushed (`| head -0`): no traceback from the exit.
    process = subprocess.Popen(
        [sys.executable, "-m", "resolver", "check"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "", "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=60)
    assert b"Traceback" not in err, err.decode()


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(), reason="runs a process as another user")
def test_another_user_cannot_open_the_lock_so_cannot_hold_it():
    import pwd
    import shutil
    import tempfile

    from resolver.files.output_dir import OutputDirectory

    nobody = pwd.getpwnam("nobody")
    shared = Path(tempfile.mkdtemp())
    try:
        shared.chmod(0o755)  # a checkout other users may read, as on a shared CI machine
        with OutputDirectory(shared / "constraints").locked():
            pass
        lock = shared / "constraints" / ".cuda-constraints" / "lock"
        holding = "import fcntl, os, sys; fcntl.flock(os.open(sys.argv[1], os.O_RDONLY), fcntl.LOCK_SH)"
        attempt = subprocess.run(
            ["/usr/bin/python3", "-c", holding, str(lock)], capture_output=True, text=True, check=False,
            preexec_fn=lambda: (os.setgid(nobody.pw_gid), os.setuid(nobody.pw_uid)),
        )
        assert (shared / "constraints" / ".cuda-constraints").stat().st_mode & 0o005  # the folder is readable
        assert attempt.returncode != 0 and f"Permission denied: '{lock}'" in attempt.stderr
    finally:
        shutil.rmtree(shared)
