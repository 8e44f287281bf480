"""The `indexes` block of a file is checked against the configuration, never trusted as file text: a pull
request that adds an index to it (and recomputes the content digest) is reported by `check` and `diff`, and
`install` refuses the file. A real git repository, a real index server and the tool as a subprocess."""

from __future__ import annotations

from pathlib import Path

from resolver.files.constraints import CONTENT, content_digest

from .index_server import PYTHON_VERSION, WHEEL_TAG, IndexServer, ServedIndex
from .test_state_folder import git, project, run

EVIL = "#   extra https://evil.example/simple  (serves goodpkg)"


def add_index_line(path: Path, line: str) -> None:
    """The edit as a pull request makes it: one line into the block, and the content digest recomputed."""
    lines = path.read_text().splitlines()
    if not any(text.startswith("# indexes (") for text in lines):
        at = next(number for number, text in enumerate(lines) if text.startswith("# excluded"))
        lines[at:at] = ["# indexes (first-index); `cuda-constraints install` installs from them:"]
    at = next(number for number, text in enumerate(lines) if text.startswith("# indexes (")) + 1
    lines.insert(at, line)
    number = next(number for number, text in enumerate(lines) if CONTENT.match(text))
    recorded = CONTENT.match(lines[number]).group(1)  # type: ignore[union-attr]
    lines[number] = lines[number].replace(recorded, content_digest(lines))
    path.write_text("".join(text + "\n" for text in lines))


def test_an_index_added_to_the_block_is_found_by_check_diff_and_install(tmp_path, goodpkg_server):
    root = project(tmp_path / "project", goodpkg_server.simple_url)
    assert run(root, "check").returncode == 0
    add_index_line(root / "constraints" / "cu13.txt", EVIL)
    checked = run(root, "check")
    assert checked.returncode == 1
    assert "its indexes block names extra https://evil.example/simple, which its configuration does not give" in checked.stdout + checked.stderr
    assert "was edited by hand" not in checked.stdout + checked.stderr  # the digest was recomputed: only the block tells
    diffed = run(root, "diff")
    assert "index       + extra https://evil.example/simple (serves goodpkg)" in diffed.stdout, diffed.stdout
    installed = run(root, "install", "--dry-run", "--cuda", "13")
    assert installed.returncode == 1
    assert "evil.example" not in installed.stdout
    assert "its indexes block names extra https://evil.example/simple" in installed.stderr and "Nothing was installed" in installed.stderr


def test_a_configured_index_the_block_lacks_is_found_too(tmp_path, goodpkg_server):
    root = project(tmp_path / "project", goodpkg_server.simple_url)
    config = root / "pyproject.toml"
    config.write_text(config.read_text() + 'extra-index-url = ["https://extra.example/simple"]\n')
    git(root, "commit", "-qam", "an extra index")
    checked = run(root, "check")
    assert checked.returncode == 1
    assert "its configuration gives extra https://extra.example/simple, which its indexes block does not name" in checked.stdout + checked.stderr


def test_the_block_compile_writes_is_what_check_and_install_expect(tmp_path):
    """Configured indexes, a default and an extra one, asked best-match: check is satisfied, and install asks
    exactly them."""
    default, extra = ServedIndex(), ServedIndex()
    default.add("goodpkg", "1.0", tags=(WHEEL_TAG,))
    extra.add("goodpkg", "0.9", tags=(WHEEL_TAG,))
    with IndexServer(default) as default_server, IndexServer(extra) as extra_server:
        root = project(tmp_path / "project", default_server.simple_url, f'python-versions = ["{PYTHON_VERSION}"]\n')
        config = root / "pyproject.toml"
        config.write_text(config.read_text() + f'extra-index-url = ["{extra_server.simple_url}"]\nindex-strategy = "unsafe-best-match"\n')
        assert run(root, "compile").returncode == 0
        text = (root / "constraints" / "cu13.txt").read_text()
        assert f"#   extra {extra_server.simple_url}" in text and f"#   default {default_server.simple_url}" in text
        checked = run(root, "check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        installed = run(root, "install", "--dry-run", "--cuda", "13")
        assert installed.returncode == 0, installed.stderr
        assert f"--extra-index-url {extra_server.simple_url}" in installed.stdout
