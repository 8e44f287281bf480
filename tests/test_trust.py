"""Trust: one index never answers for another through the cache, no credential reaches a file or an output,
credentials come from where pip and uv look for them and go only to their own host, and text an index
sends cannot forge a line of a CI log. Indexes are real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from resolver.cli.main import main
from resolver.commands.options import Flags, compile_request, with_index_url
from resolver.errors.display import redact_text, redact_url
from resolver.files.config import load_config
from resolver.files.requirements import RequirementsInput
from resolver.index.auth import CredentialStore, IndexUrl, split_credentials

from .index_server import IndexServer, ServedIndex
from .synthetic import BOTH_ARCHES, KV_REQUIREMENTS, THIS_PYTHON_CONFIG, for_this_python, kv_connectors_index, served

SECRET = "s3cr3t-T0KEN"
ONE_TARGET: list[str] = []  # the project's configuration gives one target


def kv_served() -> ServedIndex:
    index = ServedIndex()
    index.releases.update(kv_connectors_index().releases)
    return index


def project(root: Path, requirements: str = KV_REQUIREMENTS, config: str = "") -> Path:
    (root / "pyproject.toml").write_text(
        '[tool.cuda-constraints]\nrequirements = ["requirements/kv.txt"]\ncuda = [13]\nplatforms = ["manylinux_2_28_x86_64"]\n'
        + config
    )
    (root / "requirements").mkdir(exist_ok=True)
    (root / "requirements" / "kv.txt").write_text(requirements)
    return root


def everything_written(*roots: Path) -> bytes:
    return b"".join(path.read_bytes() for root in roots for path in sorted(root.rglob("*")) if path.is_file())


# -- the cache ---------------------------------------------------------------------------------------------


class LyingIndex(ServedIndex):
    """Lists another index's sha256 for its own `goodpkg` wheel: what a hostile index can claim."""

    def __init__(self, claimed_sha256: str) -> None:
        super().__init__()
        self.claimed = claimed_sha256

    def _file_entry(self, release, filename):
        entry = super()._file_entry(release, filename)
        if filename.startswith("goodpkg"):
            entry["hashes"]["sha256"] = self.claimed
        return entry


def goodpkg_index(requires: tuple[str, ...], claimed: str | None = None) -> ServedIndex:
    index = LyingIndex(claimed) if claimed else ServedIndex()
    index.add("goodpkg", "1.0", requires, tags=BOTH_ARCHES)
    for name in ("evilpkg", "needed"):
        index.add(name, "1.0", tags=BOTH_ARCHES)
    return index


def compiled_pins(root: Path, url: str, cache: Path) -> set[str]:
    assert main(["compile", "-q", "-U", *ONE_TARGET, "--index-url", url, "--cache-dir", str(cache)]) == 0
    text = (root / "constraints" / "cu13.txt").read_text()
    return {line.split("==")[0] for line in text.splitlines() if "==" in line and not line.startswith("#")}


@pytest.mark.parametrize("first_is_hostile", [True, False])
def test_one_index_never_answers_for_another_through_the_cache(tmp_path, inside, first_is_hostile):
    """The same file name and claimed hash on two indexes: each compile sees only its own index's metadata."""
    root = inside(project(tmp_path, "goodpkg\n"))
    good = goodpkg_index(("needed",))
    good_wheel = good.file_bytes("goodpkg-1.0-cp312-cp312-manylinux_2_28_x86_64.whl")
    hostile = goodpkg_index(("evilpkg",), claimed=hashlib.sha256(good_wheel).hexdigest())
    cache = tmp_path / "shared-cache"
    with IndexServer(good) as good_server, IndexServer(hostile) as hostile_server:
        order = [(hostile_server, "evilpkg"), (good_server, "needed")]
        for server, own in order if first_is_hostile else reversed(order):
            pins = compiled_pins(root, server.simple_url, cache)
            assert own in pins and ({"evilpkg", "needed"} - {own}).isdisjoint(pins)


def test_refresh_is_not_needed_and_a_second_run_reuses_its_own_cache(tmp_path, inside):
    root = inside(project(tmp_path, "goodpkg\n"))
    cache = tmp_path / "cache"
    with IndexServer(goodpkg_index(("needed",))) as server:
        assert compiled_pins(root, server.simple_url, cache) == {"goodpkg", "needed"}
        server.index.requests.clear()
        assert compiled_pins(root, server.simple_url, cache) == {"goodpkg", "needed"}
        assert not server.wheel_requests()  # metadata came from the cache, under this index's file URL


def test_invalid_metadata_is_remembered_and_warned_about_on_every_run(tmp_path, inside, capsys):
    root = inside(project(tmp_path, "goodpkg\n"))
    index = ServedIndex()
    index.add("goodpkg", "1.0", tags=BOTH_ARCHES)
    index.add("goodpkg", "2.0", ("broken (>=1.0",), tags=BOTH_ARCHES)
    cache = tmp_path / "cache"
    with IndexServer(index) as server:
        for _ in range(2):
            assert main(["compile", "-q", "-U", *ONE_TARGET, "--index-url", server.simple_url, "--cache-dir", str(cache)]) == 0
            err = capsys.readouterr().err
            assert "warning: skipping goodpkg 2.0: cannot use the metadata of goodpkg-2.0-" in err and "'broken (>=1.0'" in err
    assert "goodpkg==1.0" in (root / "constraints" / "cu13.txt").read_text()


# -- credentials ------------------------------------------------------------------------------------------


def with_secret(url: str, user: str = "ci") -> str:
    return url.replace("http://", f"http://{user}:{SECRET}@")


def test_no_secret_in_any_file_or_output(tmp_path, inside, capsys):
    """compile, a failed compile, check, diff and install --dry-run with a token in the index URL."""
    root = inside(project(tmp_path, config=THIS_PYTHON_CONFIG))  # install --dry-run: files for this Python
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    cache = tmp_path / "cache"
    outputs = []
    with IndexServer(for_this_python(kv_served()), credentials=("ci", SECRET)) as server:
        secret_url = with_secret(server.simple_url)
        assert main(["compile", *ONE_TARGET, "--index-url", secret_url, "--cache-dir", str(cache)]) == 0
        outputs.append(capsys.readouterr())
        header = (root / "constraints" / "cu13.txt").read_text()
        assert f"--index-url 'http://ci:****@127.0.0.1:{server.url.rsplit(':', 1)[1]}/simple'" in header
        (root / "requirements" / "kv.txt").write_text(KV_REQUIREMENTS + "no-such-project\n")
        assert main(["compile", *ONE_TARGET, "--index-url", secret_url, "--cache-dir", str(cache), "--retries", "0"]) == 2
        outputs.append(capsys.readouterr())
        assert "no project named 'no-such-project'" in outputs[-1].err
        (root / "requirements" / "kv.txt").write_text(KV_REQUIREMENTS)
        assert main(["check"]) == 0  # the redacted URL in the header is the same index
        outputs.append(capsys.readouterr())
        assert main(["diff"]) == 0
        outputs.append(capsys.readouterr())
        for installer in ("uv", "pip"):
            code = main(["install", "--cuda", "13", "--dry-run", "--installer", installer, "--index-url", secret_url])
            assert code == 0
            outputs.append(capsys.readouterr())
        assert "export UV_DEFAULT_INDEX='http://ci:****@127.0.0.1" in outputs[-2].out
        assert "export PIP_INDEX_URL='http://ci:****@127.0.0.1" in outputs[-1].out
        # A server error answered to a URL with the secret.
        server.credentials = None
        server.redirects["/simple/"] = "http://127.0.0.1:9"  # nothing listens there: connection refused
        assert main(["compile", *ONE_TARGET, "-U", "--index-url", secret_url, "--no-cache", "--retries", "0"]) == 5
        outputs.append(capsys.readouterr())
        assert "cannot connect" in outputs[-1].err
    shown = "".join(o.out + o.err for o in outputs)
    assert SECRET not in shown and "ci:****@" in shown
    assert SECRET.encode() not in everything_written(root, cache)


def test_credentials_from_a_requirements_line_and_the_configuration_are_masked_too(tmp_path, inside, capsys):
    with IndexServer(kv_served(), credentials=("ci", SECRET)) as server:
        root = inside(project(tmp_path, f"--index-url {with_secret(server.simple_url)}\n{KV_REQUIREMENTS}"))
        assert main(["compile", *ONE_TARGET, "--no-cache"]) == 0
        assert "ci:****@" in (root / "constraints" / "cu13.txt").read_text()
        project(tmp_path, KV_REQUIREMENTS, f'index-url = "{with_secret(server.simple_url)}"\n')
        assert main(["compile", *ONE_TARGET, "--no-cache", "-U"]) == 0
        assert main(["check"]) == 0
    streams = capsys.readouterr()
    assert SECRET not in streams.out + streams.err
    assert SECRET.encode() not in everything_written(root / "constraints")  # the inputs are the user's own


def test_an_invalid_index_line_is_quoted_without_its_secret(tmp_path, inside, capsys):
    inside(project(tmp_path, f"--index-url ftp://user:{SECRET}@mirror/simple extra\nnumpy\n"))
    assert main(["compile", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "requirements/kv.txt:1" in err and SECRET not in err and "user:****@mirror" in err


def test_the_index_of_the_environment_with_its_credentials(tmp_path, inside, monkeypatch, capsys):
    root = inside(project(tmp_path))
    with IndexServer(kv_served(), credentials=("ci", SECRET)) as server:
        monkeypatch.setenv("PIP_INDEX_URL", with_secret(server.simple_url))
        assert main(["compile", *ONE_TARGET, "--no-cache"]) == 0
        assert server.index.requests  # asked the private index, not PyPI
        header = (root / "constraints" / "cu13.txt").read_text()
        assert "# options: --index-url 'http://ci:****@127.0.0.1" in header
        assert main(["check"]) == 0
    assert SECRET not in "".join(capsys.readouterr())


def test_uv_default_index_wins_over_pip_index_url(monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "https://pip.example/simple")
    monkeypatch.setenv("UV_DEFAULT_INDEX", "https://uv.example/simple")
    config = load_config(Path("/nonexistent"))
    assert config.default_index_url == "https://uv.example/simple" and config.environment.index_source == "UV_DEFAULT_INDEX"


def test_index_precedence_flag_then_requirements_line_then_configuration_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "https://environment.example/simple")
    from_file = RequirementsInput((), index_url="https://line.example/simple")
    nothing = RequirementsInput(())

    def effective(flag: str | None, requirements: RequirementsInput) -> str:
        config = load_config(tmp_path)
        arguments = ["--index-url", flag] if flag else []
        request = compile_request(Flags.from_argv(arguments), config)
        return with_index_url(request, flag, requirements).index_url

    project(tmp_path, config='index-url = "https://configured.example/simple"\n')
    assert effective("https://flag.example/simple", from_file) == "https://flag.example/simple"
    assert effective(None, from_file) == "https://line.example/simple"
    assert effective(None, nothing) == "https://configured.example/simple"
    project(tmp_path)
    assert effective(None, nothing) == "https://environment.example/simple"
    monkeypatch.delenv("PIP_INDEX_URL")
    assert effective(None, nothing) == "https://pypi.org/simple"


def test_netrc_credentials_are_used_for_their_host(tmp_path, inside, monkeypatch, capsys):
    root = inside(project(tmp_path))
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin ci\npassword {SECRET}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with IndexServer(kv_served(), credentials=("ci", SECRET)) as server:
        assert main(["compile", *ONE_TARGET, "--no-cache", "--index-url", server.simple_url]) == 0
    assert "--index-url http://127.0.0.1" in (root / "constraints" / "cu13.txt").read_text()
    assert SECRET not in "".join(capsys.readouterr())


def test_without_credentials_a_private_index_is_a_clear_401(tmp_path, inside, capsys):
    inside(project(tmp_path))
    with IndexServer(kv_served(), credentials=("ci", SECRET)) as server:
        assert main(["compile", *ONE_TARGET, "--no-cache", "--retries", "0", "--index-url", server.simple_url]) == 5
    assert "HTTP 401: authentication required" in capsys.readouterr().err


def test_credentials_are_not_sent_after_a_redirect_to_another_host(tmp_path, inside, capsys):
    """Files redirected to another origin (another port: a file host) get no Authorization header."""
    inside(project(tmp_path))
    files = kv_served()
    with IndexServer(files) as file_host, IndexServer(kv_served()) as index:
        index.redirects["/packages/"] = file_host.url
        assert main(["compile", *ONE_TARGET, "--no-cache", "--index-url", with_secret(index.simple_url)]) == 0
        assert any(path.startswith("/simple/") and auth for path, auth in index.authorizations)
        assert file_host.authorizations and all(auth is None for _, auth in file_host.authorizations)


def test_split_credentials_and_the_display_safe_url():
    assert split_credentials("https://u:p%40ss@host/simple") == ("https://host/simple", "u", "p@ss")
    assert split_credentials("https://TOKEN@host/") == ("https://host/", "TOKEN", "")
    assert split_credentials("https://u:****@host/") == ("https://host/", "u", None)
    store = CredentialStore(["https://u:p%40ss@host/simple"], environ={}, read_netrc=False, use_keyring=False)
    index = store.index("https://u:****@host/simple")
    assert index.with_secret() == "https://u:p%40ss@host/simple"
    assert str(index) == repr(index)[10:-2] == "https://u:****@host/simple" and "p@ss" not in repr(index)
    assert str(IndexUrl("https://host/simple")) == "https://host/simple"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@host/simple", "https://user:****@host/simple"),
        ("https://tok3n@host/simple", "https://****@host/simple"),
        ("https://host/simple?token=abc&page=2", "https://host/simple?token=****&page=2"),
        ("https://host/f.whl?X-Amz-Signature=abc", "https://host/f.whl?X-Amz-Signature=****"),
        ("https://host/simple", "https://host/simple"),
    ],
)
def test_redaction(url, shown):
    assert redact_url(url) == shown
    assert redact_text(f"error: {url}: HTTP 500") == f"error: {shown}: HTTP 500"


@pytest.mark.parametrize(
    "file_url",
    [
        lambda url, filename, served: f"{url}?token={SECRET}",
        # an index that answers absolute file URLs with the credentials it was asked with
        lambda url, filename, served: served.replace("://", f"://ci:{SECRET}@") + f"/packages/{filename}",
    ],
    ids=["token", "credentials"],
)
def test_a_page_with_a_secret_in_its_file_urls_stays_out_of_the_disk_cache(tmp_path, inside, file_url):
    class Signed(ServedIndex):
        def _file_entry(self, release, filename):
            entry = super()._file_entry(release, filename)
            entry["url"] = file_url(entry["url"], filename, server.url)
            return entry

    index = Signed()
    index.add("goodpkg", "1.0", tags=BOTH_ARCHES)
    inside(project(tmp_path, "goodpkg\n"))
    cache = tmp_path / "cache"
    with IndexServer(index) as server:
        assert main(["compile", "-q", *ONE_TARGET, "--index-url", server.simple_url, "--cache-dir", str(cache)]) == 0
    assert SECRET.encode() not in everything_written(cache)


def test_a_find_links_page_with_a_token_in_its_links_stays_out_of_the_disk_cache(tmp_path, inside):
    class Signed(ServedIndex):
        def simple_page(self, name: str) -> str:
            return super().simple_page(name).replace("#sha256=", f"?token={SECRET}#sha256=")

    index = Signed()
    index.add("goodpkg", "1.0", tags=BOTH_ARCHES)
    index.links_page = "/assets/v1.0"
    inside(project(tmp_path, "goodpkg\n"))
    cache = tmp_path / "cache"
    with IndexServer(index) as server:
        links = server.url + index.links_page
        assert main(["compile", "-q", *ONE_TARGET, "--no-index", "--find-links", links, "--cache-dir", str(cache)]) == 0
    assert (tmp_path / "constraints").is_dir()
    assert SECRET.encode() not in everything_written(cache)


# -- text from an index -----------------------------------------------------------------------------------


def test_control_characters_from_an_index_cannot_forge_log_lines(tmp_path, inside, capsys):
    index = kv_connectors_index()
    forged = "numpy\n ::warning::forged\x1b[31m"
    index.add("numpy", "2.4.0", tags=BOTH_ARCHES, claimed_name=forged)
    inside(project(tmp_path))
    with served(index):
        original = index.project_page

        def page_with_a_hostile_url(name: str) -> dict:
            document = original(name)
            if name == "aiohttp":
                files = document["files"]
                files.append({**files[0], "filename": "aiohttp-9.9.9\n::error::x.whl", "url": "../../x\n::error::x"})
            return document

        index.project_page = page_with_a_hostile_url  # type: ignore[method-assign]
        assert main(["compile", *ONE_TARGET, "--no-cache", "--index-url", "https://index.test/simple"]) == 0
    streams = capsys.readouterr()
    lines = (streams.out + streams.err).splitlines()
    assert not any(line.lstrip().startswith(("::warning", "::error")) for line in lines)
    assert "\x1b" not in streams.out + streams.err
    assert any("Name field holds a control character: 'numpy ::warning::forged\\x1b[31m'" in line for line in lines)


def test_no_traceback_and_no_secret_from_the_real_command_line(tmp_path):
    """The console script as a CI job runs it: an unknown argument echoing a URL with a secret."""
    completed = subprocess.run(
        [sys.executable, "-m", "resolver", "compile", f"https://u:{SECRET}@host/simple"],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "NETRC": "/nonexistent"}, check=False,
    )
    assert completed.returncode == 2 and SECRET not in completed.stderr and "u:****@host" in completed.stderr


def test_stats_json_holds_no_url(tmp_path, inside):
    inside(project(tmp_path))
    stats = tmp_path / "stats.json"
    with IndexServer(kv_served(), credentials=("ci", SECRET)) as server:
        url = with_secret(server.simple_url)
        assert main(["compile", "-q", *ONE_TARGET, "--no-cache", "--index-url", url, "--stats-json", str(stats)]) == 0
    assert SECRET not in stats.read_text() and json.loads(stats.read_text())["requests"] > 0


@pytest.mark.parametrize(
    "arguments",
    [
        ["-f", f"user:{SECRET}@host/links"],
        ["--find-links", f"http:/user:{SECRET}@host/links"],
        ["--extra-index-url", f"user:{SECRET}@host/simple"],
        ["--index-url", f"https:/user:{SECRET}@host/simple"],
    ],
    ids=["find-links without a scheme", "find-links with one slash", "extra index without a scheme", "index with one slash"],
)
def test_a_mistyped_url_is_refused_and_its_password_shown_nowhere(tmp_path, arguments):
    """A URL typed without its scheme (or its `//`) is no directory to look for: refused, its secret masked."""
    project(tmp_path)
    completed = subprocess.run(
        [sys.executable, "-m", "resolver", "compile", "--no-cache", *arguments],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "NETRC": "/nonexistent"}, check=False, timeout=120,
    )
    assert completed.returncode in (2, 5), completed.stderr
    assert SECRET not in completed.stdout + completed.stderr and "user:****@host" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "constraints").exists()


def test_a_mistyped_find_links_line_in_a_requirements_file_names_the_line_without_its_secret(tmp_path, inside, capsys):
    inside(project(tmp_path, requirements=f"--find-links user:{SECRET}@host/links\n{KV_REQUIREMENTS}"))
    assert main(["compile", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "requirements/kv.txt:1" in err and "looks like a URL but has no valid scheme" in err
    assert SECRET not in err and "user:****@host/links" in err
    assert not (tmp_path / "constraints").exists()


@pytest.mark.parametrize("text", [f"user:{SECRET}@host/links", f"http:/user:{SECRET}@host", f"'x:{SECRET}@y'"])
def test_anything_shaped_like_credentials_is_masked_url_or_not(text):
    assert SECRET not in redact_url(text) and SECRET not in redact_text(f"error: {text} failed")
