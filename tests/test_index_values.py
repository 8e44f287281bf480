"""Nothing an index serves may add a line, an option or a comment to a written file or to a terminal.

Each field an index controls carries a payload that, copied as it is, would add a pin, an index option and
a GitHub Actions command line (`::error::`). The index is a real HTTP server on 127.0.0.1 and the tool a
real subprocess (`python -m resolver`); every field gets its own case.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.version import Version

from resolver.errors import UnsafeValue
from resolver.files.constraints import ConstraintsDocument, PinLine, parse, render
from resolver.index.pages import PageError, Row, parse_simple

from .index_server import IndexServer, ServedIndex
from .synthetic import BOTH_ARCHES

EVIL_HASH = "a" * 64
# What a hostile value tries to add: a pin, an index, a CI log command.
PAYLOAD = f"\nevilpkg==6.6.6 --hash=sha256:{EVIL_HASH}\n--extra-index-url http://evil.test/simple\n::error::forged\n#"
FORGED = ("evilpkg", "--extra-index-url", "::error::")


class HostileIndex(ServedIndex):
    """A served index whose JSON page of `goodpkg` passes through `edit_page`, and each of its entries through `edit`."""

    def __init__(self, edit: Callable[[dict], None] = lambda entry: None, edit_page: Callable[[dict], None] = lambda page: None,
                 **options) -> None:
        super().__init__(**options)
        self.edit, self.edit_page = edit, edit_page

    def project_page(self, name):
        page = super().project_page(name)
        if name == "goodpkg":
            self.edit_page(page)
        return page

    def _file_entry(self, release, filename):
        entry = super()._file_entry(release, filename)
        if filename.startswith("goodpkg"):
            self.edit(entry)
        return entry


@dataclass
class Case:
    requirements: str = "goodpkg\n"
    edit: Callable[[dict], None] = lambda entry: None
    edit_page: Callable[[dict], None] = lambda page: None
    release: dict = None  # type: ignore[assignment]  # options of goodpkg 1.0's SyntheticRelease
    html_only: bool = False


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resolver", *args], cwd=root, capture_output=True, text=True, check=False,
        env={**os.environ, "CUDA_CONSTRAINTS_CACHE_DIR": str(root / ".cache"), "NETRC": "/nonexistent"},
    )


def compile_against(root: Path, case: Case, *extra: str) -> tuple[subprocess.CompletedProcess[str], list[subprocess.CompletedProcess[str]]]:
    """Compile (with hashes, verbose) and inspect goodpkg against the hostile index; both outputs."""
    index = HostileIndex(case.edit, case.edit_page, html_only=case.html_only)
    options = {"requires": ("needed",), "tags": BOTH_ARCHES, "core_metadata": True, **(case.release or {})}
    index.add("goodpkg", "1.0", **options)
    index.add("needed", "1.0", tags=BOTH_ARCHES)
    (root / "pyproject.toml").write_text(
        '[tool.cuda-constraints]\nrequirements = ["requirements.txt"]\ncuda = [13]\nplatforms = ["manylinux_2_28_x86_64"]\n'
    )
    (root / "requirements.txt").write_text(case.requirements)
    with IndexServer(index) as server:
        compiled = run(root, "compile", "-v", "--generate-hashes", "--index-url", server.simple_url, *extra)
        inspected = [run(root, "inspect", "goodpkg==1.0", "--index-url", server.simple_url, *flags) for flags in ((), ("--json",))]
    return compiled, inspected


def assert_harmless(root: Path, *outputs: subprocess.CompletedProcess[str], pins: frozenset[str] = frozenset({"goodpkg", "needed"})) -> None:
    """No output line starts with what the payload tries to add, none holds a control character, and any
    file written reads back as the tool's own, with goodpkg's and needed's pins alone."""
    for completed in outputs:
        assert "Traceback" not in completed.stderr
        for line in (completed.stdout + completed.stderr).splitlines():
            assert not line.lstrip().startswith(FORGED), line
            assert not any(ord(c) < 32 and c != "\t" for c in line), line
    written = root / "constraints" / "cu13.txt"
    if written.exists():
        text = written.read_text()
        assert "evil" not in text and "::error::" not in text
        assert {pin.name for pin in parse(text, str(written)).pins} <= pins


def _set_hash(entry: dict) -> None:
    entry["hashes"]["sha256"] += PAYLOAD


def _set_metadata_hash(entry: dict) -> None:
    entry["core-metadata"] = {"sha256": entry["core-metadata"]["sha256"] + PAYLOAD}


def test_a_sha256_with_lines_after_it_makes_the_page_unusable_and_writes_nothing(tmp_path):
    """The injection as reported: a PEP 691 sha256 with a pin and an index after it, under --generate-hashes."""
    compiled, _ = compile_against(tmp_path, Case(edit=_set_hash))
    assert compiled.returncode == 5, compiled.stderr
    assert "/simple/goodpkg/" in compiled.stderr and "goodpkg-1.0-" in compiled.stderr and "64 lowercase hex digits" in compiled.stderr
    assert not (tmp_path / "constraints" / "cu13.txt").exists()
    assert_harmless(tmp_path, compiled)


@pytest.mark.parametrize(
    ("field", "edit"),
    [
        ("sha256 of a file", lambda e: e["hashes"].update(sha256=EVIL_HASH + " --extra-index-url=http://evil.test")),
        ("sha256 in upper case", lambda e: e["hashes"].update(sha256=e["hashes"]["sha256"].upper())),
        ("sha256 too short", lambda e: e["hashes"].update(sha256=e["hashes"]["sha256"][:63])),
        ("sha256 not a string", lambda e: e["hashes"].update(sha256=[EVIL_HASH])),
        ("sha256 of the metadata file", _set_metadata_hash),
    ],
)
def test_a_digest_of_any_other_shape_makes_the_page_unusable(tmp_path, field, edit):
    compiled, _ = compile_against(tmp_path, Case(edit=edit))
    assert compiled.returncode == 5 and "64 lowercase hex digits" in compiled.stderr, (field, compiled.stderr)
    assert not (tmp_path / "constraints").exists()
    assert_harmless(tmp_path, compiled)


def test_a_digest_in_an_html_page_link_is_checked_too(tmp_path):
    index_page = HostileIndex(html_only=True)
    index_page.add("goodpkg", "1.0", tags=BOTH_ARCHES)
    page = index_page.simple_page("goodpkg").replace("#sha256=", "#sha256=0--extra-index-url=http://evil.test&x=", 1)
    with pytest.raises(PageError, match=r"goodpkg-1\.0-.*64 lowercase hex digits"):
        parse_simple(page.encode(), "text/html", "goodpkg")  # type: ignore[arg-type]


def _yank(entry: dict) -> None:
    entry["yanked"] = "broken" + PAYLOAD


@pytest.mark.parametrize(
    ("field", "case"),
    [
        ("upload time", Case(edit=lambda e: e.update({"upload-time": "2026-01-01T00:00:00Z" + PAYLOAD}))),
        ("yank reason", Case(requirements="goodpkg==1.0\n", edit=_yank)),
        ("requires-python of a file", Case(edit=lambda e: e.update({"requires-python": ">=3" + PAYLOAD}))),
        ("file URL", Case(edit=lambda e: e.update(url=e["url"] + PAYLOAD))),
        ("name in the page", Case(edit_page=lambda page: page.update(name="goodpkg" + PAYLOAD))),
        ("name in the metadata", Case(release={"claimed_name": "goodpkg\n ::error::forged"})),
        ("version in the metadata", Case(release={"claimed_version": "1.0\n ::error::forged"})),
        ("extra in the metadata", Case(release={"extras": {"cu13\n ::error::forged\n --extra-index-url x": ()}})),
        ("marker in the metadata", Case(release={"requires": ('needed; python_version >= "3\n ::error::forged"',)})),
        ("requirement in the metadata", Case(release={"requires": ("needed\n --extra-index-url http://evil.test/simple",)})),
        ("line separator in the metadata", Case(release={"requires": ('needed; python_version >= "3\u2028::error::forged"',)})),
    ],
)
def test_no_field_an_index_serves_adds_a_line_to_the_file_or_the_terminal(tmp_path, field, case):
    compiled, inspected = compile_against(tmp_path, case)
    assert compiled.returncode in (0, 2, 4, 5), (field, compiled.stderr)
    assert_harmless(tmp_path, compiled, *inspected)


def test_a_yank_reason_is_shown_escaped_on_one_line(tmp_path):
    compiled, (inspected, as_json) = compile_against(tmp_path, Case(requirements="goodpkg==1.0\n", edit=_yank))
    assert compiled.returncode == 0, compiled.stderr
    warning = next(line for line in compiled.stderr.splitlines() if "is yanked" in line)
    assert "goodpkg 1.0 is yanked (reason: broken evilpkg==6.6.6" in warning
    assert "(yanked: broken evilpkg==6.6.6" in inspected.stdout
    assert json.loads(as_json.stdout)["yank_reason"].startswith("broken evilpkg==6.6.6 --hash")


def test_an_upload_time_that_is_not_a_time_is_dropped():
    entry = {"filename": "goodpkg-1.0-py3-none-any.whl", "url": "goodpkg-1.0-py3-none-any.whl", "hashes": {},
             "upload-time": "2026-01-01T00:00:00Z\n# forged"}
    page = parse_simple(json.dumps({"name": "goodpkg", "files": [entry]}).encode(), "application/vnd.pypi.simple.v1+json", "goodpkg")  # type: ignore[arg-type]
    assert Row(*json.loads(page.releases["1.0"])[0]).uploaded is None
    entry["upload-time"] = "2026-01-01T00:00:00.123456Z"
    page = parse_simple(json.dumps({"name": "goodpkg", "files": [entry]}).encode(), "application/vnd.pypi.simple.v1+json", "goodpkg")  # type: ignore[arg-type]
    assert Row(*json.loads(page.releases["1.0"])[0]).uploaded == "2026-01-01T00:00:00.123456Z"


def test_a_file_whose_requires_python_holds_a_line_break_is_left_out():
    entries = [{"filename": f"goodpkg-{version}-py3-none-any.whl", "url": f"goodpkg-{version}-py3-none-any.whl", "hashes": {},
                "requires-python": requires_python} for version, requires_python in (("1.0", ">=3.8"), ("2.0", ">=3\n::error::x"))]
    page = parse_simple(json.dumps({"name": "goodpkg", "files": entries}).encode(), "application/vnd.pypi.simple.v1+json", "goodpkg")  # type: ignore[arg-type]
    assert list(page.releases) == ["1.0"]
    html = '<a href="goodpkg-2.0-py3-none-any.whl" data-requires-python="&gt;=3&#10;::error::x">x</a>'
    assert parse_simple(html.encode(), "text/html", "goodpkg").releases == {}  # type: ignore[arg-type]


@pytest.mark.parametrize("digest", [EVIL_HASH + "\nevilpkg==6.6.6", EVIL_HASH.upper(), "sha256"])
def test_the_writer_refuses_a_digest_that_was_not_checked(digest):
    """Whatever reaches the writer (an old cache entry, a future code path), it writes no line it did not make."""
    document = ConstraintsDocument(13, "cuda-constraints compile", ("r.txt",), "0" * 16, "cp312 manylinux_2_28 x86_64",
                                   pins=(PinLine("goodpkg", Version("1.0"), hashes=(digest,)),))
    with pytest.raises(UnsafeValue, match="refusing to write"):
        render(document)


def test_the_writer_refuses_a_line_break_in_any_value():
    document = ConstraintsDocument(13, "cuda-constraints compile", ("r.txt\n--extra-index-url http://evil.test",), "0" * 16, "cp312")
    with pytest.raises(UnsafeValue, match="would add a line"):
        render(document)


def test_a_sha256_checked_on_the_page_is_what_the_file_carries(tmp_path):
    compiled, _ = compile_against(tmp_path, Case())
    assert compiled.returncode == 0, compiled.stderr
    document = parse((tmp_path / "constraints" / "cu13.txt").read_text(), "cu13.txt")
    index = HostileIndex()
    release = index.add("goodpkg", "1.0", ("needed",), tags=BOTH_ARCHES, core_metadata=True)
    expected = hashlib.sha256(release.wheel_bytes(BOTH_ARCHES[0])).hexdigest()
    assert next(pin for pin in document.pins if pin.name == "goodpkg").hashes == (expected,)


def test_a_file_name_inside_a_wheel_is_shown_on_one_line(tmp_path):
    """A member name of nixl-cu13's wheel that looks like a per-torch build is warned about, escaped."""
    member = ("nixl_ep_cu13/\n::error::forged_torch212.so", b"\x7fELF")
    index = HostileIndex()
    index.add("nixl-cu13", "1.0", tags=BOTH_ARCHES, members=(member,))
    (tmp_path / "pyproject.toml").write_text('[tool.cuda-constraints]\ncuda = [13]\nplatforms = ["manylinux_2_28_x86_64"]\n')
    (tmp_path / "requirements.txt").write_text("nixl-cu13\n")
    with IndexServer(index) as server:
        compiled = run(tmp_path, "compile", "requirements.txt", "--index-url", server.simple_url)
    assert compiled.returncode == 0, compiled.stderr
    assert "nixl_ep_cu13/\\x0a::error::forged_torch212.so looks like a build for one torch version" in compiled.stderr
    assert_harmless(tmp_path, compiled, pins=frozenset({"nixl-cu13"}))
