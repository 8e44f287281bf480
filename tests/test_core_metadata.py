"""Core metadata parsing, differentially against the standard library's email parser and packaging, on a
committed corpus of real METADATA and PKG-INFO files (tests/data/metadata, see its SOURCES.json)."""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import json
from pathlib import Path

import pytest
from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from resolver.index.metadata import (
    BadMetadata,
    header_block,
    parse_core_metadata,
    repair_requirement,
)

CORPUS = Path(__file__).parent / "data" / "metadata"
SOURCES = json.loads((CORPUS / "SOURCES.json").read_text())


def reference_values(data: bytes, header: str) -> list[str]:
    """A header's values as `email.parser` (compat32, as pip and packaging use it) reads them."""
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data)
    values = []
    for value in message.get_all(header) or []:
        if isinstance(value, email.header.Header):  # non-ASCII bytes: decoded as packaging does
            values.append(str(email.header.make_header(email.header.decode_header(value))))
        else:
            values.append(value)
    return values


def test_the_corpus_is_what_sources_lists():
    files = {path.name for path in CORPUS.iterdir() if path.suffix in (".METADATA", ".PKG-INFO")}
    assert files == set(SOURCES) and len(files) >= 30


@pytest.mark.parametrize("filename", sorted(SOURCES))
def test_requirements_equal_the_reference_parsers(filename):
    data = (CORPUS / filename).read_bytes()
    source = SOURCES[filename]
    expected = reference_values(data, "Requires-Dist")
    raw, _ = parse_email(data)
    assert expected == (raw.get("requires_dist") or [])  # the two references agree with each other
    invalid = [text for text in expected if not _valid(text)]
    if any(repair_requirement(text) is None for text in invalid):
        with pytest.raises(BadMetadata):
            parse_core_metadata(data)
        return
    metadata = parse_core_metadata(data)
    assert metadata.name == canonicalize_name(source["project"])
    assert str(metadata.version) == str(source["version"]) or metadata.version == metadata.version.__class__(source["version"])
    repaired = [text if _valid(text) else repair_requirement(text) for text in expected]
    assert list(metadata.requires_dist) == repaired
    assert len(metadata.repairs) == len(invalid)
    requires_python = reference_values(data, "Requires-Python")
    assert metadata.requires_python == (requires_python[0] if requires_python else None)
    extras = {canonicalize_name(e) for e in reference_values(data, "Provides-Extra")}
    assert set(metadata.provides_extra) == extras


def _valid(text: str) -> bool:
    try:
        Requirement(text)
    except InvalidRequirement:
        return False
    return True


@pytest.mark.parametrize("filename", ["tiktoken-0.14.0.METADATA", "scipy-1.18.1.METADATA", "sglang-0.5.23.METADATA"])
def test_a_license_folded_over_blank_looking_lines_hides_no_header(filename):
    data = (CORPUS / filename).read_bytes()
    license_lines = data[: data.index(b"Requires-Dist")].split(b"\n")
    assert any(line.strip() == b"" and line for line in license_lines)  # whitespace-only continuation lines
    assert len(parse_core_metadata(data).requires_dist) == len(reference_values(data, "Requires-Dist")) > 0


def test_sglang_keeps_all_139_dependencies_and_its_python_bound():
    metadata = parse_core_metadata((CORPUS / "sglang-0.5.23.METADATA").read_bytes())
    assert len(metadata.requires_dist) == 139 and metadata.requires_python == ">=3.11"


def test_the_header_block_ends_at_the_first_empty_line_whatever_the_line_ends():
    for newline in (b"\n", b"\r\n", b"\r"):
        text = newline.join([b"Name: x", b"Version: 1", b"License: a", b"  ", b" b", b"", b"Requires-Dist: body"])
        assert header_block(text).endswith(newline + newline)
        assert parse_core_metadata(text).requires_dist == ()
    assert header_block(b"Name: x\r\nVersion: 1\r\n") == b"Name: x\r\nVersion: 1\r\n"


def test_fields_and_the_description_body():
    metadata = parse_core_metadata(
        b"Metadata-Version: 2.1\nName: NIXL\nVersion: 1.5.1\nRequires-Python: >=3.10\n"
        b"Requires-Dist: nixl-cu12==1.5.1\nRequires-Dist: nixl-cu13==1.5.1; extra == 'cu13'\n"
        b"Provides-Extra: cu13\n\nLong description\nRequires-Dist: not-a-header\n"
    )
    assert metadata.name == "nixl" and str(metadata.version) == "1.5.1"
    assert metadata.requires_python == ">=3.10"
    assert metadata.requires_dist == ("nixl-cu12==1.5.1", "nixl-cu13==1.5.1; extra == 'cu13'")
    assert metadata.provides_extra == ("cu13",)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"Metadata-Version: 2.1\nName: x\nVersion: 1\nRequires-Dist: caf\xe9>=1\n", "Requires-Dist field is not valid UTF-8"),
        (b"Metadata-Version: 2.1\nName: x\nVersion: 1\nVersion: 2\n", "Version field appears 2 times"),
        (b"Metadata-Version: 2.1\nName: x\nVersion: 1\nRequires-Dist: numpy (>=1.0\n", "is not a valid requirement"),
        (b"Metadata-Version: 2.1\nVersion: 1\n", "no Name"),
        (b"Metadata-Version: 2.1\nName: x\nVersion: one\n", "not a valid version"),
        (b"Metadata-Version: 2.1\nName: x\nVersion: 1\nRequires-Python: >=three\n", "Requires-Python"),
    ],
)
def test_invalid_metadata_is_refused_not_shortened(raw, problem):
    with pytest.raises(BadMetadata) as refused:
        parse_core_metadata(raw)
    assert problem in refused.value.problem


def test_a_non_utf8_field_the_resolver_does_not_read_is_harmless():
    data = (CORPUS / "pyx-0.10.PKG-INFO").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert parse_core_metadata(data).name == "pyx"


@pytest.mark.parametrize(
    ("legacy", "repaired"),
    [
        ("pytz (>dev)", "pytz>0.0.0dev"),
        ("foo (>=1.0<2.0)", "foo<2.0,>=1.0"),
        ("foo (>=1.9.*)", "foo>=1.9"),
        ("foo (!=3.0*)", "foo!=3.0.*"),
        ("x (>dev) ; extra == 'y'", "x>0.0.0dev ; extra == 'y'"),
    ],
)
def test_known_legacy_spellings_are_repaired_with_a_note(legacy, repaired):
    assert repair_requirement(legacy) == repaired
    metadata = parse_core_metadata(f"Metadata-Version: 2.1\nName: x\nVersion: 1\nRequires-Dist: {legacy}\n".encode())
    assert metadata.requires_dist == (repaired,) and legacy in metadata.repairs[0]


def test_celery_447_reads_pytz_as_uv_does():
    metadata = parse_core_metadata((CORPUS / "celery-4.4.7.METADATA").read_bytes())
    assert "pytz>0.0.0dev" in metadata.requires_dist
    assert metadata.repairs == ("Requires-Dist 'pytz (>dev)' read as 'pytz>0.0.0dev'",)


@pytest.mark.parametrize(
    ("filename", "static"),
    [
        ("odfpy-1.4.1.PKG-INFO", False),  # Metadata-Version 1.1
        ("apache-airflow-2.9.3.PKG-INFO", False),  # 2.3 with Dynamic: Requires-Dist
        ("setuptools-75.8.0.PKG-INFO", True),  # 2.2, static
        ("attrs-25.3.0.PKG-INFO", True),  # 2.4, static
    ],
)
def test_sdist_metadata_is_used_only_when_static(filename, static):
    data = (CORPUS / filename).read_bytes()
    if static:
        assert parse_core_metadata(data, require_static=True).requires_dist
    else:
        with pytest.raises(BadMetadata):
            parse_core_metadata(data, require_static=True)


def test_folded_fields_are_read_as_the_email_package_unfolds_them():
    """RFC 5322 unfolding (email's default policy): the line break goes, the whitespace after it stays."""
    raw = (b"Metadata-Version: 2.1\nName: x\nVersion: 1\nRequires-Python: >=3.8,\n <4\n"
           b"Requires-Dist: foo;\n python_version > '3'\nProvides-Extra: all\n\n")
    unfolded = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    metadata = parse_core_metadata(raw)
    assert list(metadata.requires_dist) == [str(value) for value in unfolded.get_all("Requires-Dist")] == ["foo; python_version > '3'"]
    assert metadata.requires_python == str(unfolded["Requires-Python"]) == ">=3.8, <4"


@pytest.mark.parametrize(
    "fields",
    ["Name: x\nVersion: 1\nRequires-Dist: foo; python_version >= '3\u2028::error::x'", "Name: x\nVersion: 1\nRequires-Python: >=3 \x1b[31m",
     "Name: x\nVersion: 1\nProvides-Extra: a\x0bb", "Name: x\x00\nVersion: 1"],
)
def test_a_control_character_in_a_field_makes_the_metadata_unusable(fields):
    with pytest.raises(BadMetadata, match="holds a control character"):
        parse_core_metadata(f"Metadata-Version: 2.1\n{fields}\n\n".encode())


def test_an_extra_that_is_not_a_valid_name_is_left_out():
    raw = b"Metadata-Version: 2.1\nName: x\nVersion: 1\nProvides-Extra: Dev_Tools\nProvides-Extra: a b\nProvides-Extra: --all\n\n"
    assert parse_core_metadata(raw).provides_extra == ("dev-tools",)
