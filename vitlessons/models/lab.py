"""The two lab models: a small ViT and a small ResNet, both built from timm, that train on a CPU in a minute.

Both are small (0.56 M parameters for the ViT, 1.25 M for the ResNet) and cost about as much time per
training step on a CPU. ``RECIPES`` holds the training settings that worked best for each in a sweep
over learning rate, batch size, width and depth on the cue world (see the chapter 1 notes).
"""

from __future__ import annotations

from torch import nn
from timm.models.resnet import BasicBlock, ResNet
from timm.models.vision_transformer import VisionTransformer


def lab_vit(num_classes: int, image_size: int = 64) -> nn.Module:
    """A 4-block ViT on 8x8 patches: 64 tokens for a 64 px image, plus the class token."""
    return VisionTransformer(
        img_size=image_size, patch_size=8, num_classes=num_classes,
        embed_dim=128, depth=4, num_heads=4, mlp_ratio=2.0,
    )


def lab_cnn(num_classes: int, image_size: int = 64) -> nn.Module:
    """A ResNet-10 with a quarter of the usual channel widths (any image size works)."""
    return ResNet(
        block=BasicBlock, layers=(1, 1, 1, 1), num_classes=num_classes,
        stem_width=32, channels=(32, 64, 128, 256),
    )


RECIPES: dict[str, dict[str, float]] = {
    "lab_cnn": {"lr": 2e-3, "epochs": 4, "batch_size": 32},
    "lab_vit": {"lr": 1e-3, "epochs": 5, "batch_size": 32},
}
