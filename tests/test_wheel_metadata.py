"""Reading METADATA from byte ranges of a wheel, as the client does, without HTTP."""

from __future__ import annotations

import io
import zipfile

import pytest

from resolver.index.metadata import parse_core_metadata
from resolver.index.wheel import (
    CentralDirectory,
    ZipReadError,
    entries_from_tail,
    extract_member,
    find_metadata_entry,
    locate_central_directory,
    parse_central_entries,
)

from .synthetic import SyntheticRelease


def read_like_the_client(content: bytes, project: str, tail_size: int) -> bytes:
    tail_start = max(0, len(content) - tail_size)
    tail = content[tail_start:]
    location = locate_central_directory(tail, tail_start)
    assert isinstance(location, CentralDirectory)
    if location.offset >= tail_start:
        start = location.offset - tail_start
        entries = parse_central_entries(tail[start : start + location.size])
    else:
        entries = entries_from_tail(tail, tail_start, location)
    entry = find_metadata_entry(entries, project)
    assert entry is not None
    span = entry.data_span()
    return extract_member(content[span.start : span.end], entry)


@pytest.mark.parametrize("tail_size", [65536, 8192])
def test_metadata_is_found_from_the_tail_of_a_large_wheel(tail_size):
    release = SyntheticRelease("big-wheel", "2.0", ("numpy>=2",), padding=3000)
    content = release.wheel_bytes("py3-none-any")
    assert len(content) > 4 * tail_size
    assert read_like_the_client(content, "big-wheel", tail_size).decode() == release.metadata_text()


def test_stored_members_and_other_dist_info_directories():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("vendored/other-1.0.dist-info/METADATA", "Name: other\nVersion: 1.0\n")
        archive.writestr("other-1.0.dist-info/METADATA", "Name: other\nVersion: 1.0\n")
        archive.writestr("nixl-1.5.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: nixl\nVersion: 1.5.1\n")
    content = buffer.getvalue()
    assert read_like_the_client(content, "nixl", 65536).startswith(b"Metadata-Version: 2.1\nName: nixl")


def test_not_a_zip():
    with pytest.raises(ZipReadError):
        locate_central_directory(b"<html>not a wheel</html>" * 10, 0)


def test_zip64_end_record():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for number in range(65536):
            archive.writestr(f"d/{number}", b"")
        archive.writestr("huge-1.0.dist-info/METADATA", "Name: huge\nVersion: 1.0\nRequires-Dist: numpy\n")
    content = buffer.getvalue()
    tail_start = len(content) - 4096
    location = locate_central_directory(content[tail_start:], tail_start)
    assert isinstance(location, CentralDirectory)
    entries = entries_from_tail(content[tail_start:], tail_start, location)
    entry = find_metadata_entry(entries, "huge")
    span = entry.data_span()
    assert parse_core_metadata(extract_member(content[span.start : span.end], entry)).requires_dist == ("numpy",)
