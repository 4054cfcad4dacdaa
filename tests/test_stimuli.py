"""The stimulus loaders (cue conflict, edges, silhouettes) on small folders built here in the published naming."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from vitlessons.data.categories import CATEGORIES
from vitlessons.data.stimuli import (
    CueConflictStimuli,
    load_cue_conflict,
    load_sketches,
    parse_stimulus_name,
    stimuli_available,
    stimuli_dir,
)


def _colour(index: int) -> tuple[int, int, int]:
    """A distinct solid colour per file, so each loaded image can be traced back to its file."""
    return (10 * index % 256, 255 - 7 * index % 256, 3 * index % 256)


def _write(path: Path, colour: tuple[int, int, int], mode: str = "RGB", side: int = 12) -> None:
    """A tiny solid PNG; a solid colour survives resizing exactly, which the tests rely on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (side, side), colour).convert(mode).save(path)


@pytest.fixture()
def stimuli_root(tmp_path: Path) -> tuple[Path, dict[str, tuple[int, int, int]]]:
    """One conflict image per category (texture = next category) plus one same-category image."""
    root = tmp_path / "cue-conflict"
    names = [f"{shape}1-{CATEGORIES[(i + 1) % 16]}2.png" for i, shape in enumerate(CATEGORIES)]
    names.append("cat1-cat3.png")
    colours = {}
    for index, name in enumerate(names):
        colours[name] = _colour(index)
        _write(root / name.split("1-")[0] / name, colours[name])
    (root / "cat" / "notes.txt").write_text("not an image")  # ignored: not a PNG
    return root, colours


def test_labels_conflict_and_order(stimuli_root) -> None:
    root, _ = stimuli_root
    stimuli = load_cue_conflict(root, size=8, expected=17)
    assert isinstance(stimuli, CueConflictStimuli)
    assert len(stimuli) == 17
    assert stimuli.paths == sorted(stimuli.paths)
    for path, shape, texture in zip(stimuli.paths, stimuli.shape_labels, stimuli.texture_labels):
        assert (CATEGORIES[shape], CATEGORIES[texture]) == parse_stimulus_name(path.name)
        assert CATEGORIES[shape] == path.parent.name
    same = [p.name for p, c in zip(stimuli.paths, stimuli.conflict) if not c]
    assert same == ["cat1-cat3.png"]
    assert stimuli.conflict.dtype == torch.bool and int(stimuli.conflict.sum()) == 16


def test_images_size_range_dtype_and_content(stimuli_root) -> None:
    root, colours = stimuli_root
    stimuli = load_cue_conflict(root, size=8, expected=17)
    assert stimuli.images.shape == (17, 3, 8, 8)
    assert stimuli.images.dtype == torch.float32
    assert stimuli.shape_labels.dtype == stimuli.texture_labels.dtype == torch.int64
    assert 0.0 <= float(stimuli.images.min()) and float(stimuli.images.max()) <= 1.0
    for image, path in zip(stimuli.images, stimuli.paths):
        expected = torch.tensor(colours[path.name], dtype=torch.float32)[:, None, None] / 255
        torch.testing.assert_close(image, expected.expand(3, 8, 8), atol=1e-5, rtol=0)


def test_greyscale_png_becomes_rgb(stimuli_root) -> None:
    root, _ = stimuli_root
    _write(root / "dog" / "dog1-dog2.png", (90, 90, 90), mode="L")
    stimuli = load_cue_conflict(root, size=5, expected=18)
    image = stimuli.images[stimuli.paths.index(root / "dog" / "dog1-dog2.png")]
    assert image.shape == (3, 5, 5)
    torch.testing.assert_close(image, torch.full((3, 5, 5), 90 / 255), atol=1e-5, rtol=0)


def test_parse_stimulus_name() -> None:
    assert parse_stimulus_name("cat1-elephant2.png") == ("cat", "elephant")
    assert parse_stimulus_name("airplane10-keyboard3.png") == ("airplane", "keyboard")
    with pytest.raises(ValueError, match="does not follow the pattern"):
        parse_stimulus_name("cat.png")
    with pytest.raises(ValueError, match="unknown texture category 'zebra'"):
        parse_stimulus_name("cat1-zebra2.png")


def test_missing_folder_names_fetch_command(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert not stimuli_available(missing)
    with pytest.raises(FileNotFoundError, match="vitlessons fetch") as caught:
        load_cue_conflict(missing)
    assert str(missing) in str(caught.value)


def test_incomplete_folder_is_reported(stimuli_root) -> None:
    root, _ = stimuli_root
    assert stimuli_available(root, expected=17)
    assert not stimuli_available(root)  # 17 files, not the published 1,280
    with pytest.raises(FileNotFoundError, match="found 17 PNG files, expected 1280"):
        load_cue_conflict(root, size=8)
    for png in (root / "oven").glob("*.png"):
        png.unlink()
    assert not stimuli_available(root, expected=None)
    with pytest.raises(FileNotFoundError, match="oven.*vitlessons fetch"):
        load_cue_conflict(root, size=8, expected=None)


def test_badly_named_file(stimuli_root) -> None:
    root, _ = stimuli_root
    _write(root / "bear" / "bear-cat.png", (1, 2, 3))
    with pytest.raises(ValueError, match="bear-cat.png"):
        load_cue_conflict(root, size=8, expected=None)


def test_unknown_category(stimuli_root) -> None:
    root, _ = stimuli_root
    _write(root / "bear" / "bear4-zebra1.png", (1, 2, 3))
    with pytest.raises(ValueError, match="unknown texture category 'zebra'"):
        load_cue_conflict(root, size=8, expected=None)


def test_file_in_wrong_category_folder(stimuli_root) -> None:
    root, _ = stimuli_root
    _write(root / "cat" / "dog5-bear1.png", (1, 2, 3))
    with pytest.raises(ValueError, match=r"cat/dog5-bear1\.png"):
        load_cue_conflict(root, size=8, expected=None)


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_bad_size(stimuli_root, size) -> None:
    root, _ = stimuli_root
    with pytest.raises(ValueError, match="positive int"):
        load_cue_conflict(root, size=size, expected=None)


def test_stimuli_dir_follows_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITLESSONS_DATA", str(tmp_path))
    assert stimuli_dir() == tmp_path / "cue-conflict"
    assert stimuli_dir("edges") == tmp_path / "edges"
    with pytest.raises(ValueError, match="unknown stimulus set 'sketches'"):
        stimuli_dir("sketches")


def _sketches(root: Path) -> None:
    """The published edge layout: ten ``<category><n>.png`` per category folder, a colour per category."""
    for index, category in enumerate(CATEGORIES):
        for n in range(1, 11):
            _write(root / category / f"{category}{n}.png", _colour(index))


def test_sketches_are_labelled_by_their_folder(tmp_path: Path) -> None:
    _sketches(tmp_path / "edges")
    sketches = load_sketches("edges", tmp_path / "edges", size=8)
    assert len(sketches) == 160 and sketches.images.shape == (160, 3, 8, 8) and sketches.kind == "edges"
    assert sketches.labels.bincount().tolist() == [10] * 16
    assert load_sketches("edges", tmp_path / "edges", size=8, limit=16).labels.tolist() == list(range(16))
    for image, label, path in zip(sketches.images, sketches.labels, sketches.paths):
        assert CATEGORIES[label] == path.parent.name
        expected = torch.tensor(_colour(int(label)), dtype=torch.float32) / 255
        assert torch.allclose(image[:, 0, 0], expected, atol=1e-6)


def test_incomplete_or_misnamed_sketches_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "silhouettes"
    with pytest.raises(FileNotFoundError, match="vitlessons fetch --set silhouettes --dest"):
        load_sketches("silhouettes", root)
    _sketches(root)
    (root / "cat" / "cat10.png").rename(root / "cat" / "dog11.png")
    with pytest.raises(ValueError, match="not named '<category><n>.png' after their folder.*cat/dog11.png"):
        load_sketches("silhouettes", root)
    (root / "cat" / "dog11.png").unlink()
    with pytest.raises(FileNotFoundError, match="found 159 PNG files, expected 160"):
        load_sketches("silhouettes", root)
    with pytest.raises(ValueError, match="unknown sketch set"):
        load_sketches("cue-conflict", root)


def test_mismatched_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        CueConflictStimuli(torch.zeros(2, 3, 4, 4), torch.zeros(2), torch.zeros(3), [Path("a"), Path("b")])


def test_a_limit_spreads_over_the_categories_and_reads_only_those(stimuli_root, monkeypatch) -> None:
    root, colours = stimuli_root
    everything = load_cue_conflict(root, size=8, expected=17)
    four = load_cue_conflict(root, size=8, expected=17, limit=4)
    assert four.paths == [everything.paths[i] for i in (0, 4, 8, 12)]
    assert torch.equal(four.images, everything.images[[0, 4, 8, 12]])
    assert load_cue_conflict(root, size=8, expected=17, limit=100).paths == everything.paths
    with pytest.raises(ValueError, match="at least 1"):
        load_cue_conflict(root, size=8, expected=17, limit=0)
