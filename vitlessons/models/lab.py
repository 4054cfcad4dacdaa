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
from timm.layers import LayerNorm2d
from timm.models.deit import VisionTransformerDistilled
from timm.models.resnet import BasicBlock, ResNet
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from vitlessons.models.wrapper import Classifier, Preprocessing
from vitlessons.train import Recipe

STEMS = ("hmlp", "linear")


def lab_vit(num_classes: int, image_size: int = 64, patch_size: int = 8, depth: int = 4, embed_dim: int = 128,
            num_heads: int = 4, mlp_ratio: float = 2.0, stem: str = "hmlp", dynamic_img_size: bool = False,
            shape_token: bool = False) -> nn.Module:
    """A small ViT: by default 4 blocks on 8x8 patches, 64 tokens for a 64 px image, plus the class token.

    ``dynamic_img_size=True`` also takes smaller images (chapter 3's local crops), resizing the position embedding
    to their grid; at ``image_size`` it computes what the default model computes.

    ``stem`` embeds each patch: ``"linear"`` is ViT's one linear map; ``"hmlp"`` (the default) is a small MLP per
    patch, which learns far faster from few images and, like the linear map, never looks across a patch boundary.

    ``shape_token=True`` adds a second token with its own head after the class token (timm's DeiT distillation token),
    which chapter 6 trains to match a shape-biased teacher (``objectives.ShapeDistillation``).
    """
    if image_size % patch_size or embed_dim % num_heads:
        raise ValueError(f"image_size {image_size} must be a multiple of patch_size {patch_size}, "
                         f"and embed_dim {embed_dim} of num_heads {num_heads}")
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose one of {STEMS}")
    network = VisionTransformerDistilled if shape_token else VisionTransformer
    vit = network(img_size=image_size, patch_size=patch_size, num_classes=num_classes, embed_dim=embed_dim,
                  depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, dynamic_img_size=dynamic_img_size)
    if stem == "hmlp":
        vit.patch_embed.proj = hmlp_stem(patch_size, embed_dim)
    return vit


def hmlp_stem(patch_size: int, embed_dim: int, width: int = 32) -> nn.Sequential:
    """The hierarchical MLP stem of Touvron et al. (ECCV 2022, "Three things everyone should know about ViTs").

    2x2 convolutions with stride 2, each followed by a norm and GELU but the last, take a patch from pixels to
    one token in log2(patch_size) steps. Their windows tile the patch, so a token depends on its own patch only:
    patch dropping and shuffling act on this ViT exactly as on one with a linear patch embedding.
    """
    steps = patch_size.bit_length() - 1
    if patch_size < 2 or 2 ** steps != patch_size:
        raise ValueError(f"the hmlp stem needs a power-of-two patch_size, got {patch_size}; use stem='linear'")
    layers: list[nn.Module] = []
    channels = 3
    for step in range(steps):
        out = embed_dim if step == steps - 1 else width
        layers.append(nn.Conv2d(channels, out, kernel_size=2, stride=2))
        if step < steps - 1:
            layers += [LayerNorm2d(out), nn.GELU()]
        channels = out
    return nn.Sequential(*layers)


def lab_cnn(num_classes: int, image_size: int = 64) -> nn.Module:
    """A ResNet-10 with a quarter of the usual channel widths (any image size works).

    Its weights are channels-last: a CPU's convolutions (oneDNN) then run in that layout whatever the input's, which
    trains this network about 1.4x faster on a 2-core CPU than the default layout (same results up to rounding).
    """
    network = ResNet(block=BasicBlock, layers=(1, 1, 1, 1), num_classes=num_classes,
                     stem_width=32, channels=(32, 64, 128, 256))
    return network.to(memory_format=torch.channels_last)


# Each epoch draws fresh cue-world images (``data.sources.CueWorldStream``), IMAGES_PER_EPOCH of them.
# The budget is chapter 1's: four models trained in about three minutes on two CPU cores. Within it, the ViT
# gets the larger share; it learns less per image (chapter 1's learning curves). On the aligned world, at
# 15,000 images, the hMLP stem took it from 79% to 86-88% for 18% more time per image, where a lower
# learning rate, a smaller batch, fixed sin-cos positions, average pooling, other widths and depths, and
# 4 px patches gave at most 84% (issue 9's notes). The CNN gave up 1,500 images to pay for the stem (with
# 7,500 it still learns the aligned world, but the randomised world's shapes fell from 84% to 64%).
RECIPES: dict[str, Recipe] = {
    "lab_cnn": Recipe(epochs=6, batch_size=32, lr=2e-3),
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
