"""Reading `METADATA` out of a wheel from a few byte ranges, or out of a whole wheel or sdist.

Pure functions over bytes: the client decides which ranges to fetch. A wheel is a zip file, so the
reader needs the end-of-central-directory record (at the end of the file), the central-directory entry of
`*.dist-info/METADATA` (wheels write their dist-info last, so it is usually in the same tail), and the
member's local header and data (usually just before the central directory).
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

from packaging.utils import canonicalize_name

EOCD = b"PK\x05\x06"
ZIP64_LOCATOR = b"PK\x06\x07"
ZIP64_EOCD = b"PK\x06\x06"
CENTRAL_ENTRY = b"PK\x01\x02"
LOCAL_HEADER = b"PK\x03\x04"
_EOCD_SIZE = 22
_CENTRAL_ENTRY_SIZE = 46
_LOCAL_HEADER_SIZE = 30
# Room for a local header's name and extra field, which may differ from the central copy.
LOCAL_HEADER_SLACK = 1024


class ZipReadError(Exception):
    """The bytes are not the zip structure expected; the caller falls back to another way."""


@dataclass(frozen=True)
class Span:
    """A byte range [start, end) of a file."""

    start: int
    end: int


@dataclass(frozen=True)
class CentralDirectory:
    offset: int
    size: int


@dataclass(frozen=True)
class ZipEntry:
    name: str
    method: int
    compressed_size: int
    local_header_offset: int
    uncompressed_size: int = 0

    def data_span(self) -> Span:
        """Where the local header and data lie, with slack for the header's variable part."""
        start = self.local_header_offset
        end = start + _LOCAL_HEADER_SIZE + len(self.name.encode()) + self.compressed_size + LOCAL_HEADER_SLACK
        return Span(start, end)


def locate_central_directory(tail: bytes, tail_start: int) -> CentralDirectory | Span:
    """Find the central directory from the file's tail; a Span when a zip64 record must be read first."""
    position = tail.rfind(EOCD)
    while position >= 0 and len(tail) - position < _EOCD_SIZE:
        position = tail.rfind(EOCD, 0, position)
    if position < 0:
        raise ZipReadError("no end-of-central-directory record in the last bytes")
    _, _, _, _, _, size, offset, _ = struct.unpack("<IHHHHIIH", tail[position : position + _EOCD_SIZE])
    if size != 0xFFFFFFFF and offset != 0xFFFFFFFF:
        return CentralDirectory(offset, size)
    locator = position - 20
    if locator < 0 or tail[locator : locator + 4] != ZIP64_LOCATOR:
        raise ZipReadError("zip64 archive without a zip64 locator")
    record_offset = struct.unpack("<Q", tail[locator + 8 : locator + 16])[0]
    if record_offset >= tail_start:
        return parse_zip64_record(tail[record_offset - tail_start :])
    return Span(record_offset, record_offset + 56)


def parse_zip64_record(record: bytes) -> CentralDirectory:
    if record[:4] != ZIP64_EOCD or len(record) < 56:
        raise ZipReadError("bad zip64 end-of-central-directory record")
    size, offset = struct.unpack("<QQ", record[40:56])
    return CentralDirectory(offset, size)


def parse_central_entries(data: bytes) -> list[ZipEntry]:
    """Every entry of a complete central directory."""
    entries = []
    position = 0
    while position < len(data):
        entry, position = _parse_entry(data, position)
        entries.append(entry)
    return entries


def metadata_entry_in_tail(tail: bytes, tail_start: int, directory: CentralDirectory, project: str) -> ZipEntry | None:
    """The central-directory entry of `<dist-info>/METADATA`, found directly by its name in the tail.

    A torch wheel's directory has 12,000 entries; parsing one instead of all of them is what makes a
    range read cheap in CPU as well as in bytes. None when the name is not there (then parse them all).
    """
    directory_end = directory.offset + directory.size - tail_start
    lowest = max(0, directory.offset - tail_start)
    position = tail.rfind(b".dist-info/METADATA", lowest, directory_end)
    found = []
    while position >= 0:
        start = tail.rfind(CENTRAL_ENTRY, lowest, position)
        if start >= 0 and start + _CENTRAL_ENTRY_SIZE <= position:
            try:
                entry, _ = _parse_entry(tail, start)
            except ZipReadError:
                entry = None
            if entry is not None and entry.name.endswith(".dist-info/METADATA"):
                found.append(entry)
        position = tail.rfind(b".dist-info/METADATA", lowest, position)
    return find_metadata_entry(found, project)


def entries_from_tail(tail: bytes, tail_start: int, directory: CentralDirectory) -> list[ZipEntry]:
    """The last entries of a central directory that starts before the tail.

    Entries are variable-sized, so find the earliest signature from which entries parse exactly up to
    the directory's end; the dist-info entries are among them in any wheel written the usual way.
    """
    directory_end = directory.offset + directory.size - tail_start
    start = max(0, directory.offset - tail_start)
    position = tail.find(CENTRAL_ENTRY, start, directory_end)
    while position >= 0:
        try:
            entries, end = [], position
            while end < directory_end:
                entry, end = _parse_entry(tail, end)
                entries.append(entry)
            if end == directory_end:
                return entries
        except ZipReadError:
            pass
        position = tail.find(CENTRAL_ENTRY, position + 1, directory_end)
    return []


def _parse_entry(data: bytes, position: int) -> tuple[ZipEntry, int]:
    header = data[position : position + _CENTRAL_ENTRY_SIZE]
    if len(header) < _CENTRAL_ENTRY_SIZE or header[:4] != CENTRAL_ENTRY:
        raise ZipReadError("bad central directory entry")
    (_, _, _, flags, method, _, _, _, compressed, uncompressed, name_length, extra_length, comment_length, _, _, _,
     offset) = struct.unpack("<IHHHHHHIIIHHHHHII", header)
    name_start = position + _CENTRAL_ENTRY_SIZE
    extra_start = name_start + name_length
    end = extra_start + extra_length + comment_length
    if end > len(data):
        raise ZipReadError("central directory entry runs past the data")
    raw_name = data[name_start:extra_start]
    name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
    if 0xFFFFFFFF in (compressed, uncompressed, offset):
        uncompressed, compressed, offset = _zip64_sizes(data[extra_start : extra_start + extra_length], compressed, uncompressed, offset)
    return ZipEntry(name, method, compressed, offset, uncompressed), end


def _zip64_sizes(extra: bytes, compressed: int, uncompressed: int, offset: int) -> tuple[int, int, int]:
    position = 0
    while position + 4 <= len(extra):
        header_id, size = struct.unpack("<HH", extra[position : position + 4])
        if header_id == 1:
            values = extra[position + 4 : position + 4 + size]
            fields = [v[0] for v in struct.iter_unpack("<Q", values[: len(values) // 8 * 8])]
            if uncompressed == 0xFFFFFFFF and fields:
                uncompressed = fields.pop(0)
            if compressed == 0xFFFFFFFF and fields:
                compressed = fields.pop(0)
            if offset == 0xFFFFFFFF and fields:
                offset = fields.pop(0)
            return uncompressed, compressed, offset
        position += 4 + size
    raise ZipReadError("zip64 entry without its extra field")


def find_metadata_entry(entries: list[ZipEntry], project: str) -> ZipEntry | None:
    """The top-level `<name>-<version>.dist-info/METADATA`, preferring the one named for the project."""
    candidates = [e for e in entries if e.name.endswith(".dist-info/METADATA") and e.name.count("/") == 1]
    for entry in candidates:
        directory = entry.name.split("/", 1)[0][: -len(".dist-info")]
        if canonicalize_name(directory.rsplit("-", 1)[0]) == canonicalize_name(project):
            return entry
    return candidates[0] if len(candidates) == 1 else None


class MemberTooLarge(ZipReadError):
    """A member larger than allowed, declared or found while inflating (a zip bomb): reading stops there."""

    def __init__(self, name: str, happened: str, limit: int) -> None:
        super().__init__(f"{name} {happened}")
        self.happened, self.limit = happened, limit


def check_member_size(entry: ZipEntry, limit: int) -> None:
    """Refuse a member whose declared sizes exceed the limit, before reading a byte of it."""
    declared = max(entry.uncompressed_size, entry.compressed_size)
    if declared > limit:
        raise MemberTooLarge(entry.name, f"declares {declared:,} bytes", limit)


def extract_member(data: bytes, entry: ZipEntry, limit: int = 16 * 1024 * 1024) -> bytes:
    """The uncompressed member from bytes that start at its local header, never more than `limit` bytes."""
    if data[:4] != LOCAL_HEADER or len(data) < _LOCAL_HEADER_SIZE:
        raise ZipReadError(f"no local header for {entry.name}")
    name_length, extra_length = struct.unpack("<HH", data[26:30])
    start = _LOCAL_HEADER_SIZE + name_length + extra_length
    compressed = data[start : start + entry.compressed_size]
    if len(compressed) < entry.compressed_size:
        raise ZipReadError(f"{entry.name} runs past the bytes read")
    if entry.method == 0:
        if len(compressed) > limit:
            raise MemberTooLarge(entry.name, f"is {len(compressed):,} bytes", limit)
        return compressed
    if entry.method == 8:
        inflater = zlib.decompressobj(-15)
        try:
            inflated = inflater.decompress(compressed, limit + 1)
        except zlib.error as error:
            raise ZipReadError(f"{entry.name} does not inflate: {error}") from None
        if len(inflated) > limit:
            raise MemberTooLarge(entry.name, "inflates to more", limit)
        return inflated
    raise ZipReadError(f"{entry.name} uses compression method {entry.method}")


def local_bytes_needed(entry: ZipEntry, data: bytes) -> int:
    """How many bytes from the local header the member needs, now that the header is known."""
    name_length, extra_length = struct.unpack("<HH", data[26:30])
    return int(_LOCAL_HEADER_SIZE + name_length + extra_length + entry.compressed_size)


def metadata_from_wheel(data: IO[bytes], project: str, limit: int = 16 * 1024 * 1024) -> bytes:
    """METADATA from a whole wheel file (bytes in memory, or a file on disk), never more than `limit`
    bytes of it inflated."""
    try:
        with zipfile.ZipFile(data) as archive:
            infos = {info.filename: info for info in archive.infolist()}
            entries = [ZipEntry(i.filename, i.compress_type, i.compress_size, i.header_offset, i.file_size) for i in infos.values()]
            entry = find_metadata_entry(entries, project)
            if entry is None:
                raise ZipReadError("no .dist-info/METADATA in the wheel")
            check_member_size(entry, limit)
            with archive.open(infos[entry.name]) as member:
                return _read_at_most(member, entry.name, limit)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise ZipReadError(f"not a readable wheel ({error})") from None


def metadata_from_sdist(data: IO[bytes], filename: str, limit: int = 16 * 1024 * 1024) -> bytes:
    """PKG-INFO from a whole source distribution (only trustworthy for metadata 2.2+, see index/metadata.py)."""
    import tarfile  # here: most runs read no sdist

    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(data) as archive:
                infos = [i for i in archive.infolist() if i.filename.count("/") == 1 and i.filename.endswith("/PKG-INFO")]
                if infos:
                    with archive.open(infos[0]) as member:
                        return _read_at_most(member, infos[0].filename, limit)
        else:
            with tarfile.open(fileobj=data, mode="r:*") as archive:
                for info in archive:
                    if info.name.count("/") == 1 and info.name.endswith("/PKG-INFO") and info.isfile():
                        extracted = archive.extractfile(info)
                        if extracted is not None:
                            return _read_at_most(extracted, info.name, limit)
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError) as error:
        raise ZipReadError(f"not a readable source distribution ({error})") from None
    raise ZipReadError("no PKG-INFO in the source distribution")


def _read_at_most(member: IO[bytes], name: str, limit: int) -> bytes:
    content = member.read(limit + 1)
    if len(content) > limit:
        raise MemberTooLarge(name, "inflates to more", limit)
    return content
