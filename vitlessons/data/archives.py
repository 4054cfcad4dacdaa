"""Fetch one pinned tar archive over HTTP(S) and unpack it, with only the standard library.

The archive is known in advance (address, size in bytes, SHA-256), so what arrives is checked before it is used.
It downloads to ``<name>.part`` beside the destination and resumes with an HTTP Range request after an
interruption (restarting if the server ignores Range). A file failing its checksum is deleted. Extraction
refuses members that would land outside the folder (absolute paths, ``..``, links pointing out: tarfile's
``data`` filter), unpacks into a temporary folder beside the destination and renames it into place, with a
marker file recording the archive's checksum, so ``extracted`` can tell a complete dataset from a half one.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from vitlessons import config
from vitlessons.data.download import (
    CHUNK_BYTES,
    TIMEOUT_S,
    ChecksumMismatch,
    FetchError,
    StimuliUnreachable,
)

MARKER = ".vitlessons-archive.json"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(?:\d+|\*)")


@dataclass(frozen=True)
class Archive:
    """One published archive: where it is, what it must be, and the folder it unpacks to."""

    title: str  # for messages, e.g. "ImageNet-R"
    url: str
    size: int  # bytes
    sha256: str | None  # None: no published checksum, so the fetch refuses to run
    folder: str  # the archive's top-level folder, e.g. "imagenet-r"
    command: str  # the shell command that fetches it, for messages

    @property
    def filename(self) -> str:
        """The archive's own file name, which its ``.part`` file is named after."""
        return self.url.rsplit("/", 1)[-1]


def _unreachable(archive: Archive, reason: object) -> StimuliUnreachable:
    """The offline error: what could not be reached, and the command to run on a machine that is online."""
    return StimuliUnreachable(
        f"{archive.title} could not be reached at {archive.url} ({reason}). The paper-scale sections that need it "
        f"are skipped. On a machine with internet, run `{archive.command}` (it resumes where it stopped) and "
        f"copy the folder it prints into {config.data_dir()}."
    )


def _open(archive: Archive, offset: int, timeout: float) -> http.client.HTTPResponse:
    """GET the archive from byte ``offset`` on, turning network failures into errors that say what to do."""
    headers = {"User-Agent": "vitlessons-fetch", **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        return urllib.request.urlopen(urllib.request.Request(archive.url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the server will not resume this file: start again
            return _open(archive, 0, timeout)
        raise FetchError(f"{archive.url} answered HTTP {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        raise _unreachable(archive, error.reason) from error
    except (TimeoutError, ConnectionError) as error:
        raise _unreachable(archive, str(error) or "timed out") from error


def _resumed_at(response: http.client.HTTPResponse, offset: int, url: str) -> int:
    """Where the body starts: ``offset`` for a partial answer (206), 0 when the server ignored Range."""
    if response.status != 206:
        return 0
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if match is None or int(match.group(1)) != offset:
        raise FetchError(f"{url} answered a resume from byte {offset} with Content-Range "
                         f"{response.headers.get('Content-Range')!r}; delete the .part file and run again")
    return offset


def _download(archive: Archive, part: Path, timeout: float, progress: bool) -> None:
    """Append the missing bytes to ``part``, resuming where an earlier run stopped."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        with _open(archive, offset, timeout) as response:
            start = _resumed_at(response, offset, archive.url)
            with part.open("ab" if start else "wb") as out, tqdm(
                total=archive.size, initial=start, unit="B", unit_scale=True, desc=archive.title, disable=not progress
            ) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (TimeoutError, ConnectionError, http.client.HTTPException) as error:
        raise _unreachable(archive, str(error) or "timed out") from error


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file read in chunks, so a 2 GB archive is checked without holding it in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(archive: Archive, part: Path) -> None:
    """Keep a short file for resuming; delete a long or altered one and say what arrived."""
    received = part.stat().st_size
    if received < archive.size:
        raise FetchError(f"{archive.url} stopped after {received:,} of {archive.size:,} bytes; "
                         f"run `{archive.command}` again to resume")
    digest = sha256_of(part)
    if received != archive.size or digest != archive.sha256:
        part.unlink()
        raise ChecksumMismatch(
            f"{archive.filename} from {archive.url} failed verification: got {received:,} bytes with SHA-256 "
            f"{digest}, expected {archive.size:,} bytes with SHA-256 {archive.sha256}; the file was deleted"
        )


def write_marker(folder: Path, archive: Archive) -> None:
    """Record which archive filled ``folder``, so a complete extraction can be told from a half one."""
    record = {"url": archive.url, "size": archive.size, "sha256": archive.sha256}
    (folder / MARKER).write_text(json.dumps(record, indent=1) + "\n")


def extracted(folder: Path, archive: Archive) -> bool:
    """Whether ``folder`` holds a complete extraction of ``archive`` (its marker names the same checksum)."""
    try:
        return json.loads((folder / MARKER).read_text()).get("sha256") == archive.sha256
    except (OSError, ValueError, AttributeError):
        return False


def _safe_member(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    """tarfile's ``data`` filter, also refusing absolute names (which it would strip) and any ``..`` part."""
    if member.name.startswith(("/", "\\")):
        raise tarfile.AbsolutePathError(member)
    if ".." in PurePosixPath(member.name.replace("\\", "/")).parts:
        raise tarfile.OutsideDestinationError(member, os.path.join(path, member.name))
    return tarfile.data_filter(member, path)


def _unpack(archive: Archive, part: Path, dest: Path) -> None:
    """Extract safely into a temporary folder beside ``dest``, mark it complete, then rename it into place."""
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".extracting"))
    try:
        with tarfile.open(part) as tar:
            tar.extractall(staging, filter=_safe_member)
        unpacked = staging / archive.folder
        if not unpacked.is_dir():
            raise FetchError(f"{archive.filename} has no top-level folder {archive.folder}/")
        write_marker(unpacked, archive)
        if dest.exists():  # an older or half extraction: moved aside first, since a rename cannot replace it
            dest.rename(staging / f".{dest.name}.replaced")
        unpacked.rename(dest)
    except tarfile.FilterError as error:
        raise FetchError(f"refusing to extract {archive.filename}: {error}") from error
    except tarfile.TarError as error:
        raise FetchError(f"{archive.filename} is not a readable tar archive: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_archive(archive: Archive, dest: Path, *, force: bool = False, timeout: float = TIMEOUT_S,
                  progress: bool = True) -> Path:
    """Download, verify and unpack ``archive`` into ``dest`` (skipped when already complete); returns ``dest``."""
    dest = Path(dest).expanduser()
    if not force and extracted(dest, archive):
        return dest
    if archive.sha256 is None:
        raise FetchError(f"{archive.title} has no published checksum in vitlessons, so it is not downloaded unverified")
    if config._flag("VITLESSONS_OFFLINE"):
        raise _unreachable(archive, "VITLESSONS_OFFLINE is set")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.parent / f"{archive.filename}.part"
    if part.exists() and part.stat().st_size > archive.size:
        part.unlink()  # longer than the archive: cannot be a prefix of it
    if not part.exists() or part.stat().st_size < archive.size:
        _download(archive, part, timeout, progress)
    _verify(archive, part)
    try:
        _unpack(archive, part, dest)
    except FetchError:
        part.unlink()  # the pinned archive itself cannot be unpacked: no use keeping it
        raise
    part.unlink()
    return dest
