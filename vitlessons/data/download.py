"""Fetch Geirhos et al.'s stimuli from GitHub, verified file by file: cue-conflict images and their sketches.

Source: https://github.com/rgeirhos/texture-vs-shape. Three sets (``SETS``), each a folder of PNG images in 16
category folders, pinned at a commit:

- ``cue-conflict``: ``stimuli/style-transfer-preprocessed-512``, 1,280 images, at ``ef10e3ed6e41``;
- ``edges``: ``stimuli/edges``, 160 line drawings (chapter 4's sketches), at ``bbdfbf7bc606``;
- ``silhouettes``: ``stimuli/filled-silhouettes``, 160 black shapes on white, at ``bbdfbf7bc606``.

The stimuli are by Robert Geirhos, Patricia Rubisch, Claudio Michaelis, Matthias Bethge,
Felix A. Wichmann and Wieland Brendel and are licensed CC BY 4.0
(https://creativecommons.org/licenses/by/4.0/): cite the paper when you use them.

How: one call to the GitHub git-trees API lists every file with its git blob SHA-1; each file
then comes from raw.githubusercontent.com at the same commit and is checked against that SHA-1
(``sha1(b"blob <size>\\0" + content)``, how git names file contents) before it is moved into place.
Files already present and verifying are skipped, so an interrupted fetch resumes. Only the
standard library speaks HTTP, so the fetch works wherever Python does.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from tqdm.auto import tqdm

from vitlessons.data.stimuli import FETCH_COMMAND, STIMULUS_SETS, stimuli_available, stimuli_dir

REPO = "rgeirhos/texture-vs-shape"
COMMIT = "ef10e3ed6e41da1af0f0f8e0dfcea40ed838ee25"  # the cue-conflict images
SKETCH_COMMIT = "bbdfbf7bc606d879612247a2cac5a5a9be321195"  # added edges/ and filled-silhouettes/; unchanged since
FOLDER = "stimuli/style-transfer-preprocessed-512"
API_BASE = "https://api.github.com"
RAW_BASE = "https://raw.githubusercontent.com"
TIMEOUT_S = 10.0
CHUNK_BYTES = 1 << 16
LICENCE_NOTE = (
    "Stimuli by Geirhos et al. (2019), https://github.com/rgeirhos/texture-vs-shape, "
    "licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)."
)


@dataclass(frozen=True)
class StimulusSet:
    """One pinned folder of the repository: where it is, how many files it must hold, how big it is."""

    name: str  # also the folder under the data directory (``stimuli.stimuli_dir(name)``)
    folder: str
    commit: str
    files: int
    megabytes: float
    folders: int = 16


SETS = {s.name: s for s in (
    StimulusSet("cue-conflict", FOLDER, COMMIT, STIMULUS_SETS["cue-conflict"], 136.5),  # 136,489,547 bytes
    StimulusSet("edges", "stimuli/edges", SKETCH_COMMIT, STIMULUS_SETS["edges"], 0.5),  # 521,731 bytes
    StimulusSet("silhouettes", "stimuli/filled-silhouettes", SKETCH_COMMIT, STIMULUS_SETS["silhouettes"], 1.0),  # 1,017,813
)}


class FetchError(RuntimeError):
    """The stimuli could not be fetched; the message says why and what to do."""


class StimuliUnreachable(FetchError):
    """The server could not be reached (offline, DNS failure, timeout): the course runs at lab scale."""


class ChecksumMismatch(FetchError):
    """A downloaded file differs from the pinned commit, so it was thrown away."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of the pinned folder: where it goes and the git blob SHA-1 it must have."""

    path: str  # relative to the folder, e.g. "cat/cat1-elephant2.png"
    sha: str
    size: int


def git_blob_sha1(data: bytes) -> str:
    """The SHA-1 git gives a file's contents, so a file can be checked against the tree listing."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def tree_url(api_base: str = API_BASE, commit: str = COMMIT) -> str:
    """The git-trees API address that lists every file of the commit with its blob SHA-1."""
    return f"{api_base.rstrip('/')}/repos/{REPO}/git/trees/{commit}?recursive=1"


def raw_url(relative: str, raw_base: str = RAW_BASE, commit: str = COMMIT, folder: str = FOLDER) -> str:
    """The raw-content address of one file of a stimulus folder at a pinned commit."""
    return f"{raw_base.rstrip('/')}/{REPO}/{commit}/{quote(f'{folder}/{relative}')}"


def _unreachable(url: str, reason: object) -> StimuliUnreachable:
    """The offline error, worded so a learner knows nothing is broken and what happens next."""
    return StimuliUnreachable(
        f"The stimuli could not be reached at {url} ({reason}). "
        "Without them the course falls back to lab scale. "
        f"When you are online, run `{FETCH_COMMAND}` again."
    )


def _open(url: str, timeout: float) -> http.client.HTTPResponse:
    """Open ``url``, turning network failures into errors that say what went wrong."""
    request = urllib.request.Request(url, headers={"User-Agent": "vitlessons-fetch"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        hint = " (GitHub API rate limit? Try again in an hour)" if error.code in (403, 429) else ""
        raise FetchError(f"{url} answered HTTP {error.code} {error.reason}{hint}") from error
    except urllib.error.URLError as error:
        raise _unreachable(url, error.reason) from error
    except (TimeoutError, ConnectionError) as error:
        raise _unreachable(url, str(error) or "timed out") from error


def _safe_relative(relative: str, folder: str) -> str:
    """Refuse listed paths that would land outside a ``<category>/<file>.png`` slot of the folder."""
    parts = PurePosixPath(relative).parts
    if len(parts) != 2 or any(part in ("", ".", "..") for part in parts):
        raise FetchError(f"unexpected path in the tree listing: {folder}/{relative}")
    return relative


def list_remote_files(
    api_base: str = API_BASE, commit: str = COMMIT, timeout: float = TIMEOUT_S, folder: str = FOLDER
) -> list[RemoteFile]:
    """The PNG files of one stimulus folder at ``commit`` with their blob SHA-1s, sorted by path."""
    url = tree_url(api_base, commit)
    try:
        with _open(url, timeout) as response:
            listing = json.loads(response.read())
    except (TimeoutError, ConnectionError, http.client.HTTPException) as error:
        raise _unreachable(url, str(error) or "timed out") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FetchError(f"{url} did not return a JSON tree listing: {error}") from error
    if not isinstance(listing, dict) or not isinstance(listing.get("tree"), list):
        raise FetchError(f"{url} returned JSON without a 'tree' list")
    if listing.get("truncated"):
        raise FetchError(f"{url} returned a truncated tree listing; the stimuli cannot be listed in one call")
    prefix = f"{folder}/"
    try:
        files = [
            RemoteFile(_safe_relative(entry["path"][len(prefix):], folder), str(entry["sha"]), int(entry["size"]))
            for entry in listing["tree"]
            if entry.get("type") == "blob" and str(entry.get("path", "")).startswith(prefix)
            and entry["path"].endswith(".png")
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise FetchError(f"{url} returned a tree entry without usable path, sha or size: {error!r}") from error
    return sorted(files, key=lambda f: f.path)


def _verified(path: Path, sha: str) -> bool:
    """Whether ``path`` exists with the expected blob SHA-1, so it need not be fetched again."""
    return path.is_file() and git_blob_sha1(path.read_bytes()) == sha


def _download(remote: RemoteFile, target: Path, url: str, timeout: float) -> None:
    """Stream one file into a temp file beside ``target``, verify it, then move it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        digest, received = hashlib.sha1(b"blob %d\0" % remote.size), 0
        with os.fdopen(handle, "wb") as out, _open(url, timeout) as response:
            while chunk := response.read(CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
        if received != remote.size or digest.hexdigest() != remote.sha:
            raise ChecksumMismatch(
                f"{remote.path} from {url} failed verification (got {received} bytes, expected "
                f"{remote.size} with git blob SHA-1 {remote.sha}); the file was discarded"
            )
        os.replace(temp, target)
    except (TimeoutError, ConnectionError, http.client.HTTPException) as error:
        raise _unreachable(url, str(error) or "timed out") from error
    finally:
        temp.unlink(missing_ok=True)


def _check_complete(dest: Path, expected_files: int, expected_folders: int) -> None:
    """Confirm the whole set arrived, so a partial folder never passes for the real one."""
    pngs = [p for p in dest.glob("*/*.png") if not p.name.startswith(".")]
    folders = {p.parent.name for p in pngs}
    if len(pngs) != expected_files or len(folders) != expected_folders:
        raise FetchError(
            f"{dest} holds {len(pngs)} PNG files in {len(folders)} folders after the fetch, "
            f"expected {expected_files} in {expected_folders}"
        )


def fetch_stimuli(
    name: str = "cue-conflict",
    dest: Path | None = None,
    *,
    force: bool = False,
    api_base: str = API_BASE,
    raw_base: str = RAW_BASE,
    commit: str | None = None,
    expected_files: int | None = None,
    expected_folders: int | None = None,
    timeout: float = TIMEOUT_S,
    progress: bool = True,
) -> Path:
    """Download one of ``SETS`` into ``dest`` (default ``stimuli_dir(name)``), skipping files that already verify.

    ``commit``, ``expected_files`` and ``expected_folders`` default to the set's pinned values (tests change them).
    """
    if name not in SETS:
        raise ValueError(f"unknown stimulus set {name!r}; choose one of {', '.join(SETS)}")
    chosen = SETS[name]
    commit = chosen.commit if commit is None else commit
    expected_files = chosen.files if expected_files is None else expected_files
    expected_folders = chosen.folders if expected_folders is None else expected_folders
    dest = stimuli_dir(name) if dest is None else Path(dest).expanduser()
    if not force and stimuli_available(dest, expected=expected_files):
        if progress:
            print(f"{expected_files} {name} stimuli already in {dest}; use --force to download and verify them again.")
        return dest  # complete already: a classroom can rerun this offline
    remote = list_remote_files(api_base, commit, timeout, chosen.folder)
    if len(remote) != expected_files:
        raise FetchError(
            f"{tree_url(api_base, commit)} lists {len(remote)} PNG files under {chosen.folder}, "
            f"expected {expected_files}"
        )
    todo = [f for f in remote if force or not _verified(dest / f.path, f.sha)]
    for item in tqdm(todo, desc=f"{name} stimuli", unit="file", disable=not progress or not todo):
        _download(item, dest / item.path, raw_url(item.path, raw_base, commit, chosen.folder), timeout)
    _check_complete(dest, expected_files, expected_folders)
    if progress:
        kept = len(remote) - len(todo)
        print(f"{len(remote)} {name} stimuli ready in {dest} ({len(todo)} downloaded, {kept} already there).")
    return dest


def _parser() -> argparse.ArgumentParser:
    """Command-line options of ``vitlessons fetch``."""
    sizes = ", ".join(f"{s.name} ({s.files} images, {s.megabytes:g} MB)" for s in SETS.values())
    parser = argparse.ArgumentParser(
        prog="vitlessons fetch",
        description=f"Download Geirhos et al.'s stimuli, verified against pinned commits: {sizes}. " + LICENCE_NOTE,
    )
    parser.add_argument("--set", dest="sets", choices=(*SETS, "all"), default=None,
                        help="which stimuli (default: all three; with --dest alone, cue-conflict, as before)")
    parser.add_argument("--dest", type=Path, default=None,
                        help="target folder, for one set only (default: the data directory's folder of that set)")
    parser.add_argument("--force", action="store_true", help="download every file again, even verified ones")
    parser.add_argument("--api-base", default=API_BASE, help="GitHub API base URL (for mirrors and tests)")
    parser.add_argument("--raw-base", default=RAW_BASE, help="raw-content base URL (for mirrors and tests)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds to wait for the server")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the fetch from the command line; exits non-zero with a one-paragraph message, no traceback."""
    parser = _parser()
    args = parser.parse_args(argv)
    chosen = args.sets or ("cue-conflict" if args.dest is not None else "all")
    names = tuple(SETS) if chosen == "all" else (chosen,)
    if args.dest is not None and len(names) > 1:
        parser.error("--dest takes one set: add --set cue-conflict, --set edges or --set silhouettes")
    print(LICENCE_NOTE)
    return exit_status(lambda: [fetch_stimuli(name, args.dest, force=args.force, api_base=args.api_base,
                                              raw_base=args.raw_base, timeout=args.timeout) for name in names])


def exit_status(fetch: Callable[[], object]) -> int:
    """Run a fetch for a command: 0 when done, 1 with its one-paragraph message, 130 when interrupted (it resumes)."""
    try:
        fetch()
    except (FetchError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted; run the command again to resume.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
