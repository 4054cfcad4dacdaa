"""A stand-in for what paper scale downloads, so CI can execute every chapter's paper-scale branch offline.

* a Hugging Face cache holding the real architectures of the registry's hub models, randomly initialised,
  in the files and layout their loaders read;
* the 1,280 cue-conflict stimuli as flat-colour PNGs, in the published folder layout and naming;
* a miniature Imagenette val split (10 wnid folders of flat-colour JPEGs) with the marker of a finished fetch;
* CLIP's zero-shot head for the classes a chapter scores, as random unit vectors: encoding 207 classes x 80
  prompts would take a quarter of an hour on two cores, and ``tests/test_models.py`` tests that code itself.

Every number a chapter computes from these is meaningless; what the run checks is that the code runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import open_clip
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from vitlessons.data.archives import write_marker
from vitlessons.data.categories import CATEGORIES
from vitlessons.data.imagenet import ARCHIVES, IMAGENETTE_WNIDS
from vitlessons.data.stimuli import N_STIMULI
from vitlessons.models.clip import head_cache
from vitlessons.models.hub import OpenClipModel, imagenet_classnames
from vitlessons.models.registry import get_spec
from vitlessons.storage import save_atomically

COMMIT = "0" * 40


def hub_snapshot(hub: Path, repo: str) -> Path:
    """The snapshot folder of ``repo`` in a Hugging Face cache at ``hub``, with ``refs/main`` pointing at it."""
    root = hub / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(COMMIT)
    snapshot = root / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def fake_hub_cache(hub: Path, names: Iterable[str]) -> None:
    """Randomly initialised weights of each named hub model, where its loader looks for the real ones."""
    for name in names:
        spec = get_spec(name)
        if spec.hub_files is None:
            continue  # weights that ship in a package are real already
        repo, filenames = spec.hub_files
        builder = spec.builder
        if isinstance(builder, OpenClipModel):
            state = open_clip.create_model(builder.identifier).state_dict()
        else:
            headless = {} if builder.has_head() else {"num_classes": 0}  # self-supervised weights (DINO) have no head
            state = timm.create_model(builder.identifier, pretrained=False, **headless).state_dict()
        file = hub_snapshot(hub, repo) / filenames[0]
        if file.suffix == ".safetensors":
            save_file({k: v.contiguous() for k, v in state.items()}, file)
        else:
            torch.save(state, file)


def fake_stimuli(root: Path) -> None:
    """1,280 flat-colour 224 px PNGs named like the published stimuli (``cat3-elephant7.png``), 80 per category."""
    per_category = N_STIMULI // len(CATEGORIES)
    for index, shape in enumerate(CATEGORIES):
        (root / shape).mkdir(parents=True, exist_ok=True)
        for n in range(per_category):
            texture = CATEGORIES[(index + n) % len(CATEGORIES)]  # each category's texture once in 16: no conflict
            colour = tuple((37 * (index + 1) * (n + 3)) % 256 for _ in range(3))
            Image.new("RGB", (224, 224), colour).save(root / shape / f"{shape}{n // 8 + 1}-{texture}{n % 8 + 1}.png")


def fake_sketches(root: Path, per_category: int = 10) -> None:
    """160 grey 224 px PNGs in the published edge and silhouette layout (``cat/cat3.png``), 10 per category."""
    for index, category in enumerate(CATEGORIES):
        (root / category).mkdir(parents=True, exist_ok=True)
        for n in range(1, per_category + 1):
            Image.new("RGB", (224, 224), (16 * index,) * 3).save(root / category / f"{category}{n}.png")


def fake_imagenette(root: Path, per_class: int = 4) -> None:
    """A miniature Imagenette at ``root`` (the loader's ``dataset_dir("imagenette")``): val/<wnid>/*.JPEG, 320 px high."""
    for index, wnid in enumerate(IMAGENETTE_WNIDS):
        (root / "val" / wnid).mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            colour = tuple((41 * (index + 1) + 67 * n + 29 * channel) % 256 for channel in range(3))
            Image.new("RGB", (400, 320), colour).save(root / "val" / wnid / f"{wnid}_{n}.JPEG", quality=90)
    write_marker(root, ARCHIVES["imagenette"])


def fake_clip_head(name: str, imagenet_classes: Sequence[int]) -> None:
    """A cached zero-shot head of random unit vectors over these ImageNet classes, for CLIP model ``name``."""
    builder = get_spec(name).builder
    embed_dim = open_clip.get_model_config(builder.identifier)["embed_dim"]
    generator = torch.Generator().manual_seed(0)
    names = imagenet_classnames(imagenet_classes)
    head = {c: torch.nn.functional.normalize(torch.randn(embed_dim, generator=generator), dim=0) for c in names}
    save_atomically(head, head_cache(builder.identifier, builder.pretrained, open_clip.OPENAI_IMAGENET_TEMPLATES))
