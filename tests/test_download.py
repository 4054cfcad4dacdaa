"""The stimulus downloader against a local HTTP server that imitates GitHub's API and raw files."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from dataclasses import replace
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from vitlessons.data import download
from vitlessons.data.download import (
    COMMIT,
    FOLDER,
    REPO,
    SETS,
    SKETCH_COMMIT,
    ChecksumMismatch,
    StimuliUnreachable,
    fetch_stimuli,
    git_blob_sha1,
    main,
)

FILES = {
    "cat/cat1-dog2.png": b"\x89PNG fake cat with dog texture",
    "cat/cat1-cat3.png": b"\x89PNG fake cat with cat texture",
    "dog/dog4-bear1.png": b"\x89PNG fake dog with bear texture" * 50,
}
SMALL = {"expected_files": 3, "expected_folders": 2, "progress": False}
fetch_cue_conflict = partial(fetch_stimuli, "cue-conflict")
EDGES = {"cat/cat1.png": b"\x89PNG fake cat outline", "dog/dog7.png": b"\x89PNG fake dog outline"}


class FakeGitHub:
    """Serves a tree listing and raw files like GitHub does, and counts the requests it gets."""

    def __init__(self, files: dict[str, bytes], edges: dict[str, bytes] | None = None) -> None:
        self.listed = dict(files)  # what the tree listing promises
        self.served = dict(files)  # what the raw endpoint actually returns
        self.edges = dict(edges or {})  # the edge sketches, at their own commit
        self.requests: Counter[str] = Counter()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def tree(self, commit: str) -> bytes:
        """The git-trees answer, with a folder entry and files outside the stimulus folder to skip."""
        folder, files = (FOLDER, self.listed) if commit == COMMIT else (SETS["edges"].folder, self.edges)
        entries = [{"path": folder, "type": "tree", "sha": "0" * 40}]
        entries += [{"path": "README.md", "type": "blob", "sha": "1" * 40, "size": 5}]
        entries += [{"path": "stimuli/filled-silhouettes/cat/cat1.png", "type": "blob", "sha": "2" * 40, "size": 5}]
        entries += [
            {"path": f"{folder}/{rel}", "type": "blob", "sha": git_blob_sha1(data), "size": len(data)}
            for rel, data in files.items()
        ]
        return json.dumps({"sha": commit, "tree": entries, "truncated": False}).encode()

    def raw(self, path: str) -> bytes | None:
        """A raw file's bytes, or None where GitHub would answer 404."""
        for commit, folder, files in ((COMMIT, FOLDER, self.served), (SKETCH_COMMIT, SETS["edges"].folder, self.edges)):
            prefix = f"/{REPO}/{commit}/{folder}/"
            if path.startswith(prefix):
                return files.get(path[len(prefix):])
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        """A request handler bound to this fake, so each test gets its own files and counts."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = unquote(urlparse(self.path).path)
                fake.requests[path] += 1
                trees = f"/repos/{REPO}/git/trees/"
                body = fake.tree(path[len(trees):]) if path.startswith(trees) else fake.raw(path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                """Keep test output quiet."""

        return Handler

    def raw_requests(self) -> int:
        """How many raw files were asked for, to tell a resumed run from a full one."""
        return sum(n for path, n in self.requests.items() if not path.startswith("/repos/"))


@pytest.fixture()
def github():
    """A fake GitHub on a random local port, shut down after the test."""
    fake = FakeGitHub(FILES, EDGES)
    thread = threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def _closed_port() -> int:
    """A local port with nothing listening, so connecting fails at once like an offline machine."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _leftovers(dest: Path) -> list[str]:
    """Temp files a failed download might have left behind."""
    return sorted(p.name for p in dest.rglob("*") if p.name.endswith(".part"))


def test_git_blob_sha1_matches_git() -> None:
    # values from `printf ... | git hash-object --stdin`
    assert git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert git_blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git_blob_sha1(b"vitlessons\0bytes") == "0c197831ea6f0e9df858165156f6f69dfa09a13a"


def test_fetch_writes_verified_files(github: FakeGitHub, tmp_path: Path) -> None:
    dest = fetch_cue_conflict(tmp_path / "cc", api_base=github.base, raw_base=github.base, **SMALL)
    assert dest == tmp_path / "cc"
    written = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert written == sorted(FILES)
    for rel, data in FILES.items():
        assert (dest / rel).read_bytes() == data
    assert github.raw_requests() == 3


def test_second_run_skips_verified_files(github: FakeGitHub, tmp_path: Path) -> None:
    fetch_cue_conflict(tmp_path, api_base=github.base, raw_base=github.base, **SMALL)
    (tmp_path / "dog/dog4-bear1.png").write_bytes(b"damaged")  # only this one must be fetched again
    fetch_cue_conflict(tmp_path, api_base=github.base, raw_base=github.base, **SMALL)
    assert github.raw_requests() == 4
    assert (tmp_path / "dog/dog4-bear1.png").read_bytes() == FILES["dog/dog4-bear1.png"]
    fetch_cue_conflict(tmp_path, force=True, api_base=github.base, raw_base=github.base, **SMALL)
    assert github.raw_requests() == 7


def test_corrupted_file_is_rejected_without_leftovers(github: FakeGitHub, tmp_path: Path) -> None:
    github.served["dog/dog4-bear1.png"] = b"\x89PNG tampered"
    with pytest.raises(ChecksumMismatch, match="dog/dog4-bear1.png"):
        fetch_cue_conflict(tmp_path, api_base=github.base, raw_base=github.base, **SMALL)
    assert not (tmp_path / "dog/dog4-bear1.png").exists()
    assert _leftovers(tmp_path) == []
    assert (tmp_path / "cat/cat1-dog2.png").read_bytes() == FILES["cat/cat1-dog2.png"]


def test_incomplete_set_is_reported(github: FakeGitHub, tmp_path: Path) -> None:
    with pytest.raises(download.FetchError, match="lists 3 PNG files .* expected 1280"):
        fetch_cue_conflict(tmp_path, api_base=github.base, raw_base=github.base, progress=False)
    with pytest.raises(download.FetchError, match="in 2 folders .* expected 3 in 3"):
        fetch_cue_conflict(
            tmp_path, api_base=github.base, raw_base=github.base,
            expected_files=3, expected_folders=3, progress=False,
        )


def test_missing_raw_file_names_http_status(github: FakeGitHub, tmp_path: Path) -> None:
    del github.served["cat/cat1-cat3.png"]
    with pytest.raises(download.FetchError, match="cat1-cat3.png answered HTTP 404"):
        fetch_cue_conflict(tmp_path, api_base=github.base, raw_base=github.base, **SMALL)
    assert _leftovers(tmp_path) == []


def test_unreachable_server_fails_fast_and_clearly(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    with pytest.raises(StimuliUnreachable) as caught:
        fetch_cue_conflict(tmp_path, api_base=base, raw_base=base, timeout=2, **SMALL)
    assert time.monotonic() - start < 5
    message = str(caught.value)
    assert "could not be reached" in message and base in message and "lab scale" in message
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_offline_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = f"http://127.0.0.1:{_closed_port()}"
    code = main(["--dest", str(tmp_path), "--api-base", base, "--raw-base", base, "--timeout", "2"])  # cue conflict, as before
    out, err = capsys.readouterr()
    assert code != 0
    assert "CC BY 4.0" in out
    assert "could not be reached" in err and "lab scale" in err
    assert "Traceback" not in err


def test_cli_success(github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through `vitlessons fetch`, the command every install has (pip and Colab installs have no data_scripts/)."""
    from vitlessons.cli import main as vitlessons_command

    small = {"cue-conflict": replace(SETS["cue-conflict"], files=3, folders=2),
             "edges": replace(SETS["edges"], files=2, folders=2)}
    monkeypatch.setattr(download, "SETS", small)  # main() reads the sets at call time
    monkeypatch.setenv("VITLESSONS_DATA", str(tmp_path))
    code = vitlessons_command(["fetch", "--api-base", github.base, "--raw-base", github.base])
    assert code == 0
    assert (tmp_path / "cue-conflict/cat/cat1-cat3.png").read_bytes() == FILES["cat/cat1-cat3.png"]
    assert (tmp_path / "edges/dog/dog7.png").read_bytes() == EDGES["dog/dog7.png"]


def test_edges_come_from_their_own_folder_and_commit(github: FakeGitHub, tmp_path: Path) -> None:
    dest = fetch_stimuli("edges", tmp_path / "edges", api_base=github.base, raw_base=github.base,
                         expected_files=2, expected_folders=2, progress=False)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*.png")) == sorted(EDGES)
    assert github.requests[f"/repos/{REPO}/git/trees/{SKETCH_COMMIT}"] == 1
    with pytest.raises(download.FetchError, match="lists 2 PNG files under stimuli/edges, expected 160"):
        fetch_stimuli("edges", tmp_path / "again", api_base=github.base, raw_base=github.base, progress=False)


def test_unknown_set_and_dest_for_all_sets_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="unknown stimulus set 'sketches'"):
        fetch_stimuli("sketches", tmp_path)
    with pytest.raises(SystemExit):
        main(["--set", "all", "--dest", str(tmp_path)])
    assert "--dest takes one set" in capsys.readouterr().err


def test_the_installed_command_offers_fetch_and_prefetch() -> None:
    run = lambda *args: subprocess.run([str(Path(sys.executable).parent / "vitlessons"), *args],
                                       capture_output=True, text=True, timeout=120)
    listing = run("--help")
    assert listing.returncode == 0 and "fetch" in listing.stdout and "prefetch" in listing.stdout
    for command in ("fetch", "prefetch"):
        usage = run(command, "--help")
        assert usage.returncode == 0 and f"usage: vitlessons {command}" in usage.stdout
