"""The lab models: a small ViT and a small ResNet, both built from timm, that train on a CPU in a minute.

The ViT's patch size, depth, width and heads are options (``load_model("lab_vit", patch_size=4, ...)``),
so a chapter can vary them; the defaults are the model chapter 1 trains. ``RECIPES`` holds the training
settings chosen for each default model on the cue world, within chapter 1's time budget.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from timm.models.resnet import BasicBlock, ResNet
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from vitlessons.models.wrapper import Classifier, Preprocessing
from vitlessons.train import Recipe


def lab_vit(num_classes: int, image_size: int = 64, patch_size: int = 8, depth: int = 4, embed_dim: int = 128,
            num_heads: int = 4, mlp_ratio: float = 2.0) -> nn.Module:
    """A small ViT: by default 4 blocks on 8x8 patches, 64 tokens for a 64 px image, plus the class token."""
    if image_size % patch_size or embed_dim % num_heads:
        raise ValueError(f"image_size {image_size} must be a multiple of patch_size {patch_size}, "
                         f"and embed_dim {embed_dim} of num_heads {num_heads}")
    return VisionTransformer(img_size=image_size, patch_size=patch_size, num_classes=num_classes,
                             embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio)


def lab_cnn(num_classes: int, image_size: int = 64) -> nn.Module:
    """A ResNet-10 with a quarter of the usual channel widths (any image size works)."""
    return ResNet(block=BasicBlock, layers=(1, 1, 1, 1), num_classes=num_classes,
                  stem_width=32, channels=(32, 64, 128, 256))


# Each epoch draws fresh cue-world images (``data.sources.CueWorldStream``), IMAGES_PER_EPOCH of them.
# The budget is chapter 1's: four models trained in about three minutes on two CPU cores. Within it, the ViT
# got the larger share; it learns less per image (chapter 1's learning curves) and gained most from a lower
# learning rate (sweep in the issue 9 notes: 1e-3 -> 5e-4 took it from 78% to 84% at 15,000 images).
RECIPES: dict[str, Recipe] = {
    "lab_cnn": Recipe(epochs=7, batch_size=32, lr=2e-3),
    "lab_vit": Recipe(epochs=5, batch_size=32, lr=5e-4),
}
IMAGES_PER_EPOCH: dict[str, int] = {"lab_cnn": 1500, "lab_vit": 3000}


class LabModel:
    """Builds an untrained lab network (the notebooks train it) or restores one from a checkpoint file."""

    def __init__(self, network: Callable[..., nn.Module]):
        self.network = network

    def __call__(self, name: str, device: torch.device, labels: Sequence[str] | None = None, image_size: int = 64,
                 seed: int = 0, checkpoint: str | Path | None = None, **architecture) -> Classifier:
        if checkpoint is not None and not Path(checkpoint).is_file():
            raise FileNotFoundError(f"checkpoint for {name} not found: {checkpoint}")
        if not labels:
            raise ValueError(f"{name} needs labels, the names of its classes (for the cue world: cueworld.CLASS_NAMES)")
        with torch.random.fork_rng(devices=[]):  # seeded initial weights without touching global state
            torch.manual_seed(seed)
            net = self.network(num_classes=len(labels), image_size=image_size, **architecture)
        if checkpoint is not None:
            net.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        preprocessing = Preprocessing(size=image_size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resize=False)
        return Classifier(name, net, preprocessing, list(labels))

    def options(self) -> set[str]:
        """Every keyword this builder takes, architecture options included."""
        own = {"labels", "image_size", "seed", "checkpoint"}
        return own | (set(inspect.signature(self.network).parameters) - {"num_classes"})
