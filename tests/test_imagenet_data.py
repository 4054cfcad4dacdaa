"""The archive fetcher against a local HTTP server, the ImageNet-style folder dataset, and the 200-class lists."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from PIL import Image

from vitlessons.data import imagenet
from vitlessons.data.archives import MARKER, Archive, extracted, fetch_archive
from vitlessons.data.download import ChecksumMismatch, FetchError, StimuliUnreachable
from vitlessons.data.imagenet import (
    IMAGENET_A_WNIDS,
    IMAGENET_R_WNIDS,
    IMAGENETTE_WNIDS,
    ImageFolderSet,
    available,
    imagenet_indices,
    imagenet_wnids,
)

TENCH, SPRINGER, CASSETTE = IMAGENETTE_WNIDS[:3]  # ImageNet classes 0, 217 and 482


def _image_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30), fmt: str = "PNG") -> bytes:
    """A small flat-colour image file."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def _tar(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    """A tar archive (gzipped by default) holding ``members`` as regular files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


IMAGENETTE_TGZ = _tar({
    f"imagenette2-320/val/{wnid}/{wnid}_{n}.JPEG": _image_bytes((50 * n, 80, 120), fmt="JPEG")
    for wnid in (TENCH, SPRINGER) for n in range(2)
} | {"imagenette2-320/noisy_imagenette.csv": b"path,label\n"})


class FakeServer:
    """Serves bytes by path, honouring Range requests unless told not to, and records the Range headers it gets."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.ranges: list[str | None] = []
        self.honour_range = True
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def archive(self, data: bytes, name: str = "imagenette2-320.tgz", folder: str = "imagenette2-320",
                sha256: str | None = None) -> Archive:
        """Serve ``data`` and describe it as a pinned archive (its real checksum unless ``sha256`` is given)."""
        self.files[f"/{name}"] = data
        return Archive(title="Test set", url=f"{self.base}/{name}", size=len(data),
                       sha256=sha256 or hashlib.sha256(data).hexdigest(), folder=folder, command="fetch-test-set")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.ranges.append(self.headers.get("Range"))
                body = fake.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if fake.honour_range and self.headers.get("Range"):
                    start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

            def log_message(self, *args: object) -> None:
                """Keep test output quiet."""

        return Handler


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch):
    """A local server on a random port, with the offline switch the test suite sets turned off."""
    monkeypatch.setenv("VITLESSONS_OFFLINE", "0")
    fake = FakeServer()
    thread = threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def _leftovers(folder: Path) -> list[str]:
    """Download or extraction debris a fetch might leave beside its destination."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".part", ".extracting")))


def test_full_fetch_unpacks_marks_and_loads(server: FakeServer, tmp_path: Path) -> None:
    archive = server.archive(IMAGENETTE_TGZ)
    dest = fetch_archive(archive, tmp_path / "imagenette2-320", progress=False)
    assert sorted(p.name for p in (dest / "val").iterdir()) == [TENCH, SPRINGER]
    assert extracted(dest, archive) and (dest / MARKER).is_file()
    assert _leftovers(tmp_path) == [] and server.ranges == [None]
    fetch_archive(archive, dest, progress=False)  # complete already: nothing is asked
    assert len(server.ranges) == 1
    images = ImageFolderSet(dest / "val")
    assert images.imagenet_classes == (0, 217) and len(images) == 4


def test_partial_download_resumes_with_a_range_request(server: FakeServer, tmp_path: Path) -> None:
    archive = server.archive(IMAGENETTE_TGZ)
    half = len(IMAGENETTE_TGZ) // 2
    (tmp_path / "imagenette2-320.tgz.part").write_bytes(IMAGENETTE_TGZ[:half])
    fetch_archive(archive, tmp_path / "imagenette2-320", progress=False)
    assert server.ranges == [f"bytes={half}-"]
    assert extracted(tmp_path / "imagenette2-320", archive) and _leftovers(tmp_path) == []


def test_server_ignoring_range_restarts_the_download(server: FakeServer, tmp_path: Path) -> None:
    server.honour_range = False
    archive = server.archive(IMAGENETTE_TGZ)
    (tmp_path / "imagenette2-320.tgz.part").write_bytes(IMAGENETTE_TGZ[:100])
    fetch_archive(archive, tmp_path / "imagenette2-320", progress=False)
    assert server.ranges == ["bytes=100-"]
    assert extracted(tmp_path / "imagenette2-320", archive)


def test_checksum_mismatch_deletes_the_file_and_says_what_arrived(server: FakeServer, tmp_path: Path) -> None:
    archive = server.archive(IMAGENETTE_TGZ, sha256="0" * 64)
    with pytest.raises(ChecksumMismatch) as caught:
        fetch_archive(archive, tmp_path / "imagenette2-320", progress=False)
    message = str(caught.value)
    assert "0" * 64 in message and hashlib.sha256(IMAGENETTE_TGZ).hexdigest() in message and "deleted" in message
    assert list(tmp_path.iterdir()) == []


def test_archive_without_checksum_is_refused(server: FakeServer, tmp_path: Path) -> None:
    archive = Archive("Unpinned", f"{server.base}/x.tar", 10, None, "x", "fetch-x")
    with pytest.raises(FetchError, match="no published checksum"):
        fetch_archive(archive, tmp_path / "x", progress=False)
    assert server.ranges == []


def _link_out() -> bytes:
    """A tar whose symlink points outside the folder it unpacks into."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        link = tarfile.TarInfo("imagenet-r/n01443537/escape")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../outside"
        tar.addfile(link)
    return buffer.getvalue()


@pytest.mark.parametrize("data", [
    _tar({"imagenet-r/n01443537/a.png": b"x", "../evil": b"evil"}, mode="w"),
    _tar({"imagenet-r/n01443537/../../evil": b"evil"}, mode="w"),
    _tar({"/tmp/evil": b"evil"}, mode="w"),
    _link_out(),
], ids=["dotdot", "dotdot-inside", "absolute", "link-outside"])
def test_unsafe_members_are_refused(server: FakeServer, tmp_path: Path, data: bytes) -> None:
    archive = server.archive(data, name="imagenet-r.tar", folder="imagenet-r")
    with pytest.raises(FetchError, match="refusing to extract imagenet-r.tar"):
        fetch_archive(archive, tmp_path / "data" / "imagenet-r", progress=False)
    assert not (tmp_path / "data" / "imagenet-r").exists()
    assert not (tmp_path / "evil").exists() and not (tmp_path / "data" / "evil").exists()
    assert list((tmp_path / "data").iterdir()) == []


def test_offline_switch_fails_within_a_second_with_the_command(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(StimuliUnreachable) as caught:
        fetch_archive(imagenet.ARCHIVES["imagenet-r"], tmp_path / "imagenet-r", progress=False)
    assert time.monotonic() - start < 1
    message = str(caught.value)
    assert "could not be reached" in message and imagenet.ARCHIVES["imagenet-r"].url in message
    assert "vitlessons fetch-images imagenet-r" in message
    assert list(tmp_path.iterdir()) == []


def test_refused_connection_is_reported_as_unreachable(server: FakeServer, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    archive = Archive("Test set", f"http://127.0.0.1:{port}/a.tgz", 10, "0" * 64, "a", "fetch-test-set")
    with pytest.raises(StimuliUnreachable, match="could not be reached .*fetch-test-set"):
        fetch_archive(archive, tmp_path / "a", timeout=2, progress=False)


def test_half_extraction_is_not_available(tmp_path: Path) -> None:
    root = tmp_path / "imagenette2-320"
    (root / "val" / TENCH).mkdir(parents=True)
    (root / "val" / TENCH / "a.png").write_bytes(_image_bytes((1, 2, 3)))
    assert not available("imagenette", root)
    with pytest.raises(FileNotFoundError, match="incomplete.*fetch-images imagenette --dest"):
        imagenet.imagenette(root=root)
    (root / MARKER).write_text('{"sha256": "' + "1" * 64 + '"}')  # another archive's marker
    assert not available("imagenette", root)
    assert not available("imagenette")  # nothing in the (empty, private) data folder


def _folder(root: Path, spec: dict[str, list[tuple[int, int, int]]], size: tuple[int, int] = (300, 200)) -> Path:
    """An ImageNet-style folder: one subfolder per wnid holding flat-colour PNGs of the given colours."""
    for wnid, colours in spec.items():
        (root / wnid).mkdir(parents=True)
        for n, colour in enumerate(colours):
            (root / wnid / f"img{n}.png").write_bytes(_image_bytes(colour, size))
    return root


def test_image_folder_set_gives_cropped_images_and_imagenet_labels(tmp_path: Path) -> None:
    red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    root = _folder(tmp_path / "val", {CASSETTE: [blue] * 4, TENCH: [red] * 4, SPRINGER: [green] * 4})
    images = ImageFolderSet(root, size=64)
    assert images.wnids == (TENCH, SPRINGER, CASSETTE) and images.imagenet_classes == (0, 217, 482)
    assert images.labels[0].startswith("tench") and len(images) == 12
    image, label = images[0]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32 and label == 0
    assert image.min() >= 0 and image.max() <= 1
    assert torch.allclose(image.mean(dim=(1, 2)), torch.tensor([1.0, 0.0, 0.0]), atol=1e-3)
    assert [images[i][1] for i in range(len(images))] == [0] * 4 + [1] * 4 + [2] * 4
    preview = ImageFolderSet(root, size=64, limit=3)
    assert [label for _, label in preview.samples] == [0, 1, 2]  # evenly spaced: one per class
    assert [p.name for p, _ in ImageFolderSet(root, limit=6).samples] == ["img0.png", "img2.png"] * 3
    only = ImageFolderSet(root, wnids=[CASSETTE, TENCH])
    assert only.imagenet_classes == (0, 482) and len(only) == 8


def test_image_folder_set_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist.*vitlessons fetch-images"):
        ImageFolderSet(tmp_path / "nowhere")
    (tmp_path / "empty" / TENCH).mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="holds no .jpg"):
        ImageFolderSet(tmp_path / "empty")
    (tmp_path / "empty" / "cats").mkdir()
    with pytest.raises(ValueError, match="not ImageNet wnids: cats"):
        ImageFolderSet(tmp_path / "empty")


def test_imagenet_val_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VITLESSONS_IMAGENET_VAL", raising=False)
    with pytest.raises(FileNotFoundError, match="VITLESSONS_IMAGENET_VAL is not set"):
        imagenet.imagenet_val()
    with pytest.raises(FileNotFoundError, match="fetch-images imagenette"):
        imagenet.paper_images()  # falls back to Imagenette, which is not there
    root = _folder(tmp_path / "val", {IMAGENET_R_WNIDS[0]: [(9, 9, 9)], IMAGENET_A_WNIDS[3]: [(9, 9, 9)]})
    monkeypatch.setenv("VITLESSONS_IMAGENET_VAL", str(root))
    assert imagenet.paper_images(size=32).imagenet_classes == (1, 15)  # A's 4th class is not in R
    assert imagenet.imagenet_val(wnids=IMAGENET_R_WNIDS).imagenet_classes == (1,)


def test_cli_fetches_into_dest_and_names_the_licence(server: FakeServer, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(imagenet.ARCHIVES, "imagenette", server.archive(IMAGENETTE_TGZ))
    dest = tmp_path / "nette"
    assert imagenet.main(["imagenette", "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "Apache 2.0" in out and str(dest) in out
    assert len(imagenet.imagenette(root=dest, limit=3)) == 3


def test_cli_offline_reports_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert imagenet.main(["imagenet-a"]) == 1
    out, err = capsys.readouterr()
    assert "Hendrycks" in out and "could not be reached" in err and "Traceback" not in err


def test_published_class_lists() -> None:
    thousand = imagenet_wnids()
    assert len(thousand) == 1000 and len(set(thousand)) == 1000 and thousand[0] == "n01440764"
    for wnids in (IMAGENET_R_WNIDS, IMAGENET_A_WNIDS):
        assert len(wnids) == 200 and len(set(wnids)) == 200 and set(wnids) <= set(thousand)
        assert list(wnids) == sorted(wnids)
    # ImageNet indices as the papers' code lists them (first and last few)
    r, a = imagenet_indices(IMAGENET_R_WNIDS), imagenet_indices(IMAGENET_A_WNIDS)
    assert r[:8] == (1, 2, 4, 6, 8, 9, 11, 13) and r[-4:] == (980, 981, 983, 988)
    assert a[:8] == (6, 11, 13, 15, 17, 22, 23, 27) and a[-4:] == (984, 986, 987, 988)
    assert imagenet_indices(IMAGENETTE_WNIDS) == (0, 217, 482, 491, 497, 566, 569, 571, 574, 701)


def test_archive_entries_are_pinned() -> None:
    for name, archive in imagenet.ARCHIVES.items():
        assert archive.url.endswith((".tar", ".tgz")) and len(archive.sha256 or "") == 64
        assert imagenet.DOWNLOAD_MB[name] == pytest.approx(archive.size / 1e6, abs=0.1)
        assert name in imagenet.LICENCE_NOTES
