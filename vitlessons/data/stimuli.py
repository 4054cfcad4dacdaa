"""The stimuli of Geirhos et al. (2019), read from their published folder layout: cue conflict and sketches.

Geirhos, Rubisch, Michaelis, Bethge, Wichmann and Brendel, "ImageNet-trained CNNs are biased
towards texture; increasing shape bias improves accuracy and robustness", ICLR 2019. The images
come from https://github.com/rgeirhos/texture-vs-shape (``stimuli/style-transfer-preprocessed-512``)
and are fetched by ``vitlessons fetch`` (see ``vitlessons.data.download``).

Layout: ``<root>/<category>/<shape><n>-<texture><m>.png``, 1,280 images in 16 category folders;
the folder is the shape category. 80 images have the same shape and texture category (such as
``cat1-cat3.png``); the shape-bias measure leaves them out, which ``CueConflictStimuli.conflict``
makes easy.

The same repository holds the images' sketches, 160 each in the same 16 category folders, named
``<category><n>.png``: ``edges`` (line drawings) and ``silhouettes`` (filled black shapes). ``load_sketches``
reads them with their category labels (chapter 4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from vitlessons import config
from vitlessons.data.categories import CATEGORIES

N_STIMULI = 1280
STIMULUS_SETS = {"cue-conflict": N_STIMULI, "edges": 160, "silhouettes": 160}  # images per set
SKETCHES = ("edges", "silhouettes")
FETCH_COMMAND = "vitlessons fetch"
_NAME = re.compile(r"([a-z]+)(\d+)-([a-z]+)(\d+)(?:\.png)?")
_SKETCH_NAME = re.compile(r"([a-z]+)\d+\.png")
_MAX_LISTED = 5


def stimuli_dir(name: str = "cue-conflict") -> Path:
    """Where the fetch script puts one set of stimuli, so loader and downloader agree without arguments."""
    if name not in STIMULUS_SETS:
        raise ValueError(f"unknown stimulus set {name!r}; choose one of {', '.join(STIMULUS_SETS)}")
    return config.data_dir() / name


def _pngs(folder: Path) -> list[Path]:
    """The PNG files of one category folder in sorted order, so loading is deterministic."""
    return sorted(p for p in folder.iterdir() if p.suffix == ".png" and p.is_file())


def _fetch_hint(root: Path, name: str = "cue-conflict") -> str:
    """The exact command that fills ``root``, so an error message can be pasted into a shell."""
    dest = "" if root == stimuli_dir(name) else f" --dest {root}"
    return f"`{FETCH_COMMAND} --set {name}{dest}`"


def _missing_parts(root: Path, expected: int | None) -> list[str]:
    """What keeps ``root`` from being a complete stimulus folder; empty when nothing does."""
    if not root.is_dir():
        return [f"folder {root} does not exist"]
    absent = [c for c in CATEGORIES if not (root / c).is_dir()]
    if absent:
        return [f"category folders missing: {', '.join(absent)}"]
    empty = [c for c in CATEGORIES if not _pngs(root / c)]
    if empty:
        return [f"category folders without PNG files: {', '.join(empty)}"]
    if expected is not None:
        found = sum(len(_pngs(root / c)) for c in CATEGORIES)
        if found != expected:
            return [f"found {found} PNG files, expected {expected}"]
    return []


def stimuli_available(root: Path | None = None, *, expected: int | None = N_STIMULI) -> bool:
    """Whether the stimuli are on disk, so ``choose_scale`` can pick paper scale without loading."""
    root = stimuli_dir() if root is None else Path(root)
    try:
        return not _missing_parts(root, expected)
    except OSError:
        return False


def parse_stimulus_name(name: str) -> tuple[str, str]:
    """(shape, texture) categories from a file name such as ``cat1-elephant2.png``, which carries the labels."""
    match = _NAME.fullmatch(Path(name).name)
    if match is None:
        raise ValueError(
            f"cue-conflict file name {name!r} does not follow the pattern "
            "'<shape><n>-<texture><m>.png' (for example 'cat1-elephant2.png')"
        )
    shape, texture = match.group(1), match.group(3)
    for role, category in (("shape", shape), ("texture", texture)):
        if category not in CATEGORIES:
            raise ValueError(
                f"cue-conflict file name {name!r} has unknown {role} category {category!r}; "
                f"expected one of {', '.join(CATEGORIES)}"
            )
    return shape, texture


@dataclass
class CueConflictStimuli:
    """The stimuli with both labels side by side, so shape and texture decisions can be scored together."""

    images: torch.Tensor
    shape_labels: torch.Tensor
    texture_labels: torch.Tensor
    paths: list[Path]

    def __post_init__(self) -> None:
        """Refuse mismatched fields, which would silently misalign images and labels."""
        sizes = {
            "images": len(self.images),
            "shape_labels": len(self.shape_labels),
            "texture_labels": len(self.texture_labels),
            "paths": len(self.paths),
        }
        if len(set(sizes.values())) != 1:
            raise ValueError(f"CueConflictStimuli fields must have the same length, got {sizes}")

    @property
    def conflict(self) -> torch.Tensor:
        """True where shape and texture differ: only these images enter the shape-bias measure."""
        return self.shape_labels != self.texture_labels

    def __len__(self) -> int:
        """Number of images, so the stimuli work with ``len`` like a dataset."""
        return len(self.paths)


def _stimulus_paths(root: Path) -> list[Path]:
    """All stimulus files in category order, after checking each name matches its folder."""
    paths = [p for category in CATEGORIES for p in _pngs(root / category)]
    misplaced = [p for p in paths if parse_stimulus_name(p.name)[0] != p.parent.name]
    if misplaced:
        listed = ", ".join(f"{p.parent.name}/{p.name}" for p in misplaced[:_MAX_LISTED])
        more = f" and {len(misplaced) - _MAX_LISTED} more" if len(misplaced) > _MAX_LISTED else ""
        raise ValueError(
            f"{len(misplaced)} cue-conflict file(s) in {root} sit in a folder other than their shape "
            f"category (the part before '-'): {listed}{more}"
        )
    return paths


def evenly_spaced(paths: list, limit: int | None) -> list:
    """At most ``limit`` of ``paths``, spread evenly from first to last (all of them when ``limit`` is None)."""
    if limit is None or limit >= len(paths):
        return paths
    if limit < 1:
        raise ValueError(f"limit must be at least 1 image, got {limit}")
    return [paths[i * len(paths) // limit] for i in range(limit)]


def _read_image(path: Path, size: int) -> torch.Tensor:
    """One image as RGB floats in [0, 1], resized with antialiasing so downscaling does not alias."""
    with Image.open(path) as image:
        pixels = pil_to_tensor(image.convert("RGB")).float().div_(255.0)
    if pixels.shape[-2:] != (size, size):
        pixels = F.interpolate(
            pixels[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )[0].clamp_(0.0, 1.0)
    return pixels


def load_cue_conflict(
    root: Path | None = None, size: int = 224, *, expected: int | None = N_STIMULI, limit: int | None = None
) -> CueConflictStimuli:
    """The stimuli as one tensor with shape and texture labels; ``expected=None`` skips the count check.

    ``limit`` keeps that many, evenly spaced over the sorted files so every category is represented: a
    paper-scale preview (``Setup.paper_images``) reads only those.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ValueError(f"size must be a positive int (pixels per side), got {size!r}")
    root = stimuli_dir() if root is None else Path(root)
    missing = _missing_parts(root, expected)
    if missing:
        raise FileNotFoundError(
            f"Cue-conflict stimuli in {root} are missing or incomplete ({'; '.join(missing)}). "
            f"Fetch them with {_fetch_hint(root)}."
        )
    paths = evenly_spaced(_stimulus_paths(root), limit)
    labels = [parse_stimulus_name(p.name) for p in paths]
    return CueConflictStimuli(
        images=torch.stack([_read_image(p, size) for p in paths]),
        shape_labels=torch.tensor([CATEGORIES.index(s) for s, _ in labels], dtype=torch.int64),
        texture_labels=torch.tensor([CATEGORIES.index(t) for _, t in labels], dtype=torch.int64),
        paths=paths,
    )


@dataclass
class SketchStimuli:
    """Line drawings or silhouettes of the 16 categories, one label each: a shape with no texture to go by."""

    images: torch.Tensor
    labels: torch.Tensor
    paths: list[Path]
    kind: str

    def __len__(self) -> int:
        return len(self.paths)


def load_sketches(kind: str, root: Path | None = None, size: int = 224, *, limit: int | None = None) -> SketchStimuli:
    """The 160 ``edges`` or ``silhouettes`` images as one tensor, labelled by their category folder.

    ``limit`` keeps that many, evenly spaced over the sorted files (a paper-scale preview), as ``load_cue_conflict`` does.
    """
    if kind not in SKETCHES:
        raise ValueError(f"unknown sketch set {kind!r}; choose one of {SKETCHES}")
    root = stimuli_dir(kind) if root is None else Path(root)
    missing = _missing_parts(root, STIMULUS_SETS[kind])
    if missing:
        raise FileNotFoundError(f"The {kind} stimuli in {root} are missing or incomplete ({'; '.join(missing)}). "
                                f"Fetch them with {_fetch_hint(root, kind)}.")
    paths = [p for category in CATEGORIES for p in _pngs(root / category)]
    misnamed = [p for p in paths if (m := _SKETCH_NAME.fullmatch(p.name)) is None or m.group(1) != p.parent.name]
    if misnamed:
        raise ValueError(f"{len(misnamed)} {kind} file(s) in {root} are not named '<category><n>.png' after their "
                         f"folder, for example {misnamed[0].parent.name}/{misnamed[0].name}")
    paths = evenly_spaced(paths, limit)
    return SketchStimuli(torch.stack([_read_image(p, size) for p in paths]),
                         torch.tensor([CATEGORIES.index(p.parent.name) for p in paths]), paths, kind)
